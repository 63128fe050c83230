"""Convolution and max pooling with the reference code's symmetric padding.

Keras's `padding="same"` pads `total // 2` before and the rest after, so a stride-2 window
at an even input size gets nothing before and one row/column after. Caffe, Torch,
torchvision and keras.applications (`ZeroPadding2D`, then `"valid"`) pad the same amount on
every side, which centres each output on an even input index, where the shortcut A
subsampling also looks. A network trained one way computes a different function the other
way, so the papers' networks use these layers for every strided window.
"""

import keras
from keras import ops

PADDINGS = ("same", "valid", "symmetric")


def _pads(kernel_size, dilation_rate):
    """Torch's `padding=k // 2` for each spatial dimension: (d * (k - 1)) // 2 per side."""
    return [(d * (k - 1)) // 2 for k, d in zip(kernel_size, dilation_rate)]


def _pad_width(pads, data_format):
    spatial = [(p, p) for p in pads]
    if data_format == "channels_last":
        return [(0, 0), *spatial, (0, 0)]
    return [(0, 0), (0, 0), *spatial]


def _padded_shape(input_shape, pads, data_format):
    shape = list(input_shape)
    first = 1 if data_format == "channels_last" else 2
    for i, p in enumerate(pads):
        if shape[first + i] is not None:
            shape[first + i] += 2 * p
    return tuple(shape)


class _SymmetricPadding:
    """Adds `padding="symmetric"` to a Keras window layer: pad, then run it "valid"."""

    pad_value = 0.0

    def _init_padding(self, padding):
        if padding not in PADDINGS:
            raise ValueError(f"`padding` must be one of {list(PADDINGS)}. Received: {padding!r}")
        self.symmetric = padding == "symmetric"
        return "valid" if self.symmetric else padding

    def call(self, inputs):
        if self.symmetric:
            inputs = ops.pad(
                inputs,
                _pad_width(self._symmetric_pads(), self.data_format),
                constant_values=self.pad_value,
            )
        return super().call(inputs)

    def compute_output_shape(self, input_shape):
        if self.symmetric:
            input_shape = _padded_shape(input_shape, self._symmetric_pads(), self.data_format)
        return super().compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        if self.symmetric:
            config["padding"] = "symmetric"
        return config


@keras.saving.register_keras_serializable(package="keras_resnets")
class Conv2D(_SymmetricPadding, keras.layers.Conv2D):
    """`keras.layers.Conv2D` that also accepts `padding="symmetric"`.

    `"symmetric"` zero-pads `dilation * (kernel_size - 1) // 2` on every side, then runs a
    `"valid"` convolution: torch's `Conv2d(..., padding=k // 2)` and keras.applications'
    `ZeroPadding2D` + `Conv2D(padding="valid")`. At stride 1 with an odd kernel it equals
    `"same"`; at stride 2 and an even input size it does not (see the module docstring).
    Other `padding` values behave exactly as in Keras. The weights are Keras's own
    (`kernel`, `bias`), so weights load between the two classes.

    Example:
    >>> y = Conv2D(64, 3, strides=2, padding="symmetric")(keras.Input((32, 32, 16)))
    """

    def __init__(self, filters, kernel_size, *, padding="valid", **kwargs):
        super().__init__(filters, kernel_size, padding=self._init_padding(padding), **kwargs)

    def _symmetric_pads(self):
        return _pads(self.kernel_size, self.dilation_rate)


@keras.saving.register_keras_serializable(package="keras_resnets")
class MaxPooling2D(_SymmetricPadding, keras.layers.MaxPooling2D):
    """`keras.layers.MaxPooling2D` that also accepts `padding="symmetric"`.

    `"symmetric"` pads `(pool_size - 1) // 2` on every side with -inf, so the padding can
    never win the max, then pools `"valid"`: torch's `MaxPool2d(3, 2, padding=1)`, the stem
    pool of torchvision's ResNets and DenseNets. (Zero padding, as in keras.applications,
    gives the same result only after a ReLU.)

    Example:
    >>> y = MaxPooling2D(3, strides=2, padding="symmetric")(keras.Input((112, 112, 64)))
    """

    pad_value = float("-inf")

    def __init__(self, pool_size=2, strides=None, *, padding="valid", **kwargs):
        super().__init__(pool_size, strides, padding=self._init_padding(padding), **kwargs)

    def _symmetric_pads(self):
        return _pads(self.pool_size, (1,) * len(self.pool_size))
