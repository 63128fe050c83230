"""`load_cifar10`: from a source to batched train and test pipelines, in one call."""

import dataclasses
import typing

from keras_resnets import _checks
from keras_resnets.data.arrays import balanced_subset
from keras_resnets.data.pipeline import make_pipeline
from keras_resnets.data.sources import load_arrays


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
        dataset: the `datasets.Dataset` record of the data (class names, statistics).
    """

    train: typing.Any  # tf.data.Dataset or ArrayBatches
    test: typing.Any
    class_names: list
    num_train: int
    num_test: int
    source: str
    dataset: typing.Any = None  # datasets.Dataset


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
        A `Datasets` with `train`, `test`, `class_names`, `num_train`, `num_test`, `source`
        and `dataset`.

    Example:

    ```python
    ds = load_cifar10("../shared/cifar10", batch_size=128)
    images, labels = next(iter(ds.train))  # float32 [128, 32, 32, 3], int32 [128]
    ```
    """
    # Checked before the data loads (which may decode or download); make_pipeline checks
    # them again, with the arrays.
    for name, limit in (("train_limit", train_limit), ("test_limit", test_limit)):
        if limit is not None:
            _checks.check_int(name, limit)
    _checks.check_int("batch_size", batch_size)
    _checks.check_int("seed", seed, minimum=None)
    for name, flag in (
        ("augment", augment),
        ("drop_remainder", drop_remainder),
        ("shuffle", shuffle),
    ):
        _checks.check_bool(name, flag)
    arrays = load_arrays(source, cache_dir=cache_dir)
    x_train, y_train, x_test, y_test, class_names, description = arrays
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
        dataset=arrays.dataset,
    )
