"""BatchNormalization with a fused training kernel on the TensorFlow backend."""

import keras

from keras_resnets.layers import _fused_batch_norm


@keras.saving.register_keras_serializable(package="keras_resnets")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, with one fused kernel per direction in training.

    Keras 3 writes training-mode batch normalisation as `ops.moments` followed by
    `ops.batch_normalization`. XLA (the JAX backend, or `jit_compile=True`) fuses those ops,
    but TensorFlow's graph runtime runs them one by one: about ten elementwise and reduction
    ops forward and as many backward, each a full pass over the activations. TensorFlow's
    `FusedBatchNormV3` (oneDNN's kernel on CPU, cuDNN's on GPU) does the same computation in
    one pass each way, so a ResNet trains markedly faster, in float32 and more so under
    `mixed_bfloat16`, where Keras's float32 upcast and the separate ops otherwise cancel
    AMX's gain (the figures, and how they were measured: docs/benchmarks.md).

    Same arguments, variables, statistics and results as Keras's layer (the tests compare the
    two): the batch statistics and the normalisation are computed in float32, the moving
    variance uses the biased batch variance, and the output has the layer's compute dtype.
    Inference, masks, `renorm`, `synchronized` and other backends take Keras's own path.

    Example:

    >>> x = keras.Input((32, 32, 16))
    >>> y = BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
    """

    def _fusable(self, inputs):
        return (
            not self.renorm
            and not getattr(self, "synchronized", False)
            and len(inputs.shape) == 4
            and self.axis % 4 in (1, 3)
            and _fused_batch_norm.has_fused_batch_norm(inputs.dtype)
        )

    def update_moving_statistics(self, mean, variance):
        """Move the moving mean and variance `1 - momentum` of the way to `mean`, `variance`
        (batch statistics computed elsewhere: `DenseBlock(memory_efficient=True)`)."""
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and mask is None and self._fusable(inputs)):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = _fused_batch_norm.fused_batch_norm_training(
            inputs,
            self.gamma if self.scale else None,
            self.beta if self.center else None,
            epsilon=self.epsilon,
            channels_first=self.axis % 4 == 1,
        )
        self.update_moving_statistics(mean, variance)
        return keras.ops.cast(outputs, self.compute_dtype)
