"""The decode cache: decoded image folders and archives as uncompressed `.npz` files.

Files live in `cache_dir` (default `$KERAS_RESNETS_CACHE` or `~/.cache/keras_resnets`),
named after the inputs' paths, sizes and modification times, so a changed input is decoded
again and the second run of an unchanged one loads in about a second.
"""

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from keras_resnets.data.arrays import Arrays, one_line

CACHE_ENV_VAR = "KERAS_RESNETS_CACHE"
# Bump when the cache's content or layout changes, so that old cache files are not reused.
_CACHE_FORMAT = 1


def default_cache_dir():
    return Path(os.environ.get(CACHE_ENV_VAR) or Path("~/.cache/keras_resnets").expanduser())


def cache_path(inputs, files, cache_dir):
    """Cache file named after the inputs' paths, sizes and modification times."""
    stats = []
    for path, folder_files in zip(inputs, files):
        for file in [path] if folder_files is None else [f for _, _, f in folder_files]:
            stat = file.stat()
            stats.append((str(file.resolve()), stat.st_size, stat.st_mtime_ns))
    key = json.dumps([_CACHE_FORMAT, stats])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    stem = inputs[0].name.split(".")[0] if len(inputs) == 1 else inputs[0].parent.name
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return cache_dir / f"{stem or 'data'}-{digest}.npz"


def read(path):
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
        warnings.warn(f"Ignoring unreadable cache {path} ({one_line(error)}); decoding again.")
        return None


def write(path, arrays):
    """Writes to a temporary file and renames it, so a killed run leaves no partial cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError as error:
        warnings.warn(f"Not caching decoded images in {path.parent} ({one_line(error)}).")
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
        warnings.warn(f"Could not write the cache {path} ({one_line(error)}).")
    except BaseException:
        os.unlink(temporary)
        raise
