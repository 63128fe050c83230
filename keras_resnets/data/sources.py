"""Finding and loading a source: one ordered table of source kinds, and the search.

`load_arrays(source)` walks `SOURCES` in order; the first kind whose `match` accepts the
source reads it. Names come first (`"tfds"`, `"keras"`, `"auto"`), then paths by layout
(a `.npz` file, CIFAR's pickled batches, an image archive, an image folder, a folder of
image archives), and last a data set's name (`"cifar10"`, `"cifar100"`) that is not an
existing path, which searches for that data set. A path that no kind accepts is refused by
`_refuse`, which says why. The search tries TFDS's data dir (prepared data only), then the
Keras cache, then a TFDS download, and lists every place tried if all fail.
"""

import dataclasses
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from keras_resnets.data import datasets, images, pickles, tfds
from keras_resnets.data.arrays import (
    DATA_ENV_VAR,
    HOW_TO_POINT,
    SPLITS,
    Arrays,
    DataSourceError,
    one_line,
)


@dataclasses.dataclass(frozen=True)
class SourceKind:
    """One kind of source.

    Attributes:
        name: the kind, in words.
        match: `match(source)` with `source` a string (a name or a path): what to read (a
            path, a `(dataset, path)` pair, a `Dataset`, ...), or None if not this kind.
        read: `read(found, cache_dir=..., origin=...)` returns the `Arrays`; `origin` says
            where the source came from, for error messages.
    """

    name: str
    match: Callable
    read: Callable


def _named(*names):
    return lambda source: source if source in names else None


def _existing(source):
    path = Path(source).expanduser()
    return path if path.exists() else None


def _file_with(test):
    def match(source):
        path = _existing(source)
        return path if path is not None and path.is_file() and test(path) else None

    return match


def _folder_with(find):
    def match(source):
        path = _existing(source)
        return find(path) if path is not None and path.is_dir() else None

    return match


def _pickle_archive(source):
    path = _file_with(tarfile.is_tarfile)(source)
    dataset = pickles.archive_dataset(path) if path is not None else None
    return (dataset, path) if dataset is not None else None


def _split_folder(path):
    return path if all((path / split).is_dir() for split in SPLITS) else None


def _archives_in(path):
    found = sorted(
        p for p in path.iterdir() if p.is_file() and p.name.endswith(images.ARCHIVE_SUFFIXES)
    )
    return (path, found) if found else None


def _dataset_name(source):
    # After the path kinds: a folder named "cifar10" in the working directory is read.
    return datasets.DATASETS.get(source) if _existing(source) is None else None


def _read_keras_cache(_, *, origin, **unused):
    found = pickles.find_keras_cache()
    if found is None:
        raise DataSourceError(
            f"{origin}: no keras.datasets CIFAR-10 cache found; looked for "
            f"{', '.join(str(p) for p in pickles.keras_cache_candidates())}. {HOW_TO_POINT}"
        )
    return pickles.load(found)


def _read_archives(found, *, cache_dir, **unused):
    folder, archives = found
    names = ", ".join(p.name for p in archives)
    return images.load(archives, cache_dir, description=f"image archives {folder}/{{{names}}}")


def _searchable(dataset):
    if dataset.tfds_name is None and dataset.pickles is None:
        raise DataSourceError(f"{dataset.title} has no source to search. {HOW_TO_POINT}")
    return dataset


