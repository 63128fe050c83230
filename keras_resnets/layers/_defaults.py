"""The one place where convolution and BatchNorm defaults are defined.

Every layer and builder in the package gets its Conv2D and BatchNormalization from here, so
epsilon, momentum and the initializer are stated once (STYLE.md: "Define the BatchNorm and
convolution defaults once").
"""

import keras

# Keras's BatchNormalization, with TensorFlow's fused training kernel.
from keras_resnets.layers.batch_norm import BatchNormalization

# Torch/Caffe ResNets and DenseNets use eps=1e-5 and a running-average factor of 0.1, i.e.
# Keras momentum 0.9. keras.applications uses eps=1.001e-5 and momentum 0.99; we follow the
# papers' reference code.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9
# He et al. 2015 (section 3.4) initialise as in "Delving deep into rectifiers": he_normal.
KERNEL_INITIALIZER = "he_normal"


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
    data_format=None,
    dtype=None,
):
    """A 'same'-padded Conv2D with the package defaults (no bias: a BN follows)."""
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=use_bias,
        activation=activation,
        kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer,
        kernel_regularizer=kernel_regularizer,
        data_format=data_format,
        name=name,
        dtype=dtype,
    )


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
