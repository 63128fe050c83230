"""HighwayUnit: y = H(x) * T(x) + x * (1 - T(x)) (Srivastava et al. 2015)."""

import keras

from keras_resnets.layers import _defaults, _fused_gate


@keras.saving.register_keras_serializable(package="keras_resnets")
class HighwayUnit(keras.layers.Layer):
    """A convolutional highway unit.

    `y = H(x) * T(x) + x * (1 - T(x))`, where the transform `H` is a convolution with a ReLU
    and the gate `T` is a convolution with a sigmoid (Srivastava, Greff & Schmidhuber 2015,
    "Training Very Deep Networks", section 2). The gate's bias starts negative, so a new
    network starts by carrying its input through (the paper suggests -1 to -3; the article
    uses -1).

    Args:
        filters: int or None, output channels; a highway unit must keep the input width, so
            None (the default) takes the input's channel count, and anything else must equal it.
        kernel_size: int, size of both convolutions. Defaults to 3.
        gate_bias_initializer: float, the gate's initial bias. Defaults to -1.0.
        activation: activation of H. Defaults to "relu".
        use_batch_norm: bool, BN after H's convolution (before its activation). The 2015
            paper and the article have none. Defaults to False.
        kernel_initializer: Defaults to "he_normal"; H and T each get their own clone.
        kernel_regularizer: Defaults to None.
        data_format: "channels_last" or "channels_first". Defaults to Keras's setting.
        fused: bool, in training on the TensorFlow backend, compute the mix
            `x + T * (H - x)` and its gradient as one XLA-compiled kernel rather than as
            separate ops: about 1.1x faster training for the article's HighwayNet under
            `mixed_bfloat16` on an AMX CPU, no change in float32 (`layers/_fused_gate.py`).
            Same values either way; inference and exports never use XLA. False keeps plain
            ops, e.g. where TensorFlow has no XLA. Other backends ignore it. Defaults to True.

    Input shape: 4D tensor `(batch, H, W, C)`. Output shape: the same.

    Example:
    >>> x = keras.Input((32, 32, 64))
    >>> y = HighwayUnit(gate_bias_initializer=-2.0)(x)  # (None, 32, 32, 64)
    """

    def __init__(
        self,
        filters=None,
        kernel_size=3,
        *,
        gate_bias_initializer=-1.0,
        activation="relu",
        use_batch_norm=False,
        kernel_initializer=_defaults.KERNEL_INITIALIZER,
        kernel_regularizer=None,
        data_format=None,
        fused=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if filters is not None:
            filters = _defaults.check_int("filters", filters)
        kernel_size = _defaults.check_kernel_size("kernel_size", kernel_size)
        gate_bias_initializer = _defaults.check_number(
            "gate_bias_initializer",
            gate_bias_initializer,
            # A gate that starts open would not carry the input (Srivastava et al.: -1 to -3).
            interval="<= 0, so that the unit starts by carrying its input (Srivastava et al. "
            "suggest -1 to -3)",
            ok=lambda v: v <= 0,
        )
        use_batch_norm = _defaults.check_bool("use_batch_norm", use_batch_norm)
        self.filters = filters
        self.kernel_size = kernel_size
        self.gate_bias_initializer = float(gate_bias_initializer)
        self.activation = keras.activations.get(activation)
        self.use_batch_norm = use_batch_norm
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.data_format = _defaults.standardize_data_format(data_format)
        self.fused = _defaults.check_bool("fused", fused)
        self._axis = _defaults.channel_axis(self.data_format)

    def build(self, input_shape):
        channels = input_shape[self._axis]
        if self.filters is not None and self.filters != channels:
            raise ValueError(
                "A highway unit adds its input to its output, so `filters` must equal the input "
                f"channels ({channels}). Received: filters={self.filters}"
            )
        common = dict(
            kernel_regularizer=self.kernel_regularizer,
            owner=self.name,
            data_format=self.data_format,
            dtype=self.dtype_policy,
        )
        self.transform = _defaults.conv2d(
            channels,
            self.kernel_size,
            use_bias=not self.use_batch_norm,
            kernel_initializer=self.kernel_initializer,
            name="transform",
            **common,
        )
        self.gate = _defaults.conv2d(
            channels,
            self.kernel_size,
            use_bias=True,  # its sigmoid is applied in `call`, fused with the mix
            kernel_initializer=self.kernel_initializer,
            bias_initializer=keras.initializers.Constant(self.gate_bias_initializer),
            name="gate",
            **common,
        )
        self.transform.build(input_shape)
        self.gate.build(input_shape)
        if self.use_batch_norm:
            self.transform_bn = _defaults.batch_norm(
                name="transform_bn", data_format=self.data_format, dtype=self.dtype_policy
            )
            self.transform_bn.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        h = self.transform(inputs)
        if self.use_batch_norm:
            h = self.transform_bn(h, training=training)
        h = self.activation(h)
        # x + T * (H - x): the same value as H * T + x * (1 - T) with one multiply fewer.
        fused = training and self.fused
        mix = _fused_gate.gated_mix_training if fused else _fused_gate.gated_mix
        return mix(inputs, self.gate(inputs), h)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "gate_bias_initializer": self.gate_bias_initializer,
                "activation": keras.activations.serialize(self.activation),
                "use_batch_norm": self.use_batch_norm,
                "fused": self.fused,
                **_defaults.common_config(self),
            }
        )
        return config
