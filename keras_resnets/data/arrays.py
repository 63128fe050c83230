"""What every source returns, `Arrays`, the errors they raise, and `balanced_subset`."""

import typing

import numpy as np

from keras_resnets.data import datasets

DATA_ENV_VAR = "KERAS_RESNETS_DATA"
SPLITS = ("train", "test")
HOW_TO_POINT = (
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

    @property
    def dataset(self):
        """The `datasets.Dataset` these arrays are, known by their class names (CIFAR-10,
        CIFAR-100), else a custom one with statistics measured on `x_train`."""
        return datasets.identify(self.class_names, self.x_train)


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


def one_line(error):
    """`Type: first line of the message`, for errors reported without their traceback."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
