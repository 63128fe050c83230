"""CIFAR-10 (or any class-folder image set) as `tf.data` train and test pipelines.

One call, `load_cifar10()`, finds the data, decodes it once to uint8 arrays, caches those, and
returns batched `tf.data` pipelines with the ResNet paper's augmentation on the train split
(He et al. 2015, section 4.2: 4-pixel zero padding, a random 32x32 crop and a random
horizontal flip). The models normalise their inputs themselves, so images come out as float32
raw pixel values in [0, 255] and labels as sparse int32.

TensorFlow is optional here: without it (the JAX or PyTorch backend alone, as on a GPU
machine with no TensorFlow), Pillow decodes the images and `ArrayBatches`, a
`keras.utils.PyDataset`, makes the batches with NumPy (`engine="numpy"`).

Where the data comes from (`source`, else `$KERAS_RESNETS_DATA`, else a search):

- `"tfds"`: TensorFlow Datasets' `cifar10`, read from TFDS's data dir (`$TFDS_DATA_DIR`, by
  default `~/tensorflow_datasets`), downloaded there if it is not prepared yet.
- `"keras"`: the `keras.datasets.cifar10` download cache (`$KERAS_HOME` or `~/.keras`, in
  `datasets/`): the `cifar-10-batches-py` folder or the `cifar-10-python.tar.gz` archive.
  Any other path to such a folder or archive works too.
- A path to a folder or a tar archive (`.tar`, `.tar.gz`, `.tgz`, `.tar.xz`, `.tar.bz2`) of
  images laid out as `train/<class>/<image>` and `test/<class>/<image>`:
    - a folder with `train/` and `test/` subfolders;
    - an archive whose members are `[prefix/]train/<class>/...` and `[prefix/]test/<class>/...`;
    - a folder holding such archives, whose members are merged: the project's
      `../shared/cifar10/` (`cifar10-train.tar.xz` + `cifar10-test.tar.xz`) is one.
  Class names are the sorted class folder names, and labels index them, as in
  `keras.utils.image_dataset_from_directory`. Images are converted to RGB and must all have
  the same size: resize them beforehand (resizing here would hide a mixed-up data set).
  A folder of class subfolders with no `train/`/`test/` split is refused with an explanation:
  which images to hold out for testing is the user's decision, not something to guess.
- A `.npz` file with `x_train`, `y_train`, `x_test`, `y_test` (and optionally
  `class_names`), such as this module's own cache files.

With neither `source` nor `$KERAS_RESNETS_DATA`, the search tries TFDS's data dir (prepared
data only), then the Keras cache, then a TFDS download. If all fail, `DataSourceError` lists
each place tried and how to point at local data.

Decoded image folders and archives are cached as uncompressed `.npz` files in `cache_dir`
(default `$KERAS_RESNETS_CACHE` or `~/.cache/keras_resnets`), keyed by the path, size and
modification time of the inputs, so the second run loads in about a second instead of
decoding 60,000 images again.

Example:

```python
from keras_resnets import data
ds = data.load_cifar10("../shared/cifar10", batch_size=128)
model.fit(ds.train, validation_data=ds.test, epochs=...)
```
"""

import concurrent.futures
import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import lzma
import os
import pickle
import queue
import re
import shutil
import socket
import tarfile
import tempfile
import threading
import time
import typing
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import keras
import numpy as np

__all__ = [
    "CIFAR10_CLASSES",
    "Arrays",
    "CorruptImageError",
    "DataSourceError",
    "Datasets",
    "balanced_subset",
    "benchmark_pipeline",
    "load_arrays",
    "load_cifar10",
    "make_pipeline",
    "ArrayBatches",
]

# Label order of the original CIFAR-10 batches, TFDS and `keras.datasets` (also alphabetical).
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

DATA_ENV_VAR = "KERAS_RESNETS_DATA"
CACHE_ENV_VAR = "KERAS_RESNETS_CACHE"

_SPLITS = ("train", "test")
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2")
# Bump when the cache's content or layout changes, so that old cache files are not reused.
_CACHE_FORMAT = 1
_HOW_TO_POINT = (
    "Point at local data with the CLI's `--data PATH`, the `source=` argument or "
    f"`{DATA_ENV_VAR}=PATH`, where PATH is a folder or a .tar/.tar.gz/.tar.xz archive with "
    "train/<class>/ and test/<class>/ image folders (e.g. ../shared/cifar10), or the "
    "keras.datasets cache (cifar-10-batches-py folder or cifar-10-python.tar.gz)."
)


