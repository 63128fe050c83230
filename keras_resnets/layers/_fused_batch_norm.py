"""One of the package's two backend-specific ops: TensorFlow's fused batch normalisation for
training, behind `keras_resnets.layers.BatchNormalization` (the other is the highway gate's
XLA-fused mix, `_fused_gate.py`).

Everything else in the package is written with `keras.ops` and runs on every backend.
Keras has no fused batch-norm op (`keras.ops.batch_normalization` takes precomputed
statistics), and on the TensorFlow backend the unfused form slows a ResNet's training step
markedly (measured in docs/benchmarks.md), so this module calls TensorFlow's own kernel
there and leaves the other backends, where XLA fuses the ops, to Keras.
"""

import keras

_FUSED_DTYPES = ("float32", "bfloat16", "float16")


def has_fused_batch_norm(dtype):
    """Whether `fused_batch_norm_training` has a kernel for inputs of `dtype` here."""
    return (
        keras.backend.backend() == "tensorflow"
        and keras.backend.standardize_dtype(dtype) in _FUSED_DTYPES
    )


def fused_batch_norm_training(x, gamma, beta, *, epsilon, channels_first=False):
    """Training-mode batch normalisation of a 4D tensor over its batch and spatial axes.

    Args:
        x: NHWC (NCHW with `channels_first=True`) float32, bfloat16 or float16 tensor.
        gamma, beta: per-channel scale and offset, or None for 1 and 0.
        epsilon: added to the variance.

    Returns:
        `(outputs, mean, variance)`: outputs in `x`'s dtype; the float32 batch mean and the
        biased batch variance, as `keras.ops.moments` gives them.
    """
    import tensorflow as tf

    channels = x.shape[1 if channels_first else -1]
    scale = tf.ones((channels,), tf.float32) if gamma is None else tf.cast(gamma, tf.float32)
    offset = tf.zeros((channels,), tf.float32) if beta is None else tf.cast(beta, tf.float32)
    # The raw op, not tf.compat.v1.nn.fused_batch_norm: the wrapper raises epsilon to
    # 1.001e-5 (an old cuDNN limit), which would change the package's eps=1e-5 results.
    outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=x,
        scale=scale,
        offset=offset,
        mean=tf.zeros((0,), tf.float32),
        variance=tf.zeros((0,), tf.float32),
        epsilon=epsilon,
        exponential_avg_factor=1.0,
        data_format="NCHW" if channels_first else "NHWC",
        is_training=True,
    )
    # The kernel normalises with the biased variance but returns the unbiased one (n - 1),
    # which tf.keras used for the moving average; Keras 3 uses the biased one.
    shape = tf.shape(x)
    n = tf.cast(tf.size(x) // shape[1 if channels_first else 3], tf.float32)
    variance = variance * (n - 1.0) / tf.maximum(n, 1.0)
    return outputs, mean, variance
