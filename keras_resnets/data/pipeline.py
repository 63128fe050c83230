"""The input pipelines: `make_pipeline` (tf.data) and `ArrayBatches` (NumPy, a PyDataset).

Both shuffle, augment (`keras_resnets.data.augment`) and batch in-memory arrays with every
random choice a function of `(seed, epoch, step)`, so that a resumed run sees the batches
of the uninterrupted one.
"""

import os
import threading

import keras
import numpy as np

from keras_resnets import _checks
from keras_resnets.data import augment as augment_lib
from keras_resnets.data import engines


def make_pipeline(
    x,
    y,
    *,
    batch_size,
    training,
    seed=0,
    augment=True,
    drop_remainder=None,
    shuffle=None,
    first_epoch=None,
    steps_per_epoch=None,
    pad=4,
    engine=None,
):
    """Builds a batched `tf.data` pipeline of `(float32 images, int32 labels)` from arrays.

    Training pipelines shuffle anew every epoch and, if `augment`, zero-pad each image by
    `pad` pixels, crop a random window of the original size and flip it horizontally with
    probability 1/2 (He et al. 2015, section 4.2). Everything random is a function of `seed`
    and the epoch: two pipelines built alike yield the same batches.

    By default the pipeline is one epoch long and each pass over it (each Keras epoch) is
    a new epoch. With `first_epoch` or `steps_per_epoch` it is instead an endless stream of
    epochs `first_epoch, first_epoch + 1, ...` of `steps_per_epoch` batches each, for
    `fit(..., steps_per_epoch=...)`: a run resumed at epoch `k` with `first_epoch=k` sees
    exactly the batches the uninterrupted run saw from epoch `k` on.

    Args:
        x: uint8 images, `[N, H, W, C]`.
        y: integer labels, `[N]`.
        batch_size: examples per batch.
        training: whether this is a train pipeline (shuffled, augmented, remainder dropped).
        seed: seed of the shuffle and the augmentation. Defaults to `0`.
        augment: whether a training pipeline augments. Ignored when `training=False`.
            Defaults to `True`.
        drop_remainder: whether to drop the last partial batch. Defaults to `None`:
            `training`.
        shuffle: whether to shuffle. Defaults to `None`: `training`.
        first_epoch: index of the first epoch of an endless stream (see above). Defaults
            to `None`: `0` if `steps_per_epoch` is set, else a one-epoch pipeline.
        steps_per_epoch: batches per epoch of an endless stream, at most a full pass.
            Defaults to `None`: a full pass.
        pad: zero padding before the random crop, in pixels. Defaults to `4`.
        engine: `"tf.data"`, or `"numpy"` for an `ArrayBatches` (a `keras.utils.PyDataset`
            that needs no TensorFlow: the JAX or PyTorch backend alone). Defaults to `None`:
            tf.data where TensorFlow is installed, else NumPy. The two draw their random
            numbers differently, so their batches differ, but each is reproducible.

    Returns:
        A `tf.data.Dataset` of `(images, labels)`: float32 `[B, H, W, C]` with values in
        [0, 255] and int32 `[B]`; with `engine="numpy"`, an `ArrayBatches` of the same.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length. Received: {len(x)} and {len(y)}")
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"`x` must be images [N, H, W, C]. Received: shape {x.shape}")
    if x.dtype != np.uint8:
        # The pipelines read uint8: a cast would turn [0, 1] floats into zeros silently.
        raise ValueError(f"`x` must be uint8 pixels in [0, 255]. Received: dtype {x.dtype}")
    batch_size = _checks.check_int("batch_size", batch_size)
    seed = _checks.check_int("seed", seed, minimum=None)  # any integer: folded into 64 bits
    pad = _checks.check_int("pad", pad, minimum=0)
    if first_epoch is not None:
        first_epoch = _checks.check_int("first_epoch", first_epoch, minimum=0)
    if steps_per_epoch is not None:
        steps_per_epoch = _checks.check_int("steps_per_epoch", steps_per_epoch)
    training = _checks.check_bool("training", training)
    augment = _checks.check_bool("augment", augment)
    drop_remainder = training if drop_remainder is None else drop_remainder
    drop_remainder = _checks.check_bool("drop_remainder", drop_remainder)
    shuffle = _checks.check_bool("shuffle", training if shuffle is None else shuffle)
    augment = augment and training
    full_steps = len(x) // batch_size if drop_remainder else -(-len(x) // batch_size)
    if full_steps == 0:
        # Keras's fit would run no step and say nothing.
        raise ValueError(
            f"A pipeline of {len(x)} examples in batches of {batch_size} with "
            f"drop_remainder={drop_remainder} has no batch"
            + (f": use a batch_size of at most {len(x)}" if len(x) else "")
            + f". Received: batch_size={batch_size}"
        )
    if steps_per_epoch is not None and not 1 <= steps_per_epoch <= full_steps:
        raise ValueError(
            f"`steps_per_epoch` must be between 1 and {full_steps} (a full pass over "
            f"{len(x)} examples in batches of {batch_size}). "
            f"Received: steps_per_epoch={steps_per_epoch}"
        )
    steps = full_steps if steps_per_epoch is None else steps_per_epoch
    if engines.resolve_engine(engine) == "numpy":
        return ArrayBatches(
            x,
            y,
            batch_size=batch_size,
            augment=augment,
            seed=seed,
            shuffle=shuffle,
            drop_remainder=drop_remainder,
            first_epoch=first_epoch,
            steps_per_epoch=steps,
            pad=pad,
        )
    tf = engines.tensorflow(required='engine="tf.data"')
    images = tf.constant(np.asarray(x, dtype=np.uint8))
    labels = tf.constant(np.asarray(y, dtype=np.int32))

    def one_epoch(epoch_key):
        # Every random choice of an epoch derives from (seed, epoch key) with stateless ops:
        # stateful ones (tf.random.Generator, Keras's SeedGenerator, ds.shuffle's iterator
        # state) could not start at epoch k, and a generator would be consumed in a
        # thread-dependent order under parallel map.
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch_key])
        order = tf.range(len(x), dtype=tf.int64)
        if shuffle:
            # A full uniform permutation, as ds.shuffle(len(x)) gives, of 8-byte indices:
            # batches are then gathered from the in-memory arrays, with no shuffle buffer of
            # images to fill at each epoch start.
            noise = tf.random.stateless_uniform([len(x)], seed=_fold_in(epoch_seed, 0))
            order = tf.argsort(noise)
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder)
        batches = batches.take(steps).enumerate()
        return batches.map(lambda step, indices: (indices, _fold_in(epoch_seed, step + 1)))

    def load(indices, batch_seed):
        batch = tf.gather(images, indices)
        if augment:
            batch = augment_lib.tf_pad_crop_flip(batch, batch_seed, pad=pad)
        return tf.cast(batch, tf.float32), tf.gather(labels, indices)

    if first_epoch is not None or steps_per_epoch is not None:
        epoch_keys = tf.data.Dataset.counter(start=first_epoch or 0)
        cardinality = tf.data.INFINITE_CARDINALITY
    else:
        # One epoch whose key is drawn anew at each pass, so that every Keras epoch is a
        # new shuffle and new crops, still reproducible from `seed`.
        epoch_keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
        cardinality = steps
    ds = epoch_keys.flat_map(one_epoch)
    ds = ds.apply(tf.data.experimental.assert_cardinality(cardinality))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _fold_in(seed, data):
    import tensorflow as tf

    return tf.random.experimental.stateless_fold_in(seed, tf.cast(data, tf.int64))


class ArrayBatches(keras.utils.PyDataset):
    """Batches of in-memory arrays made with NumPy: a `keras.utils.PyDataset`.

    The pipeline for machines without TensorFlow (JAX or PyTorch backend alone): the same
    kind of shuffle, pad-crop-flip augmentation and batching as `make_pipeline`'s tf.data
    pipeline (other random numbers, so other batches), drawn from NumPy generators seeded
    by `(seed, epoch, step)`, so every batch is
    reproducible and a run resumed at epoch `k` (`first_epoch=k`) sees the batches the
    uninterrupted run saw. Build it with `make_pipeline(..., engine="numpy")`; the arguments
    are that function's.

    Which epoch is it? Pass `ds.epoch_callback()` to `fit`: it sets `ds.epoch` to fit's own
    epoch number as each epoch begins, which is exact also for a run resumed by
    `BackupAndRestore`. Without it, the epoch advances at each `on_epoch_end`, which Keras
    also calls once before training when it reads a batch to build the optimizer: the
    epochs are then shifted by one, still reproducibly. Iterating by hand stays in one epoch
    until `on_epoch_end` is called.

    Batches are prepared in `workers` threads, queued ahead of the training step (Keras's
    own PyDataset machinery), so their preparation overlaps the step.
    """

    def __init__(
        self,
        x,
        y,
        *,
        batch_size,
        augment=False,
        seed=0,
        shuffle=False,
        drop_remainder=False,
        first_epoch=None,
        steps_per_epoch=None,
        pad=4,
        workers=None,
    ):
        if workers is None:
            workers = min(4, os.cpu_count() or 1)
        for name, value in (
            ("batch_size", batch_size),
            ("workers", workers),
            ("steps_per_epoch", steps_per_epoch),
        ):
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
        self.x = np.asarray(x, dtype=np.uint8)
        self.y = np.asarray(y, dtype=np.int32)
        self.batch_size = int(batch_size)
        self.augment = augment
        # SeedSequence takes non-negative integers only.
        self.seed = int(seed) % 2**63
        self.shuffle = shuffle
        self.pad = pad
        batches = len(self.x) / self.batch_size
        if steps_per_epoch is None:
            steps_per_epoch = int(batches if drop_remainder else np.ceil(batches))
        self.steps = steps_per_epoch
        self.epoch = 0 if first_epoch is None else first_epoch
        self._order = (None, None)
        self._lock = threading.Lock()
        self._rows = (1, 0)

    def process_slice(self, count, index):
        """Makes each batch this process's rows of the global batch, for multi-process
        training: rows `[index * n / count, (index + 1) * n / count)` of every `n`-row batch
        (as `keras_resnets.distribute` slices tf.data batches). Returns `self`."""
        self._rows = (count, index)
        return self

    def __len__(self):
        return self.steps

    def on_epoch_end(self):
        self.epoch += 1

    def epoch_callback(self):
        """A Keras callback that sets `self.epoch` to fit's epoch at the start of each one."""
        return keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs=None: setattr(self, "epoch", epoch)
        )

    def _epoch_order(self, epoch):
        with self._lock:
            if self._order[0] != epoch:
                order = np.arange(len(self.x))
                if self.shuffle:
                    order = np.random.default_rng([self.seed, epoch, 0]).permutation(len(self.x))
                self._order = (epoch, order)
            return self._order[1]

    def __getitem__(self, index):
        if not 0 <= index < self.steps:
            raise IndexError(f"batch {index} of a {self.steps}-batch epoch")
        epoch = self.epoch
        start = index * self.batch_size
        indices = self._epoch_order(epoch)[start : start + self.batch_size]
        images = self.x[indices]
        if self.augment:
            rng = np.random.default_rng([self.seed, epoch, index + 1])
            images = augment_lib.pad_crop_flip(images, rng, pad=self.pad)
        labels = self.y[indices]
        count, part = self._rows
        if count > 1:
            size = len(indices) // count
            images, labels = (a[part * size : (part + 1) * size] for a in (images, labels))
        return images.astype(np.float32), labels
