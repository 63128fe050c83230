"""Export a trained classifier for serving: a TF Serving SavedModel, ONNX or LiteRT.

Every format is written into the same versioned layout, `<base>/<version>/`, atomically (a
hidden folder renamed into place), with the same input contract: raw RGB pixel values 0..255
as `images` `[batch, height, width, 3]` (the model's normalisation runs inside the graph),
and the outputs `probabilities` (float32 `[batch, classes]`) and `classes` (int64 `[batch]`).

| format | file | runtime | inputs |
| --- | --- | --- | --- |
| `saved_model` | `saved_model.pb`, `variables/` | TF Serving | `serving_default` float32, `serving_uint8`, `serving_bytes` (encoded files) |
| `onnx` | `model.onnx` | ONNX Runtime | `images` float32 |
| `litert` | `model.tflite` (`quantize="int8"`: int8 weights) | `ai_edge_litert` | `images` float32 |

The names: `export(model, path, format=...)` writes any format, and `saved_model`, `onnx`
and `litert` are it with the format fixed; `verify(path)` reads an export back.
`keras_resnets.export_saved_model` is `saved_model` (the package's top-level name for it,
where `keras_resnets.export` is this package). The signatures are one table,
`keras_resnets.export.signatures`; each format's writer is a private module.

>>> from keras_resnets.export import export, verify
>>> path = export(model, "saved_models/cifar_resnet20")  # saved_models/cifar_resnet20/1
>>> verify(path)["signatures"]["serving_bytes"]["inputs"]
>>> export(model, "saved_models/cifar_resnet20_onnx", format="onnx")
"""  # noqa: E501

from keras_resnets import _checks
from keras_resnets.export import _common, _litert, _onnx, _saved_model, signatures
from keras_resnets.export._common import METADATA_PATH, MissingExtraError, float32_copy
from keras_resnets.export.signatures import SERVING_BYTES, SERVING_DEFAULT, SERVING_UINT8

FORMATS = ("saved_model", "onnx", "litert")
_WRITERS = {"saved_model": _saved_model, "onnx": _onnx, "litert": _litert}


