"""The one place where convolution and BatchNorm defaults are defined.

Every layer and builder in the package gets its Conv2D and BatchNormalization from here, so
epsilon, momentum and the initializer are stated once (STYLE.md: "Define the BatchNorm and
convolution defaults once").
"""

import zlib

import keras

# The argument checks every layer uses, from the package's light module.
from keras_resnets._checks import (  # noqa: F401
    check_bool,
    check_int,
    check_kernel_size,
    check_number,
    is_integer,
)

# Keras's BatchNormalization, with TensorFlow's fused training kernel.
from keras_resnets.layers.batch_norm import BatchNormalization
from keras_resnets.layers.padding import Conv2D

# Torch/Caffe ResNets and DenseNets use eps=1e-5 and a running-average factor of 0.1, i.e.
# Keras momentum 0.9. keras.applications uses eps=1.001e-5 and momentum 0.99; we follow the
# papers' reference code.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9
# He et al. 2015 (section 3.4) initialise as in "Delving deep into rectifiers": he_normal.
KERNEL_INITIALIZER = "he_normal"
# "symmetric": Caffe's, Torch's and keras.applications' padding of strided windows, which
# the papers' networks use; "same": TensorFlow's, which the article's TF-slim code used.
PADDINGS = ("symmetric", "same")


def check_choice(name, value, choices):
    """Raise a ValueError naming the valid choices unless `value` is one of them."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}")
    return value


def initializer_for(initializer, owner, sublayer):
    """A fresh initializer for one sublayer, so that no two sublayers start equal.

    Keras 3 returns the same values every time one unseeded initializer *instance* is
    called, so an instance shared by several sublayers gives them identical kernels
    (keras-hub clones its initializers for this reason). A clone made from the config draws
    a new default seed (which `keras.utils.set_random_seed` makes reproducible). A
    user-seeded initializer gets a seed derived from its own and the sublayer's path
    `owner/sublayer`: reproducible, and distinct per sublayer. A `SeedGenerator` seed
    advances on every call, so that instance is shared as it is.
    """
    initializer = keras.initializers.get(initializer)
    seed = getattr(initializer, "_init_seed", None)
    if isinstance(seed, keras.random.SeedGenerator):
        return initializer
    try:
        config = initializer.get_config()
    except NotImplementedError:
        return initializer
    if isinstance(seed, int):
        config["seed"] = zlib.crc32(f"{seed}/{owner}/{sublayer}".encode()) & 0x7FFFFFFF
    return initializer.__class__.from_config(config)


def standardize_data_format(data_format=None):
    """`None` means Keras's configured image data format; anything else is validated."""
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    return data_format


def channel_axis(data_format=None):
    return -1 if standardize_data_format(data_format) == "channels_last" else 1


def conv2d(
    filters,
    kernel_size,
    *,
    name,
    strides=1,
    use_bias=False,
    activation=None,
    kernel_initializer=KERNEL_INITIALIZER,
    bias_initializer="zeros",
    kernel_regularizer=None,
    padding="symmetric",
    owner="",
    data_format=None,
    dtype=None,
):
    """A Conv2D with the package defaults (no bias: a BN follows).

    `padding="symmetric"` pads a strided convolution with a kernel above 1 by k // 2 on
    every side (the reference code's padding, `padding.Conv2D`); every other convolution,
    and every one with `padding="same"`, is Keras's "same"-padded Conv2D. The kernel
    initializer is cloned for this sublayer (`initializer_for`, with `owner` the name of
    the layer that holds it).
    """
    check_choice("padding", padding, PADDINGS)
    strided = max(_pair(strides)) > 1 and max(_pair(kernel_size)) > 1
    conv = Conv2D if padding == "symmetric" and strided else keras.layers.Conv2D
    return conv(
        filters,
        kernel_size,
        strides=strides,
        padding="symmetric" if conv is Conv2D else "same",
        use_bias=use_bias,
        activation=activation,
        kernel_initializer=initializer_for(kernel_initializer, owner, name),
        bias_initializer=bias_initializer,
        kernel_regularizer=kernel_regularizer,
        data_format=data_format,
        name=name,
        dtype=dtype,
    )


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def batch_norm(*, name, data_format=None, zero_init=False, dtype=None):
    """BatchNormalization with the package's epsilon and momentum.

    `zero_init=True` starts gamma at 0, so a residual branch ending in this BN starts as the
    identity (Goyal et al. 2017, section 5.1).
    """
    return BatchNormalization(
        axis=channel_axis(data_format),
        epsilon=BN_EPSILON,
        momentum=BN_MOMENTUM,
        gamma_initializer="zeros" if zero_init else "ones",
        name=name,
        dtype=dtype,
    )


def common_config(layer):
    """The get_config entries every package layer shares."""
    return {
        "kernel_initializer": keras.initializers.serialize(layer.kernel_initializer),
        "kernel_regularizer": keras.regularizers.serialize(layer.kernel_regularizer)
        if layer.kernel_regularizer is not None
        else None,
        "data_format": layer.data_format,
    }