class DataSourceError(ValueError):
    """No usable data at the requested source, or none found by the search."""


class CorruptImageError(DataSourceError):
    """Some images could not be decoded, or do not all have the same shape."""


class Arrays(typing.NamedTuple):
    """Decoded data set; a tuple, so `x_train, y_train, ... = load_arrays()` works."""

    x_train: np.ndarray  # uint8 [N, H, W, 3]
    y_train: np.ndarray  # int32 [N]
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    source: str  # human-readable description of where the data came from


@dataclasses.dataclass(frozen=True)
class Datasets:
    """What `load_cifar10` returns.

    Attributes:
        train: `tf.data.Dataset` (or, with `engine="numpy"`, an `ArrayBatches`) of
            `(images, labels)` batches: float32 `[B, H, W, 3]` in [0, 255] and int32 `[B]`;
            shuffled and augmented unless asked otherwise.
        test: `tf.data.Dataset` likewise, in file order, not augmented, last batch kept.
        class_names: the class names, in label order.
        num_train: number of training examples (before dropping the last partial batch).
        num_test: number of test examples.
        source: human-readable description of where the data came from.
    """

    train: typing.Any  # tf.data.Dataset or ArrayBatches
    test: typing.Any
    class_names: list
    num_train: int
    num_test: int
    source: str


def load_cifar10(
    source=None,
    *,
    batch_size=128,
    augment=True,
    seed=0,
    cache_dir=None,
    drop_remainder=True,
    shuffle=True,
    train_limit=None,
    test_limit=None,
    engine=None,
):
    """Returns batched CIFAR-10 train and test pipelines, from whichever source is at hand.

    The train pipeline reshuffles every epoch and applies the paper's augmentation
    (He et al. 2015, section 4.2); both are deterministic given `seed`.

    Args:
        source: where to read the data: a path, `"tfds"`, `"keras"` or `"auto"` (the
            search); see the module docstring. Defaults to `None`: `$KERAS_RESNETS_DATA`,
            else the search.
        batch_size: batch size of both pipelines. Defaults to `128`, as in the paper.
        augment: whether to pad, crop and flip training images. Defaults to `True`.
        seed: seed of the shuffle and of the augmentation. Defaults to `0`.
        cache_dir: folder of the decoded-array cache. Defaults to `None`:
            `$KERAS_RESNETS_CACHE` or `~/.cache/keras_resnets`.
        drop_remainder: whether the train pipeline drops its last partial batch, so every
            step sees `batch_size` examples. Defaults to `True`.
        shuffle: whether to shuffle the train pipeline. Defaults to `True`.
        train_limit: if set, keep only this many training examples, taking them class by
            class in turn so that the classes stay balanced (for quick runs and tests).
        test_limit: likewise for the test split.
        engine: `"tf.data"` or `"numpy"` (see `make_pipeline`). Defaults to `None`:
            tf.data where TensorFlow is installed, else NumPy.

    Returns:
        A `Datasets` with `train`, `test`, `class_names`, `num_train`, `num_test`, `source`.

    Example:

    ```python
    ds = load_cifar10("../shared/cifar10", batch_size=128)
    images, labels = next(iter(ds.train))  # float32 [128, 32, 32, 3], int32 [128]
    ```
    """
    x_train, y_train, x_test, y_test, class_names, description = load_arrays(
        source, cache_dir=cache_dir
    )
    if train_limit is not None:
        x_train, y_train = balanced_subset(x_train, y_train, train_limit)
    if test_limit is not None:
        x_test, y_test = balanced_subset(x_test, y_test, test_limit)
    train = make_pipeline(
        x_train,
        y_train,
        batch_size=batch_size,
        training=True,
        seed=seed,
        augment=augment,
        drop_remainder=drop_remainder,
        shuffle=shuffle,
        engine=engine,
    )
    test = make_pipeline(x_test, y_test, batch_size=batch_size, training=False, engine=engine)
    return Datasets(
        train=train,
        test=test,
        class_names=list(class_names),
        num_train=len(x_train),
        num_test=len(x_test),
        source=description,
    )