SOURCES = (
    SourceKind(
        "TFDS's cifar10, downloaded if need be",
        _named("tfds"),
        lambda _, **unused: tfds.load("cifar10", download=True),
    ),
    SourceKind("the keras.datasets CIFAR-10 cache", _named("keras"), _read_keras_cache),
    SourceKind(
        "the search for CIFAR-10",
        _named("auto"),
        lambda _, **unused: search(
            datasets.CIFAR10, env_var_unset=not os.environ.get(DATA_ENV_VAR)
        ),
    ),
    SourceKind(
        "a .npz file of arrays",
        _file_with(lambda path: path.suffix == ".npz"),
        lambda path, **unused: _load_npz(path),
    ),
    SourceKind(
        "CIFAR's pickled batches in an archive",
        _pickle_archive,
        lambda found, **unused: pickles.load(found[1], found[0]),
    ),
    SourceKind(
        "an image archive",
        _file_with(tarfile.is_tarfile),
        lambda path, *, cache_dir, **unused: images.load(
            [path], cache_dir, description=f"image archive {path}"
        ),
    ),
    SourceKind(
        "CIFAR's pickled batches in a folder",
        _folder_with(pickles.find_in),
        lambda found, **unused: pickles.load(found[1], found[0]),
    ),
    SourceKind(
        "an image folder with train/ and test/",
        _folder_with(_split_folder),
        lambda path, *, cache_dir, **unused: images.load(
            [path], cache_dir, description=f"image folder {path}"
        ),
    ),
    SourceKind("a folder of image archives", _folder_with(_archives_in), _read_archives),
    SourceKind(
        "a data set's name, searched for",
        _dataset_name,
        lambda dataset, **unused: search(_searchable(dataset)),
    ),
)


def load_arrays(source=None, *, cache_dir=None):
    """Returns the decoded data set as NumPy arrays.

    Args:
        source: as in `load_cifar10`: a path, `"tfds"`, `"keras"`, `"auto"`, or a data set's
            name (`"cifar10"`, `"cifar100"`), searched for in TFDS's data dir, the Keras
            cache and finally by a TFDS download. Defaults to `None`: `$KERAS_RESNETS_DATA`,
            else the search for CIFAR-10.
        cache_dir: as in `load_cifar10`.

    Returns:
        An `Arrays` tuple `(x_train, y_train, x_test, y_test, class_names, source)`: images
        uint8 `[N, H, W, 3]`, labels int32 `[N]`, class names in label order, and a
        description of where the data came from. `arrays.dataset` is its `Dataset` record
        (class names, statistics).

    Raises:
        DataSourceError: no usable data at `source`, or none found by the search; the
            message says what was tried and how to point at local data.
        CorruptImageError: some images could not be decoded or differ in shape.
    """
    if source is not None and not isinstance(source, (str, os.PathLike)):
        raise ValueError(
            "`source` must be a path, 'tfds', 'keras', 'auto' or a data set's name. "
            f"Received: source={source!r}"
        )
    if source is None and os.environ.get(DATA_ENV_VAR):
        source = os.environ[DATA_ENV_VAR]
        origin = f"${DATA_ENV_VAR}={source!r}"
    else:
        origin = f"source={source!r}"
    source = "auto" if source is None else os.fspath(source)
    for kind in SOURCES:
        found = kind.match(source)
        if found is not None:
            return kind.read(found, cache_dir=cache_dir, origin=origin)
    _refuse(Path(source).expanduser(), origin)


def _refuse(path, origin):
    """Why no kind of `SOURCES` accepts `path`, as a DataSourceError."""
    if not path.exists():
        raise DataSourceError(f"{origin}: {path} does not exist. {HOW_TO_POINT}")
    if path.is_file():
        if path.name.endswith(images.ARCHIVE_SUFFIXES):
            raise DataSourceError(
                f"{origin}: {path} is not a readable tar archive (truncated or corrupt?); "
                "copy or download it again."
            )
        raise DataSourceError(
            f"{origin}: {path} is neither a folder, a tar archive nor a .npz file. {HOW_TO_POINT}"
        )
    subfolders = [p.name for p in sorted(path.iterdir()) if p.is_dir()]
    if subfolders:
        raise DataSourceError(
            f"{origin}: {path} has the subfolders {subfolders[:10]} but no train/ and test/ "
            "split. Move the class folders into train/<class>/ and test/<class>/ (hold out "
            f"the test images you choose). {HOW_TO_POINT}"
        )
    raise DataSourceError(f"{origin}: no images or archives found in {path}. {HOW_TO_POINT}")


