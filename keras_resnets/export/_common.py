"""What every export format shares: the input contract, the checks on the model and the
arguments, the versioned atomic folder layout and the metadata file."""

import dataclasses
import importlib
import json
import numbers
import os
import shutil
import time
import uuid
from pathlib import Path

import keras

from keras_resnets import _checks
from keras_resnets.accounting import sublayers
from keras_resnets.export import signatures

# TF Serving's folder for extra files (it reads `tf_serving_warmup_requests` from it and
# ignores everything else). Every format keeps its metadata at the same place, so `verify`
# and the tools read one path whatever the format.
METADATA_PATH = Path("assets.extra") / "keras_resnets.json"
# TF Serving and Triton load only all-digit folder names, so these prefixes are never served.
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"
# The file that marks a version folder as one format (Triton's default file names for ONNX
# and TFLite; TF Serving's for the SavedModel).
MODEL_FILES = {"saved_model": "saved_model.pb", "onnx": "model.onnx", "litert": "model.tflite"}
EXTRA = "pip install 'keras-resnets[export]'"


class MissingExtraError(ImportError):
    """An optional export dependency is not installed; the message says what to install."""


def require(module, *, purpose):
    """Import `module`, or raise `MissingExtraError` with the one line that fixes it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"{purpose} needs the `{module.split('.')[0]}` package: {EXTRA}"
        ) from None


@dataclasses.dataclass(frozen=True)
class Contract:
    """The served input and outputs, the same for every format: raw 0..255 RGB `images`
    `[batch, height, width, 3]` in; `probabilities` `[batch, classes]` and `classes`
    `[batch]` (the argmax) out."""

    height: int
    width: int
    num_classes: int
    class_names: tuple = None
    apply_softmax: bool = False


def check_backend(what):
    if keras.config.backend() != "tensorflow":
        raise RuntimeError(
            f"{what} needs the TensorFlow backend. Load the `.keras` file (or build the model "
            "and `load_weights` a `.weights.h5`) in a process started with "
            f"KERAS_BACKEND=tensorflow and export from there. Current backend: "
            f"{keras.config.backend()!r}"
        )


def contract_for(model, *, image_size=None, class_names=None):
    height, width = _input_size(model, image_size)
    num_classes = _num_classes(model)
    names = _check_class_names(class_names, num_classes)
    return Contract(
        height,
        width,
        num_classes,
        None if names is None else tuple(names),
        not _ends_in_softmax(model),
    )


def float32_copy(model):
    """`model` itself if it computes in float32, else a float32 copy with the same weights.

    Keras has no call to change a built model's dtype policy, so the copy is rebuilt from the
    model's config with every layer's policy set to float32; mixed policies keep variables in
    float32, so the weights carry over exactly.
    """
    policies = {layer.dtype_policy.name for layer in sublayers(model, include_self=False)}
    if policies <= {"float32"}:
        return model

    def to_float32(config):
        if isinstance(config, dict):
            if config.get("class_name") == "DTypePolicy" or (
                config.get("module") == "keras" and "DTypePolicy" in str(config.get("class_name"))
            ):
                return "float32"
            return {key: to_float32(value) for key, value in config.items()}
        if isinstance(config, list):
            return [to_float32(value) for value in config]
        if config in ("mixed_float16", "mixed_bfloat16"):
            return "float32"
        return config

    copy = model.__class__.from_config(to_float32(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def check_path(path):
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"`path` must be a folder's path. Received: path={path!r}")


def write_version(path, *, version, overwrite, fmt, write):
    """Call `write(folder)` on a hidden temporary folder inside `path`, then rename it to
    `path/<version>`, so a server polling `path` never sees a half-written version.

    Returns the version folder (`pathlib.Path`)."""
    check_path(path)
    # Text is truthy: overwrite="False" once replaced the version it was meant to keep.
    overwrite = _checks.check_bool("overwrite", overwrite)
    base = Path(path)
    if base.exists() and not base.is_dir():
        raise ValueError(f"`path` must be a folder. Received: path={str(path)!r}")
    version = next_version(base) if version is None else _check_version(version)
    target = base / str(version)
    if target.exists() and not overwrite:
        raise ValueError(_exists_message(target, version))
    _check_one_format(base, fmt, replacing=version if overwrite else None)

    base.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its 0700 mode would stay on the published version, which a server
    # running as another user could then not read.
    tmp = base / f"{_TMP_PREFIX}{version}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write(tmp, version)
        _publish(tmp, target, version=version, overwrite=overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def write_metadata(version_dir, *, model, version, contract, fmt, inputs, extra=None):
    import tensorflow as tf

    import keras_resnets

    metadata = {
        "model_name": model.name,
        "version": version,
        "format": fmt,
        "file": MODEL_FILES[fmt],
        # The main input (`serving_default`'s for a SavedModel), then one entry per served
        # input (a SavedModel has one per signature).
        "input": {**inputs[0], "pixel_range": [0, 255]},
        "inputs": inputs,
        "outputs": signatures.outputs(contract.num_classes),
        "pixel_range": [0, 255],
        "num_classes": contract.num_classes,
        "class_names": None if contract.class_names is None else list(contract.class_names),
        "softmax_added_by_export": contract.apply_softmax,
        "keras_resnets_version": getattr(keras_resnets, "__version__", None),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    metadata_file = version_dir / METADATA_PATH
    metadata_file.parent.mkdir(parents=True, exist_ok=True)
    metadata_file.write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def read_metadata(version_dir):
    metadata_file = Path(version_dir) / METADATA_PATH
    return json.loads(metadata_file.read_text()) if metadata_file.exists() else None


def find_version_dir(path):
    """`path` itself when it is a version folder of any format, else its highest version."""
    path = Path(path)
    if format_of(path) is not None:
        return path
    versions = _versions(path)
    if not versions:
        raise ValueError(
            "`path` must be a version folder (holding saved_model.pb, model.onnx or "
            "model.tflite) or a base folder holding numbered versions. Received: "
            f"path={str(path)!r}"
        )
    return path / str(versions[-1])


def format_of(version_dir):
    for fmt, name in MODEL_FILES.items():
        if (Path(version_dir) / name).exists():
            return fmt
    return None


def next_version(base):
    versions = _versions(base)
    return versions[-1] + 1 if versions else 1


def _check_one_format(base, fmt, *, replacing):
    # TF Serving serves the highest version of a folder: an ONNX version there would stop it.
    others = {
        version: format_of(base / str(version))
        for version in _versions(base)
        if version != replacing
    }
    clash = sorted(v for v, f in others.items() if f is not None and f != fmt)
    if clash:
        raise ValueError(
            f"{str(base)!r} already holds {others[clash[0]]} version(s) {clash}: a server "
            f"loads every version of a model folder as one format, so export the {fmt} "
            f"model into its own folder (e.g. --name NAME_{fmt}). Received: format={fmt!r}"
        )


def _input_size(model, image_size):
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
    if len(model.inputs) != 1:
        raise ValueError(
            "`model` must take one image input. Received a model with "
            f"{len(model.inputs)} inputs: {[tuple(x.shape) for x in model.inputs]}"
        )
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(
            "`model` must take 4-D channels-last RGB input [batch, height, width, 3]. "
            f"Received: model input shape={shape}"
        )
    model_size = shape[1:3]
    if image_size is not None:
        size = (image_size, image_size) if isinstance(image_size, numbers.Integral) else image_size
        size = tuple(size)
        if len(size) != 2 or not all(isinstance(s, numbers.Integral) and s > 0 for s in size):
            raise ValueError(
                "`image_size` must be a positive int or (height, width). "
                f"Received: image_size={image_size!r}"
            )
        for model_s, s in zip(model_size, size):
            if model_s is not None and model_s != s:
                raise ValueError(
                    f"`image_size` differs from the model's input size {model_size}. "
                    f"Received: image_size={image_size!r}"
                )
        return int(size[0]), int(size[1])
    if None in model_size:
        raise ValueError(
            f"The model's input size is {model_size}: pass `image_size=(height, width)`, the "
            "size that clients' images are resized to. Received: image_size=None"
        )
    return int(model_size[0]), int(model_size[1])


def _num_classes(model):
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ValueError(
            "`model` must have one output of shape [batch, classes]. Received output shapes: "
            f"{[tuple(x.shape) for x in model.outputs]}"
        )
    return int(model.outputs[0].shape[-1])


def _check_class_names(class_names, num_classes):
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)) or not all(
        isinstance(name, str) for name in class_names
    ):
        raise ValueError(
            f"`class_names` must be a sequence of str. Received: class_names={class_names!r}"
        )
    class_names = list(class_names)
    if len(class_names) != num_classes:
        raise ValueError(
            f"`class_names` must name all {num_classes} classes of the model. Received "
            f"{len(class_names)}: class_names={class_names!r}"
        )
    return class_names


def _ends_in_softmax(model):
    """Whether the model outputs probabilities (softmax) rather than logits (no activation)."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", None)
    if name == "softmax":
        return True
    if name == "linear":
        return False
    raise ValueError(
        "Cannot tell whether the model outputs probabilities: its last layer "
        f"{last.name!r} ({type(last).__name__}) must have a softmax activation, or none "
        f"(logits, then the export applies the softmax). Received: activation={activation!r}"
    )


