"""DenseBlock and TransitionLayer (Huang et al. 2017, "Densely Connected Convolutional
Networks")."""

import keras
from keras import ops

from keras_resnets.layers import _defaults


@keras.saving.register_keras_serializable(package="keras_resnets")
class DenseBlock(keras.layers.Layer):
    """A dense block: every layer sees the concatenation of all earlier outputs.

    Layer `i` computes BN-ReLU-conv3x3 with `growth_rate` filters (optionally preceded by the
    BC bottleneck BN-ReLU-conv1x1 with `bottleneck_width * growth_rate` filters) of the
    concatenation of the block input and the outputs of layers `0..i-1` (Huang et al. 2017,
    section 3). The block returns the concatenation of its input and every layer's output.

    The article's port differs in three switches: `preactivation=False` (slim's conv-BN-ReLU),
    `include_input=False` (its later layers concatenate only earlier outputs) and
    `output_mode="last"` (it returns only the last layer).

    Args:
        num_layers: int, number of layers in the block.
        growth_rate: int, k, the filters each layer adds.
        bottleneck: bool, the BC bottleneck 1x1 conv before each 3x3. Defaults to False.
        bottleneck_width: int, the bottleneck conv has `bottleneck_width * growth_rate`
            filters. Defaults to 4, as in the paper.
        dropout_rate: float, dropout after each conv. Defaults to 0.0 (the paper uses 0.2
            without data augmentation).
        preactivation: bool, BN-ReLU-conv (the paper) rather than conv-BN-ReLU. Defaults to True.
        include_input: bool, whether the block input takes part in the concatenations.
            Defaults to True.
        output_mode: "concat" (input and all layer outputs, the paper) or "last". Defaults to
            "concat".
        memory_efficient: bool, recompute each layer's concatenation, BN-ReLUs and
            convolutions in the backward pass instead of storing them (`keras.remat`;
            Pleiss et al. 2017), so that training memory grows linearly, not quadratically,
            with depth. Defaults to False.
        kernel_initializer: Defaults to "he_normal"; each convolution gets its own clone.
        kernel_regularizer: Defaults to None.
        data_format: "channels_last" or "channels_first". Defaults to Keras's setting.

    Input shape: 4D tensor `(batch, H, W, C)`.
    Output shape: `(batch, H, W, C + num_layers * growth_rate)` for `output_mode="concat"`,
    `(batch, H, W, growth_rate)` for `output_mode="last"`.

    Example:
    >>> x = keras.Input((32, 32, 24))
    >>> y = DenseBlock(16, 12, bottleneck=True)(x)  # (None, 32, 32, 216)
    """

    def __init__(
        self,
        num_layers,
        growth_rate,
        *,
        bottleneck=False,
        bottleneck_width=4,
        dropout_rate=0.0,
        preactivation=True,
        include_input=True,
        output_mode="concat",
        memory_efficient=False,
        kernel_initializer=_defaults.KERNEL_INITIALIZER,
        kernel_regularizer=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        num_layers = _defaults.check_int("num_layers", num_layers)
        growth_rate = _defaults.check_int("growth_rate", growth_rate)
        bottleneck_width = _defaults.check_int("bottleneck_width", bottleneck_width)
        bottleneck, preactivation, include_input, memory_efficient = (
            _defaults.check_bool(name, value)
            for name, value in (
                ("bottleneck", bottleneck),
                ("preactivation", preactivation),
                ("include_input", include_input),
                ("memory_efficient", memory_efficient),
            )
        )
        if output_mode not in ("concat", "last"):
            raise ValueError(
                f"`output_mode` must be 'concat' or 'last'. Received: output_mode={output_mode!r}"
            )
        dropout_rate = _defaults.check_number(
            "dropout_rate", dropout_rate, interval="in [0, 1)", ok=lambda v: 0 <= v < 1
        )
        self.num_layers = num_layers
        self.growth_rate = growth_rate
        self.bottleneck = bottleneck
        self.bottleneck_width = bottleneck_width
        self.dropout_rate = dropout_rate
        self.preactivation = preactivation
        self.include_input = include_input
        self.output_mode = output_mode
        self.memory_efficient = memory_efficient
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.data_format = _defaults.standardize_data_format(data_format)
        self._axis = _defaults.channel_axis(self.data_format)

    def _conv(self, filters, kernel_size, name):
        return _defaults.conv2d(
            filters,
            kernel_size,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            owner=self.name,
            data_format=self.data_format,
            name=name,
            dtype=self.dtype_policy,
        )

    def _bn(self, name):
        return _defaults.batch_norm(
            name=name, data_format=self.data_format, dtype=self.dtype_policy
        )

    def _build_pair(self, bn, conv, shape):
        """Build a BN/conv pair in this block's order; return the pair's output shape."""
        out = list(shape)
        out[self._axis] = conv.filters
        bn.build(tuple(shape) if self.preactivation else tuple(out))
        conv.build(tuple(shape))
        return out

    def build(self, input_shape):
        in_channels = input_shape[self._axis]
        k = self.growth_rate
        # One list of sublayers per role; layer i uses index i of each.
        self.bottleneck_bns, self.bottleneck_convs = [], []
        self.bns, self.convs, self.dropouts = [], [], []
        for i in range(self.num_layers):
            if self.include_input:
                channels = in_channels + i * k
            else:
                channels = i * k if i else in_channels
            shape = list(input_shape)
            shape[self._axis] = channels
            if self.bottleneck:
                bn, conv = (
                    self._bn(f"layer{i}_bottleneck_bn"),
                    self._conv(self.bottleneck_width * k, 1, f"layer{i}_bottleneck_conv"),
                )
                shape = self._build_pair(bn, conv, shape)
                self.bottleneck_bns.append(bn)
                self.bottleneck_convs.append(conv)
            bn, conv = self._bn(f"layer{i}_bn"), self._conv(k, 3, f"layer{i}_conv")
            self._build_pair(bn, conv, shape)
            self.bns.append(bn)
            self.convs.append(conv)
            self.dropouts.append(
                keras.layers.Dropout(
                    self.dropout_rate, name=f"layer{i}_dropout", dtype=self.dtype_policy
                )
                if self.dropout_rate
                else None
            )
        self.built = True

    def _bn_relu_conv(self, x, bn, conv, training):
        if self.preactivation:
            return conv(ops.relu(bn(x, training=training)))
        return ops.relu(bn(conv(x), training=training))

    def _pairs(self, i):
        """Layer i's (BN, conv) pairs in order: the bottleneck's, if any, then the 3x3's."""
        pairs = [(self.bottleneck_bns[i], self.bottleneck_convs[i])] if self.bottleneck else []
        return pairs + [(self.bns[i], self.convs[i])]

    def _layer(self, i, features, training, stats=None):
        """Layer i on the list of features it sees (`stats`: their batch moments, given in
        memory-efficient training with pre-activation)."""
        if self.memory_efficient and training:
            x = self._recomputed_layer(i, features, stats)
        else:
            x = self._concat(features)
            for bn, conv in self._pairs(i):
                x = self._bn_relu_conv(x, bn, conv, training)
        if self.dropouts[i] is not None:
            x = self.dropouts[i](x, training=training)
        return x

    def _concat(self, features):
        return features[0] if len(features) == 1 else ops.concatenate(features, axis=self._axis)

    def _moments(self, x):
        # BatchNormalization's own statistics: float32 (it upcasts bf16/fp16), biased variance.
        axes = [a for a in range(len(x.shape)) if a != self._axis % len(x.shape)]
        return ops.moments(ops.cast(x, "float32"), axes=axes)

    def _recomputed_layer(self, i, features, stats):
        """The layer with its quadratically growing tensors recomputed in the backward pass
        instead of stored (Pleiss et al. 2017).

        A plain block stores, for every layer, the concatenation of all earlier features and
        its BN and ReLU outputs, which grow quadratically with depth. Here each BN-ReLU-conv
        pair is one recomputed function of its inputs: only the convolutions' outputs (4k
        and k channels in a BC layer) stay in memory. The recomputation costs the
        concatenation, the BN, the ReLU and the convolution of each pair again.

        Each pair normalises with batch statistics computed outside the recomputed function
        and updates the BN's moving statistics once, outside it too (an update inside would
        run again in the recomputation: TF's recompute_grad re-executes assignments). The
        batch moments of a concatenation are the concatenated moments of its parts, so
        `call` computes each feature's moments once and every later layer reuses them: that
        saves more than the recomputation costs (docs/benchmarks.md).
        """
        pairs = self._pairs(i)
        if not self.preactivation:
            # conv first: only the concatenation, its input, needs recomputing.
            bn, conv = pairs[0]
            x = keras.remat(lambda *feats: conv(self._concat(feats)))(*features)
            return ops.relu(bn(x, training=True))
        x = self._recomputed_pair(features, stats, *pairs[0])
        for bn, conv in pairs[1:]:  # the 3x3 pair after a bottleneck
            x = self._recomputed_pair([x], [self._moments(x)], bn, conv)
        return x

    def _recomputed_pair(self, inputs, stats, bn, conv):
        """conv(ReLU(BN(concat(inputs)))), BN by the batch moments `stats` of the inputs,
        with everything before the conv's output recomputed in the backward pass."""
        mean = ops.concatenate([m for m, _ in stats], axis=0)
        variance = ops.concatenate([v for _, v in stats], axis=0)
        bn.update_moving_statistics(mean, variance)

        def bn_relu_conv(mean, variance, *inputs):
            x = ops.batch_normalization(
                ops.cast(self._concat(inputs), "float32"),
                mean,
                variance,
                axis=self._axis,
                offset=ops.cast(bn.beta, "float32"),
                scale=ops.cast(bn.gamma, "float32"),
                epsilon=bn.epsilon,
            )
            return conv(ops.relu(ops.cast(x, bn.compute_dtype)))

        return keras.remat(bn_relu_conv)(mean, variance, *inputs)

    def call(self, inputs, training=None):
        # Memory-efficient training with pre-activation needs each feature's batch moments.
        with_stats = bool(self.memory_efficient and training and self.preactivation)
        input_stats = self._moments(inputs) if with_stats else None
        outputs, output_stats = [], []
        for i in range(self.num_layers):
            if self.include_input:
                features, stats = [inputs] + outputs, [input_stats] + output_stats
            else:
                features = outputs if outputs else [inputs]
                stats = output_stats if outputs else [input_stats]
            outputs.append(self._layer(i, features, training, stats))
            if with_stats and i < self.num_layers - 1:
                output_stats.append(self._moments(outputs[-1]))
        if self.output_mode == "last":
            return outputs[-1]
        return ops.concatenate([inputs] + outputs, axis=self._axis)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if self.output_mode == "last":
            shape[self._axis] = self.growth_rate
        elif shape[self._axis] is not None:
            shape[self._axis] += self.num_layers * self.growth_rate
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "growth_rate": self.growth_rate,
                "bottleneck": self.bottleneck,
                "bottleneck_width": self.bottleneck_width,
                "dropout_rate": self.dropout_rate,
                "preactivation": self.preactivation,
                "include_input": self.include_input,
                "output_mode": self.output_mode,
                "memory_efficient": self.memory_efficient,
                **_defaults.common_config(self),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_resnets")
class TransitionLayer(keras.layers.Layer):
    """DenseNet transition: BN-ReLU-conv1x1 with compression, then 2x2 average pooling.

    Huang et al. 2017, section 3 ("Pooling layers", "Compression"): the 1x1 conv outputs
    `floor(compression * C)` channels; compression < 1 is the "C" of DenseNet-BC.

    Args:
        compression: float in (0, 1], theta. Defaults to 0.5.
        pool: bool, whether to downsample with 2x2 average pooling. Defaults to True.
        kernel_initializer: Defaults to "he_normal".
        kernel_regularizer: Defaults to None.
        data_format: "channels_last" or "channels_first". Defaults to Keras's setting.

    Input shape: `(batch, H, W, C)`. Output shape: `(batch, H // 2, W // 2, floor(theta * C))`.

    Example:
    >>> x = keras.Input((32, 32, 216))
    >>> y = TransitionLayer(0.5)(x)  # (None, 16, 16, 108)
    """

    def __init__(
        self,
        compression=0.5,
        *,
        pool=True,
        kernel_initializer=_defaults.KERNEL_INITIALIZER,
        kernel_regularizer=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.compression = _defaults.check_number(
            "compression", compression, interval="in (0, 1]", ok=lambda v: 0 < v <= 1
        )
        self.pool = _defaults.check_bool("pool", pool)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.data_format = _defaults.standardize_data_format(data_format)
        self._axis = _defaults.channel_axis(self.data_format)

    def _out_channels(self, in_channels):
        return int(self.compression * in_channels)

    def build(self, input_shape):
        in_channels = input_shape[self._axis]
        spatial = (1, 2) if self._axis == -1 else (2, 3)
        if self.pool and any(input_shape[d] is not None and input_shape[d] < 2 for d in spatial):
            raise ValueError(
                f"{self.name} pools 2x2, so its input needs height and width of at least 2 "
                "(a smaller map would pool to nothing); use pool=False there. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        if in_channels is not None and self._out_channels(in_channels) < 1:
            raise ValueError(
                f"`compression` {self.compression} leaves no channel of the {in_channels} "
                f"that reach {self.name}: it must be at least 1/{in_channels}. "
                f"Received: compression={self.compression!r}"
            )
        self.bn = _defaults.batch_norm(
            name="bn", data_format=self.data_format, dtype=self.dtype_policy
        )
        self.conv = _defaults.conv2d(
            self._out_channels(input_shape[self._axis]),
            1,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            owner=self.name,
            data_format=self.data_format,
            name="conv",
            dtype=self.dtype_policy,
        )
        self.bn.build(input_shape)
        self.conv.build(input_shape)
        if self.pool:
            self.avg_pool = keras.layers.AveragePooling2D(
                2, data_format=self.data_format, name="pool", dtype=self.dtype_policy
            )
        self.built = True

    def call(self, inputs, training=None):
        x = self.conv(ops.relu(self.bn(inputs, training=training)))
        return self.avg_pool(x) if self.pool else x

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[self._axis] = self._out_channels(shape[self._axis])
        if self.pool:
            for d in (1, 2) if self._axis == -1 else (2, 3):
                if shape[d] is not None:
                    shape[d] //= 2
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "compression": self.compression,
                "pool": self.pool,
                **_defaults.common_config(self),
            }
        )
        return config