def load_arrays(source=None, *, cache_dir=None):
    """Returns the decoded data set as NumPy arrays.

    Args:
        source: as in `load_cifar10`. Defaults to `None`: `$KERAS_RESNETS_DATA`, else a
            search of TFDS's data dir, the Keras cache and finally a TFDS download.
        cache_dir: as in `load_cifar10`.

    Returns:
        An `Arrays` tuple `(x_train, y_train, x_test, y_test, class_names, source)`: images
        uint8 `[N, H, W, 3]`, labels int32 `[N]`, class names in label order, and a
        description of where the data came from.

    Raises:
        DataSourceError: no usable data at `source`, or none found by the search; the
            message says what was tried and how to point at local data.
        CorruptImageError: some images could not be decoded or differ in shape.
    """
    if source is None and os.environ.get(DATA_ENV_VAR):
        source = os.environ[DATA_ENV_VAR]
        origin = f"${DATA_ENV_VAR}={source!r}"
    else:
        origin = f"source={source!r}"
    if source is None or str(source) == "auto":
        # Neither TFDS nor the Keras pickles need decoding, so the search caches nothing.
        return _search()
    source = os.fspath(source)
    if source == "tfds":
        return _load_tfds(download=True)
    if source == "keras":
        found = _find_keras_cache()
        if found is None:
            raise DataSourceError(
                f"{origin}: no keras.datasets CIFAR-10 cache found; looked for "
                f"{', '.join(str(p) for p in _keras_cache_candidates())}. {_HOW_TO_POINT}"
            )
        return _load_keras_batches(found)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataSourceError(f"{origin}: {path} does not exist. {_HOW_TO_POINT}")
    return _load_path(path, cache_dir, origin)


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
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be positive. Received: batch_size={batch_size}")
    drop_remainder = training if drop_remainder is None else drop_remainder
    shuffle = training if shuffle is None else shuffle
    augment = augment and training
    full_steps = len(x) // batch_size if drop_remainder else -(-len(x) // batch_size)
    if steps_per_epoch is not None and not 1 <= steps_per_epoch <= full_steps:
        raise ValueError(
            f"`steps_per_epoch` must be between 1 and {full_steps} (a full pass over "
            f"{len(x)} examples in batches of {batch_size}). "
            f"Received: steps_per_epoch={steps_per_epoch}"
        )
    steps = full_steps if steps_per_epoch is None else steps_per_epoch
    if resolve_engine(engine) == "numpy":
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
    tf = _tensorflow(required='engine="tf.data"')
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
            batch = _pad_crop_flip(batch, batch_seed, pad=pad)
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


def benchmark_pipeline(ds, steps=50, *, warmup=1):
    """Iterates `ds` and returns its throughput in images per second.

    Args:
        ds: an `ArrayBatches`, or a `tf.data.Dataset` of batches: `(images, ...)` tuples,
            dicts or tensors.
        steps: number of batches timed. The dataset is repeated if it is shorter.
            Defaults to `50`.
        warmup: batches read before timing starts (pipeline start-up, buffer filling).
            Defaults to `1`.

    Returns:
        Images per second, as a float.
    """
    if isinstance(ds, ArrayBatches):
        iterator = (ds[i % len(ds)] for i in range(warmup + steps))
    else:
        iterator = iter(ds.repeat())
    for _ in range(warmup):
        next(iterator)
    count = 0
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(iterator)
        if isinstance(batch, dict):
            batch = next(iter(batch.values()))
        elif isinstance(batch, (tuple, list)):
            batch = batch[0]
        count += int(batch.shape[0])
    return count / (time.perf_counter() - start)


# --- augmentation ---------------------------------------------------------------------------


def _pad_crop_flip(images, seed, *, pad):
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
            images = pad_crop_flip(images, rng, pad=self.pad)
        labels = self.y[indices]
        count, part = self._rows
        if count > 1:
            size = len(indices) // count
            images, labels = (a[part * size : (part + 1) * size] for a in (images, labels))
        return images.astype(np.float32), labels


def resolve_engine(engine=None):
    """`"tf.data"` or `"numpy"`: what `make_pipeline(engine=engine)` builds here."""
    if engine is None or engine == "auto":
        return "tf.data" if _tensorflow() is not None else "numpy"
    if engine not in ("tf.data", "numpy"):
        raise ValueError(
            f"`engine` must be one of 'auto', 'tf.data', 'numpy'. Received: engine={engine!r}"
        )
    return engine


def _tensorflow(required=None):
    """The `tensorflow` module, or None where it is not installed.

    With `required` (what needs it), a missing TensorFlow raises an ImportError saying so.
    """
    try:
        import tensorflow as tf
    except ImportError:
        if required:
            raise ImportError(
                f"{required} needs TensorFlow, which is not installed here. Install it "
                '(`pip install tensorflow`) or use the NumPy pipeline (engine="numpy").'
            ) from None
        return None
    return tf