def _check_version(version):
    # TF Serving reads versions as int64.
    if (
        isinstance(version, bool)
        or not isinstance(version, numbers.Integral)
        or not 1 <= version < 2**63
    ):
        raise ValueError(
            f"`version` must be a positive int below 2**63. Received: version={version!r}"
        )
    return int(version)


def _versions(base):
    if not base.is_dir():
        return []
    return sorted(
        int(child.name)
        for child in base.iterdir()
        if child.is_dir() and child.name.isascii() and child.name.isdecimal()
    )


def _exists_message(target, version):
    return (
        f"Version {version} already exists at {str(target)!r}: pass overwrite=True to replace "
        f"it, or version=None for the next free version. Received: version={version!r}"
    )


def _publish(tmp, target, *, version, overwrite):
    """Rename the finished export `tmp` to `target`, replacing an old version if allowed."""
    if not target.exists():
        try:
            # POSIX rename of a folder fails when `target` is a non-empty folder, so a version
            # created meanwhile by another process is never replaced silently.
            os.rename(tmp, target)
            return
        except OSError:
            if not target.exists():
                raise
    if not overwrite:
        raise ValueError(_exists_message(target, version))
    old = target.parent / f"{_OLD_PREFIX}{version}-{uuid.uuid4().hex[:8]}"
    # Two renames: the version is missing for an instant, never half-written.
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
