"""The decode cache: decoded image folders and archives as uncompressed `.npz` files.

Files live in `cache_dir` (default `$KERAS_RESNETS_CACHE` or `~/.cache/keras_resnets`),
named after the inputs' paths, sizes and modification times, so a changed input is decoded
again and the second run of an unchanged one loads in about a second. Each file records
which inputs it decoded (their paths alone), so that a new decode of the same inputs
removes the copies it replaces: a re-copied archive does not leave another 184 MB behind.
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


def inputs_key(inputs, files):
    """The inputs' identity without their sizes and times: the same for every version of
    them, so a new cache file can tell which older ones it replaces."""
    paths = []
    for path, folder_files in zip(inputs, files):
        paths += (
            [str(path.resolve())]
            if folder_files is None
            else [str(f.resolve()) for _, _, f in folder_files]
        )
    return hashlib.sha256(json.dumps(sorted(paths)).encode()).hexdigest()[:16]


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


def write(path, arrays, *, inputs=None):
    """Writes to a temporary file and renames it, so a killed run leaves no partial cache;
    then removes older cache files of the same `inputs` (see `inputs_key`)."""
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
                inputs=np.array(inputs or "", dtype=str),
            )
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the cache is not secret.
        os.replace(temporary, path)
    except OSError as error:  # A full disk costs the next run a decode, not this run.
        os.unlink(temporary)
        warnings.warn(f"Could not write the cache {path} ({one_line(error)}).")
        return
    except BaseException:
        os.unlink(temporary)
        raise
    if inputs:
        _remove_replaced(path, inputs)


def _remove_replaced(path, inputs):
    """Remove the other cache files in `path`'s folder that decoded the same inputs."""
    for other in path.parent.glob("*.npz"):
        if other == path:
            continue
        try:
            with np.load(other, allow_pickle=False) as cached:
                same = "inputs" in cached.files and str(cached["inputs"]) == inputs
            if same:
                other.unlink()
        except (OSError, ValueError, KeyError, EOFError):
            pass  # someone else's file, or one being written: leave it