def balanced_subset(x, y, limit):
    """Returns the first `limit` examples, taken class by class so classes stay balanced.

    The first example of each class is taken, then the second of each, and so on; the kept
    examples stay in their original order. Meant for quick runs and tests.

    Args:
        x: examples, `[N, ...]`.
        y: integer labels, `[N]`.
        limit: number of examples to keep.

    Returns:
        `(x, y)` with `min(limit, N)` examples.
    """
    if isinstance(limit, bool) or int(limit) != limit or limit < 1:
        raise ValueError(f"`limit` must be a positive integer. Received: limit={limit!r}")
    if limit >= len(y):
        return x, y
    y = np.asarray(y)
    rank = np.empty(len(y), dtype=np.int64)  # rank of each example within its class
    for label in np.unique(y):
        where = np.flatnonzero(y == label)
        rank[where] = np.arange(len(where))
    keep = np.sort(np.lexsort((np.arange(len(y)), rank))[:limit])
    return x[keep], y[keep]


# --- finding the source ---------------------------------------------------------------------


def _search():
    """Tries TFDS's data dir, the Keras cache, then a TFDS download, recording each try."""
    tried = [f"${DATA_ENV_VAR}: not set"]
    tfds_dir = _tfds_data_dir()
    if _tfds_has_cifar10(tfds_dir):
        try:
            return _load_tfds(download=False)
        except DataSourceError as error:
            tried.append(f"TFDS data dir {tfds_dir}: {error}")
    else:
        tried.append(f"TFDS data dir {tfds_dir}: no prepared cifar10")
    found = _find_keras_cache()
    if found is not None:
        return _load_keras_batches(found)
    tried.append(
        "keras.datasets cache: none of " + ", ".join(str(p) for p in _keras_cache_candidates())
    )
    try:
        return _load_tfds(download=True)
    except DataSourceError as error:
        tried.append(f"TFDS download: {error}")
    raise DataSourceError(
        "No CIFAR-10 data found. Tried, in order:\n"
        + "\n".join(f"  - {line}" for line in tried)
        + f"\n{_HOW_TO_POINT}"
    )


def _load_path(path, cache_dir, origin):
    """Dispatches a user-given path on its layout (see the module docstring)."""
    if path.is_file():
        if path.suffix == ".npz":
            return _load_npz(path)
        if not tarfile.is_tarfile(path):
            if path.name.endswith(_ARCHIVE_SUFFIXES):
                raise DataSourceError(
                    f"{origin}: {path} is not a readable tar archive (truncated or corrupt?); "
                    "copy or download it again."
                )
            raise DataSourceError(
                f"{origin}: {path} is neither a folder, a tar archive nor a .npz file. "
                f"{_HOW_TO_POINT}"
            )
        if _is_keras_archive(path):
            return _load_keras_batches(path)
        return _load_images([path], cache_dir, description=f"image archive {path}")
    keras_dir = _find_keras_batches_in(path)
    if keras_dir is not None:
        return _load_keras_batches(keras_dir)
    if all((path / split).is_dir() for split in _SPLITS):
        return _load_images([path], cache_dir, description=f"image folder {path}")
    archives = sorted(
        p for p in path.iterdir() if p.is_file() and p.name.endswith(_ARCHIVE_SUFFIXES)
    )
    if archives:
        names = ", ".join(p.name for p in archives)
        return _load_images(archives, cache_dir, description=f"image archives {path}/{{{names}}}")
    subfolders = [p.name for p in sorted(path.iterdir()) if p.is_dir()]
    if subfolders:
        raise DataSourceError(
            f"{origin}: {path} has the subfolders {subfolders[:10]} but no train/ and test/ "
            "split. Move the class folders into train/<class>/ and test/<class>/ (hold out "
            f"the test images you choose). {_HOW_TO_POINT}"
        )
    raise DataSourceError(f"{origin}: no images or archives found in {path}. {_HOW_TO_POINT}")


# --- TFDS -----------------------------------------------------------------------------------


def _tfds_data_dir():
    # Read here, not from tfds.core.constants.DATA_DIR, which is frozen at import time.
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"
    )


def _tfds_has_cifar10(data_dir):
    # A cheap look before importing TFDS (seconds) and building a builder (which warns
    # about folders that do not exist).
    return os.path.isdir(os.path.join(data_dir, "cifar10"))


