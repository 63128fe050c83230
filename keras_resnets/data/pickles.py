"""CIFAR's official Python version: pickled batches, in a folder, an archive or Keras's cache.

The layout of each data set (file names, label keys) is its `datasets.PickleLayout`:
`cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}` and
`cifar-100-python/{train,test,meta}`. They are read directly, from the folder or straight
out of the tar.gz, because `keras.datasets.*.load_data` insists on its own download
location and tries to download when that is missing.
"""

import os
import pickle
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np

from keras_resnets.data import datasets, images
from keras_resnets.data.arrays import HOW_TO_POINT, Arrays, CorruptImageError, DataSourceError

# The data sets with an official pickle layout, in the order they are looked for.
WITH_PICKLES = tuple(d for d in datasets.DATASETS.values() if d.pickles is not None)


def keras_cache_candidates(dataset=datasets.CIFAR10):
    """Where keras.datasets keeps `dataset`'s download (`$KERAS_HOME` or `~/.keras`)."""
    # Keras 3 extracts to <folder>-target/, Keras 2 to <folder>/; the downloaded archive
    # keeps its own or Keras's name. Read $KERAS_HOME here, not via keras.config, which
    # freezes it at import time.
    layout = dataset.pickles
    home = Path(os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser()) / "datasets"
    names = [
        layout.folder,
        f"{layout.folder}-target/{layout.folder}",
        layout.archive,
        f"{layout.folder}.tar.gz",
        f"{layout.folder}-target_archive",
    ]
    return [home / name for name in dict.fromkeys(names)]


def find_keras_cache(dataset=datasets.CIFAR10):
    """The first of `keras_cache_candidates(dataset)` that holds the batches, else None."""
    for candidate in keras_cache_candidates(dataset):
        if candidate.is_dir() and find_in(candidate, (dataset,)) is not None:
            return candidate
        if candidate.is_file() and tarfile.is_tarfile(candidate):
            return candidate
    return None


def find_in(folder, among=WITH_PICKLES):
    """`(dataset, path)` of the batches `folder` is or contains (a folder or the official
    archive), else None."""
    for dataset in among:
        layout = dataset.pickles
        for candidate in (
            folder,
            folder / layout.folder,
            folder / f"{layout.folder}-target" / layout.folder,
        ):
            if (candidate / layout.train[0]).is_file() and (candidate / layout.test).is_file():
                return dataset, candidate
        for name in (layout.archive, f"{layout.folder}.tar.gz"):
            if (folder / name).is_file():
                return dataset, folder / name
    return None


def archive_dataset(path):
    """The data set whose batches the tar archive `path` holds, else None (image archives).

    Looks only as far as the first batch or image: the batches come first in CIFAR's
    archives, and an image archive's first image comes before any such file.
    """
    by_name = {}
    for dataset in WITH_PICKLES:
        by_name.setdefault(dataset.pickles.train[0], dataset)
        by_name.setdefault(dataset.pickles.test, dataset)
    with images.archive_errors(path), tarfile.open(path) as archive:
        for member in archive:
            if not member.isfile():
                continue
            name = PurePosixPath(member.name).name
            if name in by_name:
                return by_name[name]
            if name.lower().endswith(images.IMAGE_EXTENSIONS):
                return None
    return None


def load(path, dataset=datasets.CIFAR10):
    """Reads `dataset`'s pickled batches from the folder or archive `path` as `Arrays`."""
    layout = dataset.pickles
    wanted = [*layout.train, layout.test, layout.meta]
    blobs = {}
    if path.is_dir():
        for name in wanted:
            if (path / name).is_file():
                blobs[name] = (path / name).read_bytes()
    else:
        with images.archive_errors(path), tarfile.open(path) as archive:
            for member in archive:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in wanted:
                    blobs[name] = archive.extractfile(member).read()
    missing = [name for name in wanted[:-1] if name not in blobs]
    if missing:
        raise DataSourceError(f"keras.datasets cache {path} lacks {missing}. {HOW_TO_POINT}")
    height, width, channels = dataset.image_shape

    def read(name):
        # These pickles come from the user's own Keras cache, as keras.datasets trusts them.
        batch = pickle.loads(blobs[name], encoding="bytes")
        pixels = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[layout.labels], dtype=np.int32)
        size = height * width * channels
        if pixels.ndim != 2 or pixels.shape[1] != size or len(labels) != len(pixels):
            raise CorruptImageError(
                f"{path}/{name}: expected data [N, {size}] and N labels, got data "
                f"{pixels.shape} and {len(labels)} labels"
            )
        # Rows are channel-major (all red values, then all green, then all blue).
        return pixels.reshape(-1, channels, height, width).transpose(0, 2, 3, 1), labels

    train = [read(name) for name in layout.train]
    x_test, y_test = read(layout.test)
    class_names = list(dataset.class_names)
    if layout.meta in blobs:
        meta = pickle.loads(blobs[layout.meta], encoding="bytes")
        class_names = [name.decode() for name in meta[layout.label_names]]
    return Arrays(
        np.concatenate([x for x, _ in train]),
        np.concatenate([y for _, y in train]),
        x_test,
        y_test,
        class_names,
        f"keras.datasets cache {path}",
    )