def export(
    model,
    path,
    *,
    format="saved_model",
    version=None,
    overwrite=False,
    class_names=None,
    image_size=None,
    dtype="float32",
    quantize=None,
    warmup=True,
):
    """Write `model` as version `version` of the model folder `path`, in `format`.

    The version is written into a hidden temporary folder inside `path` and renamed into place,
    so a running server (TF Serving, Triton), which polls `path`, never sees a half-written
    version. A folder holds one format: a server loads all its versions the same way.

    Args:
        model: a functional `keras.Model` taking float32 `[batch, height, width, 3]` raw pixel
            values 0..255 and returning `[batch, classes]` softmax probabilities, or logits
            when its last layer has no activation (then the export applies the softmax).
        path: the model's base folder, e.g. `"saved_models/cifar_resnet20"`. Created if needed.
        format: `"saved_model"` (the default; TF Serving), `"onnx"` (ONNX Runtime) or
            `"litert"` (LiteRT / TFLite). ONNX needs the `export` extra
            (`pip install 'keras-resnets[export]'`).
        version: positive int. Defaults to `None`: one more than the highest existing version
            (1 for an empty folder).
        overwrite: whether to replace an existing `version`. Defaults to `False`.
        class_names: optional sequence of `classes` strings: the SavedModel's `class_names`
            output, the ONNX model's `class_names` metadata prop, and the metadata file.
        image_size: `(height, width)` or an int, for a model whose input size is `None`.
            Defaults to `None`: the model's own input size.
        dtype: the precision the served graph computes in. `"float32"` (the default)
            re-creates a mixed-precision model (trained under `mixed_bfloat16` or
            `mixed_float16`) in float32 with the same weights, so it runs at full speed on
            any server: bfloat16 is emulated, and several times slower, on CPUs without AMX.
            `"keep"` serves the model's own dtype policy.
        quantize: `None` (the default) or `"int8"`: LiteRT only, dynamic-range quantisation
            (int8 weights, about 4x smaller; see docs/serving.md for its accuracy).
        warmup: SavedModel only: write TF Serving's warm-up requests
            (`assets.extra/tf_serving_warmup_requests`, one per signature). Defaults to `True`;
            skipped with a warning without `tensorflow-serving-api`.

    Returns:
        `pathlib.Path` of the version folder written.

    Raises:
        ValueError: on a bad argument, or an existing version without `overwrite=True`.
        RuntimeError: when the Keras backend is not TensorFlow.
        MissingExtraError: (an `ImportError`) when the format's package is not installed.

    Example:
    >>> model = keras_resnets.build("cifar_resnet", depth=20)
    >>> export(model, "saved_models/cifar_resnet20", class_names=CIFAR10_CLASSES)
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}. Received: format={format!r}")
    if quantize not in _litert.QUANTIZATIONS:
        raise ValueError(f"`quantize` must be None or 'int8'. Received: quantize={quantize!r}")
    if quantize is not None and format != "litert":
        raise ValueError(
            "`quantize='int8'` is for format='litert' (dynamic-range int8). "
            f"Received: format={format!r}, quantize={quantize!r}"
        )
    if dtype not in ("float32", "keep"):
        raise ValueError(f"`dtype` must be 'float32' or 'keep'. Received: dtype={dtype!r}")
    # Before any work (write_version checks them again): text is truthy.
    _common.check_path(path)
    _checks.check_bool("overwrite", overwrite)
    warmup = _checks.check_bool("warmup", warmup)
    _common.check_backend(
        {"saved_model": "SavedModel", "onnx": "ONNX", "litert": "LiteRT"}[format] + " export"
    )
    if format == "onnx":  # fail before any work, with the one line that fixes it
        _common.require("tf2onnx", purpose=_onnx.PURPOSE)
    contract = _common.contract_for(model, image_size=image_size, class_names=class_names)
    if dtype == "float32":
        model = float32_copy(model)
    options = {"saved_model": {"warmup": warmup}, "onnx": {}, "litert": {"quantize": quantize}}[
        format
    ]

    def write(folder, version):
        _WRITERS[format].write(model, folder, version=version, contract=contract, **options)

    return _common.write_version(
        path, version=version, overwrite=overwrite, fmt=format, write=write
    )


def saved_model(model, path, **kwargs):
    """`export(model, path, format="saved_model", ...)`: a SavedModel for TF Serving."""
    return export(model, path, format="saved_model", **kwargs)


def onnx(model, path, **kwargs):
    """`export(model, path, format="onnx", ...)`: `model.onnx` for ONNX Runtime."""
    return export(model, path, format="onnx", **kwargs)


def litert(model, path, **kwargs):
    """`export(model, path, format="litert", ...)`: `model.tflite` for LiteRT."""
    return export(model, path, format="litert", **kwargs)


# The package's top-level name for `saved_model` (`keras_resnets.export_saved_model`), kept
# as an alias.
export_saved_model = saved_model


def verify(path):
    """Describe an export of any format, read back with its own runtime's tools.

    Args:
        path: a version folder (holding `saved_model.pb`, `model.onnx` or `model.tflite`),
            or a base folder, whose highest version is then read.

    Returns:
        A dict: `path` (the version folder), `version` (int or `None`), `format`,
        `signatures` (`{name: {"inputs": {name: {"dtype", "shape"}}, "outputs": {...}}}`,
        shapes as lists with `None` for any size; ONNX has one, `serving_default`, and also
        `metadata_props`) and `metadata` (the export's JSON file, or `None`).

    Example:
    >>> verify("saved_models/cifar_resnet20")["signatures"]["serving_default"]["outputs"]
    """
    version_dir = _common.find_version_dir(path)
    fmt = _common.format_of(version_dir)
    info = {
        "path": str(version_dir),
        "version": int(version_dir.name) if version_dir.name.isdecimal() else None,
        "format": fmt,
        "metadata": _common.read_metadata(version_dir),
    }
    if fmt == "onnx":
        described = _onnx.describe(version_dir)
        info["signatures"] = {
            SERVING_DEFAULT: {"inputs": described["inputs"], "outputs": described["outputs"]}
        }
        info["metadata_props"] = described["metadata_props"]
    else:
        info["signatures"] = _WRITERS[fmt].describe(version_dir)
    return info


__all__ = [
    "FORMATS",
    "METADATA_PATH",
    "MissingExtraError",
    "SERVING_BYTES",
    "SERVING_DEFAULT",
    "SERVING_UINT8",
    "export",
    "export_saved_model",
    "float32_copy",
    "litert",
    "onnx",
    "saved_model",
    "signatures",
    "verify",
]