# Where TFDS's cifar10 builder downloads from (its `url`; TFDS tries GCS first, which is on
# the same networks).
_TFDS_CIFAR10_HOST = ("www.cs.toronto.edu", 443)


def _network_reachable(address=_TFDS_CIFAR10_HOST, timeout=2.0):
    """One short connection attempt: offline, TFDS would retry its download for minutes."""
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def _tfds_download(builder):
    """The network step, on its own so that tests can replace it."""
    if not _network_reachable():
        host, port = _TFDS_CIFAR10_HOST
        raise DataSourceError(
            f"TFDS cifar10 is not in {_tfds_data_dir()} and there is no network to download "
            f"it ({host}:{port} did not answer within 2 s)"
        )
    builder.download_and_prepare()


def _new_empty_folders(folders):
    """The folders of `folders` that do not exist yet: removed again after a failed download
    if it left them without a file (TFDS creates them before it downloads anything)."""
    return [folder for folder in folders if not os.path.exists(folder)]


def _remove_if_empty(folders):
    for folder in folders:
        if os.path.isdir(folder) and not any(files for _, _, files in os.walk(folder)):
            shutil.rmtree(folder, ignore_errors=True)


def _load_tfds(*, download):
    data_dir = _tfds_data_dir()
    created = _new_empty_folders(
        [data_dir, os.path.join(data_dir, "cifar10"), os.path.join(data_dir, "downloads")]
    )
    try:
        return _read_tfds(data_dir, download=download)
    except BaseException:
        _remove_if_empty(reversed(created))
        raise


def _read_tfds(data_dir, *, download):
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise DataSourceError(f"tensorflow_datasets is not importable ({error})") from None
    try:
        builder = tfds.builder("cifar10", data_dir=data_dir)
        if not builder.is_prepared():
            if not download:
                raise DataSourceError(f"cifar10 is not prepared in {data_dir}")
            _tfds_download(builder)
        splits = {}
        for split in _SPLITS:
            # Batches rather than batch_size=-1, which needs the split's size up front.
            batches = builder.as_dataset(split=split, as_supervised=True).batch(10000)
            images, labels = zip(*tfds.as_numpy(batches))
            splits[split] = np.concatenate(images), np.concatenate(labels)
        class_names = list(builder.info.features["label"].names)
    except DataSourceError:
        raise
    except Exception as error:  # TFDS and the network raise many types; report, no trace.
        action = "download into" if download else "read from"
        raise DataSourceError(
            f"TFDS cifar10 {action} {data_dir} failed ({_one_line(error)})"
        ) from None
    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    return Arrays(
        x_train,
        y_train.astype(np.int32),
        x_test,
        y_test.astype(np.int32),
        class_names,
        f"TFDS cifar10 {builder.version} in {data_dir}",
    )


# --- keras.datasets cache -------------------------------------------------------------------


def _keras_cache_candidates():
    # Keras 3 extracts to cifar-10-batches-py-target/, Keras 2 to cifar-10-batches-py/; the
    # downloaded archive keeps its own or Keras's name. Read $KERAS_HOME here, not via
    # keras.config, which freezes it at import time.
    datasets = Path(os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser()) / "datasets"
    return [
        datasets / "cifar-10-batches-py",
        datasets / "cifar-10-batches-py-target" / "cifar-10-batches-py",
        datasets / "cifar-10-python.tar.gz",
        datasets / "cifar-10-batches-py.tar.gz",
        datasets / "cifar-10-batches-py-target_archive",
    ]


def _find_keras_cache():
    for candidate in _keras_cache_candidates():
        if candidate.is_dir() and _find_keras_batches_in(candidate) is not None:
            return candidate
        if candidate.is_file() and tarfile.is_tarfile(candidate):
            return candidate
    return None


def _find_keras_batches_in(folder):
    """The folder holding `data_batch_1`...`test_batch`, if `folder` is or contains one."""
    for candidate in (
        folder,
        folder / "cifar-10-batches-py",
        folder / "cifar-10-batches-py-target" / "cifar-10-batches-py",
    ):
        if (candidate / "data_batch_1").is_file() and (candidate / "test_batch").is_file():
            return candidate
    for name in ("cifar-10-python.tar.gz", "cifar-10-batches-py.tar.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


@contextlib.contextmanager
def _archive_errors(path):
    """A truncated or corrupt archive is named in one line, not a tarfile/lzma stack trace."""
    try:
        yield
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError) as error:
        raise DataSourceError(
            f"{path} is truncated or corrupt ({_one_line(error)}); copy or download it again."
        ) from None


