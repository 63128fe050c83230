"""Finding, checking and reading weight files.

Downloads go through `keras.utils.get_file` into the Keras cache (`~/.keras/models`), and
every file is checked against the publisher's hash before it is read. Nothing here loads
pickled code: torchvision checkpoints are read with `torch.load(weights_only=True)`, and
`.h5` files with h5py.
"""

import contextlib
import hashlib
import os
import pickle
import zipfile

import numpy as np

CACHE_SUBDIR = "models"
# Where "package:" URLs point: the weights that ship inside the package.
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class WeightsError(ValueError):
    """A weights file that cannot be had or does not check out; the message says what to do."""


def file_digest(path, algorithm):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_matches(path, file_hash):
    """A full SHA-256 (64 hex digits), an MD5 (32; keras.applications' WEIGHTS_HASHES) or a
    SHA-256 prefix (torchvision's file-name convention, 8 or more digits)."""
    algorithm = "md5" if len(file_hash) == 32 else "sha256"
    return file_digest(path, algorithm).startswith(file_hash.lower())


def cache_dir():
    """Keras's cache folder (`$KERAS_HOME`, else ~/.keras), read at call time."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def cache_path(file_name):
    return os.path.join(cache_dir(), CACHE_SUBDIR, file_name)


def fetch(entry):
    """The local path of `entry`'s file (a `registry.Weights`): from the package, the Keras
    cache, or a download; its hash checked. Raises WeightsError with the way out."""
    if entry.url.startswith("package:"):
        path = os.path.join(PACKAGE_DIR, entry.url[len("package:") :])
        if not os.path.exists(path):
            raise WeightsError(f"The package's weights file {path} is missing: reinstall it.")
    else:
        expected = cache_path(entry.file_name)
        # get_file falls back to /tmp/.keras when the cache folder does not exist yet.
        os.makedirs(os.path.dirname(expected), exist_ok=True)
        import keras

        try:
            path = keras.utils.get_file(
                entry.file_name, entry.url, cache_dir=cache_dir(), cache_subdir=CACHE_SUBDIR
            )
        except Exception as error:  # get_file raises bare Exceptions for network failures
            raise WeightsError(
                f"Could not download {entry.url} ({type(error).__name__}: {error}). Offline? "
                f"Download that file elsewhere and put it at {expected}, or pass "
                "weights=<path of the file>."
            ) from None
    if not hash_matches(path, entry.file_hash):
        raise WeightsError(
            f"{path} does not match the publisher's hash {entry.file_hash} of {entry.url}: "
            f"the file is corrupt or not {entry.file_name}. Delete it and download it again."
        )
    return path


def format_of(path):
    """The checkpoint format a file name implies."""
    name = os.path.basename(path)
    if name.endswith(".weights.h5"):
        return "keras"
    if name.endswith((".h5", ".hdf5")):
        return "keras_applications"
    if name.endswith((".pth", ".pt")):
        return "torchvision"
    if name.endswith(".safetensors"):
        return "safetensors"
    raise WeightsError(
        f"Cannot tell the format of {path}: expected a torchvision .pth, a keras.applications "
        ".h5, a .safetensors file or our .weights.h5."
    )


@contextlib.contextmanager
def reading(path, format):
    """Name the file when its reader fails on it: h5py's "file signature not found", torch's
    unpickler's "KeyError: 174812789" or a zip reader's error on a truncated or foreign
    file become one WeightsError. Only the reading is wrapped, not the conversion after it."""
    try:
        yield
    except (
        OSError,
        KeyError,
        EOFError,
        RuntimeError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
    ) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise WeightsError(
            f"{path} is not a readable {format} checkpoint ({type(error).__name__}"
            f"{': ' + detail if detail else ''}); download or save it again."
        ) from None


def read_torch(path):
    """A `.pth` state dict as NumPy arrays, with `weights_only=True` (no pickled code)."""
    try:
        import torch
    except ImportError:
        raise WeightsError(
            f"Reading {path}, a PyTorch checkpoint, needs PyTorch: pip install torch"
        ) from None
    with reading(path, "PyTorch"):
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}


def read_safetensors(path):
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise WeightsError(f"Reading {path} needs safetensors: pip install safetensors") from None
    with reading(path, "safetensors"):
        return load_file(path)


def read_legacy_h5(path):
    """keras.applications' weight file: `{layer name: {weight name: array}}`.

    The layout Keras's legacy HDF5 writer uses: a `layer_names` attribute at the root, and in
    each layer's group a `weight_names` attribute naming its datasets ("conv1_conv/kernel:0"
    in Keras 2, "conv1_conv/kernel" in Keras 3).
    """
    import h5py

    def text(value):
        return value.decode("utf8") if isinstance(value, bytes) else str(value)

    layers = {}
    with reading(path, "keras.applications HDF5"), h5py.File(path, "r") as f:
        group_root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group_root.attrs:
            raise WeightsError(f"{path} is not a Keras legacy HDF5 weights file.")
        for layer in (text(n) for n in group_root.attrs["layer_names"]):
            group = group_root[layer]
            names = [text(n) for n in group.attrs.get("weight_names", [])]
            if names:
                layers[layer] = {
                    n.split("/")[-1].split(":")[0]: np.asarray(group[n]) for n in names
                }
    return layers
