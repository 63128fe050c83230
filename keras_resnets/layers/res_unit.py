"""ResUnit: the residual unit of He et al. 2015 and 2016, as one Keras layer."""

import keras
from keras import ops

from keras_resnets.layers import _defaults

SHORTCUTS = ("A", "B", "C", "none")


@keras.saving.register_keras_serializable(package="keras_resnets")
class ResUnit(keras.layers.Layer):
    """A residual unit: basic or bottleneck, post- or pre-activation, with shortcut A/B/C.

    The article's unit is the pre-activation basic form, BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus
    the input (He et al. 2016, "Identity Mappings in Deep Residual Networks", Fig. 4e). With
    `preactivation=False` it is the original unit (He et al. 2015, "Deep Residual Learning",
    Fig. 2/5): conv-BN-ReLU-conv-BN, add, ReLU.

    Args:
        filters: int, width of the 3x3 convolutions. The unit outputs `filters` channels,
            or `filters * expansion` when `bottleneck=True`.
        kernel_size: int or pair of ints, the spatial size of the main convolutions.
            Defaults to 3.
        strides: int, 1 or 2. Defaults to 1. Basic units stride their first convolution;
            bottlenecks stride the 1x1 or the 3x3, see `stride_in_1x1`.
        bottleneck: bool, use 1x1-3x3-1x1 instead of 3x3-3x3. Defaults to False.
        stride_in_1x1: bool or None, where a strided bottleneck strides (Detectron's name).
            True strides the first 1x1 (ResNet v1 as in Caffe and keras.applications); False
            strides the 3x3 (torchvision, timm and NVIDIA's "v1.5"; fb.resnet.torch's
            pre-activation units). Defaults to None: True for post-activation units, False
            for pre-activation ones.
        expansion: int, output width multiplier of a bottleneck. Defaults to 4.
        preactivation: bool, BN-ReLU before each conv (v2) instead of after (v1).
            Defaults to True, as in the article.
        shortcut: one of "A" (identity; subsample and zero-pad channels where the shape
            changes, no parameters), "B" (1x1 projection only where the shape changes),
            "C" (projection always) or "none" (no shortcut: a plain-net unit).
            He et al. 2015, section 3.3 and Table 3. Defaults to "B".
        zero_init_residual: bool, start the residual branch at zero so the unit starts as
            the identity (Goyal et al. 2017): zeroes the last BN's gamma (v1) or the last
            conv's kernel (v2, which has no BN at the end). Defaults to False.
        use_bias: bool, biases on the main convolutions. Defaults to False (BN follows);
            the article's slim code has biases, so its network turns them on.
        padding: "symmetric" (the default) pads strided 3x3 convolutions by one on every
            side, as Caffe, Torch and keras.applications do; "same" is TensorFlow's padding,
            which pads only after at even sizes (the article's TF-slim code).
        kernel_initializer: Defaults to "he_normal"; each convolution gets its own clone.
        kernel_regularizer: Defaults to None; recipes add weight decay in the optimizer.
        data_format: "channels_last" or "channels_first". Defaults to Keras's setting.

    Input shape: 4D tensor `(batch, H, W, C)` (channels_last).
    Output shape: `(batch, ceil(H / strides), ceil(W / strides), out_channels)`.

    Example:
    >>> x = keras.Input((32, 32, 16))
    >>> y = ResUnit(32, strides=2, shortcut="A")(x)  # (None, 16, 16, 32)
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        *,
        strides=1,
        bottleneck=False,
        stride_in_1x1=None,
        expansion=4,
        preactivation=True,
        shortcut="B",
        zero_init_residual=False,
        use_bias=False,
        padding="symmetric",
        kernel_initializer=_defaults.KERNEL_INITIALIZER,
        kernel_regularizer=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        filters = _defaults.check_int("filters", filters)
        kernel_size = _defaults.check_kernel_size("kernel_size", kernel_size)
        expansion = _defaults.check_int("expansion", expansion)
        bottleneck, preactivation, zero_init_residual, use_bias = (
            _defaults.check_bool(name, value)
            for name, value in (
                ("bottleneck", bottleneck),
                ("preactivation", preactivation),
                ("zero_init_residual", zero_init_residual),
                ("use_bias", use_bias),
            )
        )
        _defaults.check_choice("strides", strides, (1, 2))
        _defaults.check_choice("shortcut", shortcut, SHORTCUTS)
        _defaults.check_choice("stride_in_1x1", stride_in_1x1, (None, True, False))
        _defaults.check_choice("padding", padding, _defaults.PADDINGS)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.bottleneck = bottleneck
        self.stride_in_1x1 = stride_in_1x1
        self.padding = padding
        self.expansion = expansion
        self.preactivation = preactivation
        self.shortcut = shortcut
        self.zero_init_residual = zero_init_residual
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.data_format = _defaults.standardize_data_format(data_format)
        self._axis = _defaults.channel_axis(self.data_format)

    @property
    def out_channels(self):
        return self.filters * self.expansion if self.bottleneck else self.filters

    def _conv(self, filters, kernel_size, name, strides=1, zero_init=False, use_bias=None):
        return _defaults.conv2d(
            filters,
            kernel_size,
            strides=strides,
            use_bias=self.use_bias if use_bias is None else use_bias,
            kernel_initializer="zeros" if zero_init else self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            padding=self.padding,
            owner=self.name,
            data_format=self.data_format,
            name=name,
            dtype=self.dtype_policy,
        )

    def _bn(self, name, zero_init=False):
        return _defaults.batch_norm(
            name=name, data_format=self.data_format, zero_init=zero_init, dtype=self.dtype_policy
        )

    def build(self, input_shape):
        in_channels = input_shape[self._axis]
        f, k, s = self.filters, self.kernel_size, self.strides
        zero_bn = self.zero_init_residual and not self.preactivation
        zero_conv = self.zero_init_residual and self.preactivation
        if self.bottleneck:
            in_1x1 = self.stride_in_1x1
            if in_1x1 is None:
                in_1x1 = not self.preactivation
            s1, s2 = (s, 1) if in_1x1 else (1, s)
            specs = [(f, 1, s1), (f, k, s2), (self.out_channels, 1, 1)]
        else:
            specs = [(f, k, s), (f, k, 1)]
        # Pre-activation: bn_i precedes conv_i (bn1 sees the unit input). Post-activation:
        # bn_i follows conv_i.
        self.convs, self.bns = [], []
        shape = input_shape
        for i, (filters, kernel_size, strides) in enumerate(specs, start=1):
            last = i == len(specs)
            bn = self._bn(f"bn{i}", zero_init=last and zero_bn)
            conv = self._conv(
                filters, kernel_size, f"conv{i}", strides, zero_init=last and zero_conv
            )
            if self.preactivation:
                bn.build(shape)
                conv.build(shape)
                shape = conv.compute_output_shape(shape)
            else:
                conv.build(shape)
                shape = conv.compute_output_shape(shape)
                bn.build(shape)
            self.convs.append(conv)
            self.bns.append(bn)

        shape_changes = s != 1 or in_channels != self.out_channels
        self._project = self.shortcut == "C" or (self.shortcut == "B" and shape_changes)
        self._pad_channels = 0
        if self.shortcut == "A" and shape_changes:
            if in_channels > self.out_channels:
                raise ValueError(
                    "Shortcut 'A' can only widen channels (it zero-pads). Received: "
                    f"{in_channels} input channels for {self.out_channels} output channels."
                )
            self._pad_channels = self.out_channels - in_channels
        if self._project:
            self.shortcut_conv = self._conv(
                self.out_channels, 1, "shortcut_conv", s, use_bias=False
            )
            self.shortcut_conv.build(input_shape)
            if not self.preactivation:
                # Pre-activation projections read the already normalised input (bn1), so
                # only the post-activation form normalises the projection.
                self.shortcut_bn = self._bn("shortcut_bn")
                self.shortcut_bn.build(self.shortcut_conv.compute_output_shape(input_shape))
        self.built = True

    def _shortcut(self, inputs, preactivated, training):
        if self.shortcut == "none":
            return None
        if self._project:
            if self.preactivation:
                return self.shortcut_conv(preactivated)
            return self.shortcut_bn(self.shortcut_conv(inputs), training=training)
        x = inputs
        if self.strides != 1:
            x = (
                x[:, :: self.strides, :: self.strides, :]
                if self._axis == -1
                else x[:, :, :: self.strides, :: self.strides]
            )
        if self._pad_channels:
            pad = [[0, 0]] * 4
            pad[self._axis] = [0, self._pad_channels]
            x = ops.pad(x, pad)
        return x

    def call(self, inputs, training=None):
        x = inputs
        preactivated = None
        n = len(self.convs)
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            if self.preactivation:
                x = ops.relu(bn(x, training=training))
                if i == 0:
                    preactivated = x
                x = conv(x)
            else:
                x = bn(conv(x), training=training)
                if i < n - 1:
                    x = ops.relu(x)
        shortcut = self._shortcut(inputs, preactivated, training)
        if shortcut is not None:
            x = x + shortcut
        if not self.preactivation:
            x = ops.relu(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        spatial = (1, 2) if self._axis == -1 else (2, 3)
        for d in spatial:
            if shape[d] is not None:
                shape[d] = -(-shape[d] // self.strides)
        shape[self._axis] = self.out_channels
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "bottleneck": self.bottleneck,
                "stride_in_1x1": self.stride_in_1x1,
                "expansion": self.expansion,
                "preactivation": self.preactivation,
                "shortcut": self.shortcut,
                "zero_init_residual": self.zero_init_residual,
                "use_bias": self.use_bias,
                "padding": self.padding,
                **_defaults.common_config(self),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        # Units saved before `padding` existed were built with TensorFlow's "same" padding:
        # load them as they were trained.
        config = {"padding": "same", **config}
        return super().from_config(config)