def _is_keras_archive(path):
    with _archive_errors(path), tarfile.open(path) as archive:
        for member in archive:
            if PurePosixPath(member.name).name in ("data_batch_1", "test_batch"):
                return True
            if member.isfile() and member.name.lower().endswith(_IMAGE_EXTENSIONS):
                return False
    return False


def _load_keras_batches(path):
    """Reads the pickled batches that `keras.datasets.cifar10.load_data` reads.

    Read directly, from the folder or straight from the tar.gz, because `load_data` itself
    insists on its own download location and tries to download when that is missing.
    """
    wanted = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    blobs = {}
    if path.is_dir():
        for name in wanted:
            if (path / name).is_file():
                blobs[name] = (path / name).read_bytes()
    else:
        with _archive_errors(path), tarfile.open(path) as archive:
            for member in archive:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in wanted:
                    blobs[name] = archive.extractfile(member).read()
    names = wanted[:5]
    missing = [name for name in wanted[:6] if name not in blobs]
    if missing:
        raise DataSourceError(f"keras.datasets cache {path} lacks {missing}. {_HOW_TO_POINT}")

    def read(name):
        # These pickles come from the user's own Keras cache, as keras.datasets trusts them.
        batch = pickle.loads(blobs[name], encoding="bytes")
        pixels = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int32)
        if pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32 or len(labels) != len(pixels):
            raise CorruptImageError(
                f"{path}/{name}: expected data [N, 3072] and N labels, got data "
                f"{pixels.shape} and {len(labels)} labels"
            )
        # Rows are channel-major (1024 red, 1024 green, 1024 blue values).
        return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels

    train = [read(name) for name in names]
    x_test, y_test = read("test_batch")
    class_names = list(CIFAR10_CLASSES)
    if "batches.meta" in blobs:
        meta = pickle.loads(blobs["batches.meta"], encoding="bytes")
        class_names = [name.decode() for name in meta[b"label_names"]]
    return Arrays(
        np.concatenate([x for x, _ in train]),
        np.concatenate([y for _, y in train]),
        x_test,
        y_test,
        class_names,
        f"keras.datasets cache {path}",
    )


def _load_npz(path):
    try:
        return _read_npz(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, DataSourceError):
            raise
        raise DataSourceError(
            f"{path} is not a readable .npz file ({_one_line(error)}); write it again."
        ) from None


def _read_npz(path):
    with np.load(path, allow_pickle=False) as arrays:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays.files)
        if missing:
            raise DataSourceError(f"{path} lacks the arrays {sorted(missing)}")
        class_names = (
            [str(name) for name in arrays["class_names"]]
            if "class_names" in arrays.files
            else [str(i) for i in range(int(arrays["y_train"].max()) + 1)]
        )
        return Arrays(
            arrays["x_train"],
            arrays["y_train"].astype(np.int32),
            arrays["x_test"],
            arrays["y_test"].astype(np.int32),
            class_names,
            f"arrays file {path}",
        )


# --- image folders and archives -------------------------------------------------------------


def _load_images(inputs, cache_dir, *, description):
    """Decodes image folders/archives once; later calls read the `.npz` cache."""
    files = [_folder_files(p) if p.is_dir() else None for p in inputs]
    cache_path = _cache_path(inputs, files, cache_dir)
    cached = _read_cache(cache_path)
    if cached is not None:
        return cached._replace(source=f"{description} (decoded arrays cached in {cache_path})")
    readers = [
        _read_folder(folder_files) if folder_files is not None else _read_archive(path)
        for path, folder_files in zip(inputs, files)
    ]
    arrays = _decode_all(_interleave_in_threads(readers), description)
    _write_cache(cache_path, arrays)
    return arrays._replace(source=f"{description} (decoded; cache {cache_path})")


def _split_class(parts):
    """`(split, class)` of a member path `[prefix/]split/class/image`, else `None`."""
    if len(parts) < 3 or parts[-3] not in _SPLITS or parts[-1].startswith("."):
        return None
    if not parts[-1].lower().endswith(_IMAGE_EXTENSIONS):
        return None
    return parts[-3], parts[-2]


def _folder_files(root):
    """`[(split, class, path)]` of the images under `root/train/<class>/`, `root/test/...`."""
    found = []
    for split in _SPLITS:
        for class_dir in sorted(p for p in (root / split).iterdir() if p.is_dir()):
            for file in sorted(class_dir.iterdir()):
                if _split_class((split, class_dir.name, file.name)) and file.is_file():
                    found.append((split, class_dir.name, file))
    return found


