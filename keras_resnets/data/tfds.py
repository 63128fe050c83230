"""TensorFlow Datasets as a source: prepared data, or a download that fails fast offline.

Offline, TFDS would retry its download for minutes: one short connection attempt comes
first. A failed download removes the folders it created and left empty, so that a later
search does not take them for prepared data.
"""

import os
import shutil
import socket

import numpy as np

from keras_resnets.data.arrays import SPLITS, Arrays, DataSourceError, one_line

# Where TFDS's CIFAR builders download from (their `url`; TFDS tries GCS first, which is on
# the same networks).
_DOWNLOAD_HOST = ("www.cs.toronto.edu", 443)


def data_dir():
    """TFDS's data dir: `$TFDS_DATA_DIR`, by default `~/tensorflow_datasets`."""
    # Read here, not from tfds.core.constants.DATA_DIR, which is frozen at import time.
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"
    )


def has(name, folder=None):
    """Whether `name` looks prepared in TFDS's data dir."""
    # A cheap look before importing TFDS (seconds) and building a builder (which warns
    # about folders that do not exist).
    return os.path.isdir(os.path.join(folder or data_dir(), name))


def _network_reachable(address=_DOWNLOAD_HOST, timeout=2.0):
    """One short connection attempt: offline, TFDS would retry its download for minutes."""
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def _tfds_download(builder):
    """The network step, on its own so that tests can replace it."""
    if not _network_reachable():
        host, port = _DOWNLOAD_HOST
        raise DataSourceError(
            f"TFDS {builder.name} is not in {data_dir()} and there is no network to download "
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


def load(name="cifar10", *, download):
    """Reads the TFDS data set `name` (downloading it first if asked and needed) as `Arrays`."""
    folder = data_dir()
    created = _new_empty_folders(
        [folder, os.path.join(folder, name), os.path.join(folder, "downloads")]
    )
    try:
        return _read(name, folder, download=download)
    except BaseException:
        _remove_if_empty(reversed(created))
        raise


def _read(name, folder, *, download):
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise DataSourceError(f"tensorflow_datasets is not importable ({error})") from None
    try:
        builder = tfds.builder(name, data_dir=folder)
        if not builder.is_prepared():
            if not download:
                raise DataSourceError(f"{name} is not prepared in {folder}")
            _tfds_download(builder)
        splits = {}
        for split in SPLITS:
            # Batches rather than batch_size=-1, which needs the split's size up front.
            batches = builder.as_dataset(split=split, as_supervised=True).batch(10000)
            images, labels = zip(*tfds.as_numpy(batches))
            splits[split] = np.concatenate(images), np.concatenate(labels)
        # The supervised label: CIFAR-100's fine label.
        class_names = list(builder.info.features["label"].names)
    except DataSourceError:
        raise
    except Exception as error:  # TFDS and the network raise many types; report, no trace.
        action = "download into" if download else "read from"
        raise DataSourceError(f"TFDS {name} {action} {folder} failed ({one_line(error)})") from None
    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    return Arrays(
        x_train,
        y_train.astype(np.int32),
        x_test,
        y_test.astype(np.int32),
        class_names,
        f"TFDS {name} {builder.version} in {folder}",
    )