def search(dataset=datasets.CIFAR10, *, env_var_unset=False):
    """Tries TFDS's data dir, the Keras cache, then a TFDS download, recording each try.

    Neither TFDS nor the Keras pickles need decoding, so the search caches nothing.
    """
    tried = [f"${DATA_ENV_VAR}: not set"] if env_var_unset else []
    name = dataset.tfds_name
    if name is not None:
        if tfds.has(name):
            try:
                return tfds.load(name, download=False)
            except DataSourceError as error:
                tried.append(f"TFDS data dir {tfds.data_dir()}: {error}")
        else:
            tried.append(f"TFDS data dir {tfds.data_dir()}: no prepared {name}")
    if dataset.pickles is not None:
        found = pickles.find_keras_cache(dataset)
        if found is not None:
            return pickles.load(found, dataset)
        candidates = pickles.keras_cache_candidates(dataset)
        tried.append("keras.datasets cache: none of " + ", ".join(str(p) for p in candidates))
    if name is not None:
        try:
            return tfds.load(name, download=True)
        except DataSourceError as error:
            tried.append(f"TFDS download: {error}")
    raise DataSourceError(
        f"No {dataset.title} data found. Tried, in order:\n"
        + "\n".join(f"  - {line}" for line in tried)
        + f"\n{HOW_TO_POINT}"
    )


def _load_npz(path):
    try:
        return _read_npz(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, DataSourceError):
            raise
        raise DataSourceError(
            f"{path} is not a readable .npz file ({one_line(error)}); write it again."
        ) from None


def _read_npz(path):
    with np.load(path, allow_pickle=False) as arrays:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(arrays.files)
        if missing:
            raise DataSourceError(f"{path} lacks the arrays {sorted(missing)}")
        # Each array read from the file once; keras.datasets' [N, 1] labels are labels too.
        x = {split: arrays[f"x_{split}"] for split in SPLITS}
        y = {split: arrays[f"y_{split}"] for split in SPLITS}
        y = {k: v.reshape(-1) if v.ndim == 2 and v.shape[1] == 1 else v for k, v in y.items()}
        class_names = (
            [str(name) for name in arrays["class_names"]]
            if "class_names" in arrays.files
            else [str(i) for i in range(int(y["train"].max()) + 1)]
        )
        for split in SPLITS:
            _check_split(path, split, x[split], y[split], class_names)
        return Arrays(
            x["train"],
            y["train"].astype(np.int32),
            x["test"],
            y["test"].astype(np.int32),
            class_names,
            f"arrays file {path}",
        )


def _check_split(path, split, x, y, class_names):
    """A user's arrays are what the pipelines read: uint8 [N, H, W, 3] images (channels
    last) and integer labels of the named classes. Float images in [0, 1] once became all
    zeros, and labels beyond the classes trained without a word."""
    name = f"{path}: x_{split}"
    if x.dtype != np.uint8:
        raise DataSourceError(
            f"{name} must be uint8 pixels in [0, 255]. Received: dtype {x.dtype} "
            f"(values {x.min() if x.size else 0} to {x.max() if x.size else 0})"
        )
    if x.ndim != 4 or x.shape[-1] != 3:
        raise DataSourceError(
            f"{name} must be RGB images [N, height, width, 3], channels last. "
            f"Received: shape {x.shape}"
        )
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise DataSourceError(
            f"{path}: y_{split} must be {len(x)} integer labels, one per image. "
            f"Received: dtype {y.dtype}, shape {y.shape}"
        )
    if len(y) and (y.min() < 0 or y.max() >= len(class_names)):
        raise DataSourceError(
            f"{path}: y_{split} must be labels 0 to {len(class_names) - 1} "
            f"({len(class_names)} classes). Received: labels {y.min()} to {y.max()}"
        )