def _read_folder(files):
    for split, class_name, path in files:
        yield split, class_name, str(path), path.read_bytes()


def _read_archive(path):
    # tarfile streams members straight out of the (compressed) archive: no extraction to
    # disk, and nothing left behind. image_dataset_from_directory would need both.
    with _archive_errors(path), tarfile.open(path) as archive:
        for member in archive:
            found = member.isfile() and _split_class(PurePosixPath(member.name).parts)
            if found:
                data = archive.extractfile(member).read()
                yield found[0], found[1], f"{path}:{member.name}", data


def _interleave_in_threads(iterables, queue_size=1024):
    """Yields the items of all `iterables`, each run in its own thread.

    Decompression (lzma, zlib release the GIL) then overlaps with decoding in the caller:
    on 2 cores this decodes the 60,000-image CIFAR-10 archives about twice as fast.
    """
    items = queue.Queue(queue_size)
    stop = threading.Event()
    done = object()

    def put(item):
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return
            except queue.Full:
                pass

    def run(iterable):
        try:
            for item in iterable:
                if stop.is_set():
                    return
                put(item)
        except BaseException as error:  # Re-raised in the caller's thread.
            put(_Raised(error))
        finally:
            put(done)

    threads = [threading.Thread(target=run, args=(it,), daemon=True) for it in iterables]
    for thread in threads:
        thread.start()
    try:
        running = len(threads)
        while running:
            item = items.get()
            if item is done:
                running -= 1
            elif isinstance(item, _Raised):
                raise item.error
            else:
                yield item
    finally:
        stop.set()


class _Raised(typing.NamedTuple):
    error: BaseException


