"""The ResNet paper's augmentation, in both engines (He et al. 2015, section 4.2).

Zero-pad each image by `pad` pixels, crop a random window of the original size and flip it
horizontally with probability 1/2: `tf_pad_crop_flip` for tf.data (stateless, a function of
its seed) and `pad_crop_flip` for NumPy (a function of its generator). The two draw their
random numbers differently, so their crops differ, but each is reproducible.
"""

import numpy as np


def tf_pad_crop_flip(images, seed, *, pad):
    """Zero-pads, randomly crops back to size and randomly flips a batch, per image.

    One gather per axis does all three at once, vectorised over the batch: per-image
    `tf.image` calls inside a per-example map cost far more on few CPU cores. Flipping is
    reversing the crop's column indices.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offset_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    offsets = tf.random.stateless_uniform(
        [batch, 2], seed=offset_seed, minval=0, maxval=2 * pad + 1, dtype=tf.int32
    )
    flip = tf.random.stateless_uniform([batch], seed=flip_seed) < 0.5
    rows = offsets[:, :1] + tf.range(height)[tf.newaxis]
    cols = offsets[:, 1:] + tf.range(width)[tf.newaxis]
    cols = tf.where(flip[:, tf.newaxis], tf.reverse(cols, axis=[1]), cols)
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def pad_crop_flip(images, rng, *, pad=4):
    """NumPy twin of the tf.data augmentation: pad, random crop, random flip, per image.

    Args:
        images: `[B, H, W, C]` array.
        rng: a `numpy.random.Generator`.
        pad: zero padding on each side, in pixels.

    Returns:
        An array of `images`' shape and dtype.
    """
    batch, height, width = images.shape[:3]
    padded = np.pad(images, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    offsets = rng.integers(0, 2 * pad + 1, size=(batch, 2))
    flip = rng.random(batch) < 0.5
    rows = offsets[:, :1] + np.arange(height)
    cols = offsets[:, 1:] + np.arange(width)
    cols = np.where(flip[:, None], cols[:, ::-1], cols)
    return padded[np.arange(batch)[:, None, None], rows[:, :, None], cols[:, None, :]]