@functools.cache
def _tf_decoder():
    """The chunk decoder, a `tf.function` made on first use (TensorFlow is optional)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def decode_many(encoded):
        # One graph call per chunk: TF decodes in C++ threads without holding the GIL, so it
        # overlaps with the archive readers, and skips eager per-call overhead.
        return tf.map_fn(
            _tf_decode_one,
            encoded,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
            parallel_iterations=16,
        )

    return decode_many


def _tf_decode_one(encoded):
    import tensorflow as tf

    # tf.io.decode_image reads PNG, JPEG, GIF, BMP and WebP; channels=3 turns greyscale,
    # palette and RGBA images into RGB.
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def _decode_chunk(chunk):
    """Decodes `[(split, class, path, bytes)]` to `[(split, class, path, image or error)]`.

    With TensorFlow, the fast path decodes the whole chunk at once. It fails as a whole if
    any image is corrupt or sized differently; the chunk is then decoded one image at a time
    to find out which, so that errors name each bad file. Without TensorFlow, Pillow decodes.
    """
    tf = _tensorflow()
    if tf is None:
        return _pil_decode_chunk(chunk)
    try:
        images = _tf_decoder()(tf.constant([data for *_, data in chunk])).numpy()
        return [(split, name, path, image) for (split, name, path, _), image in zip(chunk, images)]
    except tf.errors.OpError:
        pass
    decoded = []
    for split, class_name, path, data in chunk:
        try:
            result = _tf_decode_one(tf.constant(data)).numpy()
        except tf.errors.OpError as error:
            result = _DecodeError(re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w+\]", "", error.message))
        decoded.append((split, class_name, path, result))
    return decoded


def _pil_decode_one(data):
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            # The first frame of an animation, in RGB, as tf.io.decode_image(channels=3) gives.
            return np.asarray(image.convert("RGB"))
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, ...
        return _DecodeError(f"{type(error).__name__}: {error}")


def _pil_decode_chunk(chunk):
    # Pillow releases the GIL while it decodes, so threads decode in parallel.
    with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        images = list(pool.map(_pil_decode_one, [data for *_, data in chunk]))
    return [(split, name, path, image) for (split, name, path, _), image in zip(chunk, images)]


class _DecodeError(str):
    """Why an image could not be decoded."""


def _decode_all(members, description, chunk_size=1024):
    """Decodes `(split, class, path, bytes)` members into `Arrays`, sorted by path.

    Corrupt images and images of a different shape are errors, never skipped: a data set
    that silently lost images would give results that cannot be compared.
    """
    from tqdm import tqdm

    decoded = {split: [] for split in _SPLITS}
    failures = []
    progress = tqdm(desc=f"Decoding {description}", unit=" images", disable=None)
    for chunk in _chunks(members, chunk_size):
        for split, class_name, path, image in _decode_chunk(chunk):
            if isinstance(image, _DecodeError):
                failures.append((path, image))
            else:
                decoded[split].append((class_name, path, image))
        progress.update(len(chunk))
    progress.close()
    if failures:
        failures.sort()
        total = len(failures) + sum(len(v) for v in decoded.values())
        listing = "\n".join(f"  {path}: {why}" for path, why in failures[:5])
        raise CorruptImageError(
            f"{len(failures)} of {total} images in {description} could not be decoded; the "
            f"first is {failures[0][0]}. Fix or remove them:\n{listing}"
        )
    for split in _SPLITS:
        if not decoded[split]:
            raise DataSourceError(
                f"No {split} images in {description}: expected {split}/<class>/<image> "
                f"({', '.join(_IMAGE_EXTENSIONS)}). {_HOW_TO_POINT}"
            )
        decoded[split].sort(key=lambda item: (item[0], item[1]))
    _check_shapes(decoded, description)

    class_names = sorted({class_name for class_name, _, _ in decoded["train"]})
    test_only = sorted({c for c, _, _ in decoded["test"]} - set(class_names))
    if test_only:
        raise DataSourceError(f"{description}: test classes {test_only} have no train images.")
    index = {name: i for i, name in enumerate(class_names)}
    arrays = []
    for split in _SPLITS:
        arrays.append(np.stack([image for _, _, image in decoded[split]]))
        arrays.append(np.array([index[c] for c, _, _ in decoded[split]], dtype=np.int32))
    return Arrays(*arrays, class_names, description)


def _chunks(iterable, size):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_shapes(decoded, description):
    shapes = {}
    for split in _SPLITS:
        for _, path, image in decoded[split]:
            shapes.setdefault(image.shape, []).append(path)
    if len(shapes) > 1:
        summary = "; ".join(
            f"{'x'.join(map(str, shape))}: {len(paths)} images, first {min(paths)}"
            for shape, paths in sorted(shapes.items(), key=lambda kv: -len(kv[1]))
        )
        raise CorruptImageError(
            f"Images in {description} differ in size ({summary}). All images must have the "
            "same height and width; resize them beforehand."
        )


# --- cache ----------------------------------------------------------------------------------


def _default_cache_dir():
    return Path(os.environ.get(CACHE_ENV_VAR) or Path("~/.cache/keras_resnets").expanduser())


def _cache_path(inputs, files, cache_dir):
    """Cache file named after the inputs' paths, sizes and modification times."""
    stats = []
    for path, folder_files in zip(inputs, files):
        for file in [path] if folder_files is None else [f for _, _, f in folder_files]:
            stat = file.stat()
            stats.append((str(file.resolve()), stat.st_size, stat.st_mtime_ns))
    key = json.dumps([_CACHE_FORMAT, stats])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    stem = inputs[0].name.split(".")[0] if len(inputs) == 1 else inputs[0].parent.name
    cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    return cache_dir / f"{stem or 'data'}-{digest}.npz"


def _read_cache(path):
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as cached:
            return Arrays(
                cached["x_train"],
                cached["y_train"],
                cached["x_test"],
                cached["y_test"],
                [str(name) for name in cached["class_names"]],
                str(path),
            )
    except Exception as error:  # A cache that cannot be read is decoded again, not fatal.
        warnings.warn(f"Ignoring unreadable cache {path} ({_one_line(error)}); decoding again.")
        return None


def _write_cache(path, arrays):
    """Writes to a temporary file and renames it, so a killed run leaves no partial cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError as error:
        warnings.warn(f"Not caching decoded images in {path.parent} ({_one_line(error)}).")
        return
    try:
        with os.fdopen(handle, "wb") as file:
            # Uncompressed: loading 184 MB of uint8 is then a plain read, about a second.
            np.savez(
                file,
                x_train=arrays.x_train,
                y_train=arrays.y_train,
                x_test=arrays.x_test,
                y_test=arrays.y_test,
                class_names=np.array(arrays.class_names, dtype=str),
            )
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the cache is not secret.
        os.replace(temporary, path)
    except OSError as error:  # A full disk costs the next run a decode, not this run.
        os.unlink(temporary)
        warnings.warn(f"Could not write the cache {path} ({_one_line(error)}).")
    except BaseException:
        os.unlink(temporary)
        raise


def _one_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
