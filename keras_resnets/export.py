"""Export a trained classifier as a SavedModel that TensorFlow Serving loads as it is.

The export writes TF Serving's layout, `<base>/<version>/saved_model.pb` plus `variables/`,
with two signatures:

- `serving_default`: `images`, float32 `[batch, height, width, 3]` raw RGB pixel values 0..255.
- `serving_bytes`: `image_bytes`, string `[batch]` of encoded JPEG/PNG/GIF/BMP/WebP files
  (TF Serving REST: `{"b64": "..."}`), decoded and resized inside the graph.

Both return `probabilities` (float32 `[batch, classes]`), `classes` (int64 `[batch]`, the
argmax) and, when class names were given, `class_names` (string `[batch]`). The model's own
normalisation runs inside the graph, so clients send raw pixels and never normalise.

>>> from keras_resnets.export import export, verify
>>> path = export(model, "saved_models/cifar_resnet20")  # saved_models/cifar_resnet20/1
>>> verify(path)["signatures"]["serving_bytes"]["inputs"]
"""

import json
import numbers
import os
import shutil
import time
import uuid
from pathlib import Path

import keras

SERVING_DEFAULT = "serving_default"
SERVING_BYTES = "serving_bytes"
# TF Serving's folder for extra files (it reads `tf_serving_warmup_requests` from it and
# ignores everything else), so the metadata travels with the version without touching the graph.
METADATA_PATH = Path("assets.extra") / "keras_resnets.json"
# TF Serving loads only all-digit folder names, so these prefixes are never served.
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"


def export(
    model,
    path,
    *,
    version=None,
    overwrite=False,
    class_names=None,
    image_size=None,
    dtype="float32",
):
    """Write `model` as version `version` of the TF Serving model folder `path`.

    The version is written into a hidden temporary folder inside `path` and renamed into place,
    so a running TF Serving, which polls `path`, never sees a half-written version.

    Args:
        model: a functional `keras.Model` taking float32 `[batch, height, width, 3]` raw pixel
            values 0..255 and returning `[batch, classes]` softmax probabilities, or logits
            when its last layer has no activation (then the export applies the softmax).
        path: the model's base folder, e.g. `"saved_models/cifar_resnet20"`. Created if needed.
        version: positive int. Defaults to `None`: one more than the highest existing version
            (1 for an empty folder).
        overwrite: whether to replace an existing `version`. Defaults to `False`.
        class_names: optional sequence of `classes` strings; adds the `class_names` output.
        image_size: `(height, width)` or an int, for a model whose input size is `None`.
            Defaults to `None`: the model's own input size.
        dtype: the precision the served graph computes in. `"float32"` (the default)
            re-creates a mixed-precision model (trained under `mixed_bfloat16` or
            `mixed_float16`) in float32 with the same weights, so the SavedModel runs at
            full speed on any server: bfloat16 is emulated, and several times slower, on
            CPUs without AMX. `"keep"` serves the model's own dtype policy.

    Returns:
        `pathlib.Path` of the version folder written.

    Raises:
        ValueError: on a bad argument, or an existing version without `overwrite=True`.
        RuntimeError: when the Keras backend is not TensorFlow.

    Example:
    >>> model = keras_resnets.build("cifar_resnet", depth=20)
    >>> export(model, "saved_models/cifar_resnet20", class_names=CIFAR10_CLASSES)
    """
    if keras.config.backend() != "tensorflow":
        raise RuntimeError(
            "SavedModel export needs the TensorFlow backend. Load the `.keras` file in a "
            "process started with KERAS_BACKEND=tensorflow and export from there. "
            f"Current backend: {keras.config.backend()!r}"
        )
    import tensorflow as tf  # only export needs TensorFlow: imported on use

    if dtype not in ("float32", "keep"):
        raise ValueError(f"`dtype` must be 'float32' or 'keep'. Received: dtype={dtype!r}")
    height, width = _input_size(model, image_size)
    num_classes = _num_classes(model)
    class_names = _check_class_names(class_names, num_classes)
    apply_softmax = not _ends_in_softmax(model)
    if dtype == "float32":
        model = float32_copy(model)

    base = Path(path)
    if base.exists() and not base.is_dir():
        raise ValueError(f"`path` must be a folder. Received: path={str(path)!r}")
    version = _next_version(base) if version is None else _check_version(version)
    target = base / str(version)
    if target.exists() and not overwrite:
        raise ValueError(_exists_message(target, version))

    base.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its 0700 mode would stay on the published version, which a server
    # running as another user could then not read.
    tmp = base / f"{_TMP_PREFIX}{version}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        module = _serving_module(
            model, height=height, width=width, class_names=class_names,
            apply_softmax=apply_softmax,
        )
        tf.saved_model.save(
            module,
            str(tmp),
            signatures={
                SERVING_DEFAULT: module.serving_default,
                SERVING_BYTES: module.serving_bytes,
            },
        )
        _write_metadata(
            tmp, model=model, version=version, height=height, width=width,
            num_classes=num_classes, class_names=class_names, apply_softmax=apply_softmax,
        )
        _publish(tmp, target, version=version, overwrite=overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def float32_copy(model):
    """`model` itself if it computes in float32, else a float32 copy with the same weights.

    Keras has no call to change a built model's dtype policy, so the copy is rebuilt from the
    model's config with every layer's policy set to float32; mixed policies keep variables in
    float32, so the weights carry over exactly.
    """
    policies = {layer.dtype_policy.name for layer in model._flatten_layers(include_self=False)}
    if policies <= {"float32"}:
        return model

    def to_float32(config):
        if isinstance(config, dict):
            if config.get("class_name") == "DTypePolicy" or (
                    config.get("module") == "keras" and "DTypePolicy" in str(
                        config.get("class_name"))):
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


# The package may expose the function as `keras_resnets.export`, which hides this module's
# name there; `export_saved_model` is the unambiguous name.
export_saved_model = export


def verify(path):
    """Load a SavedModel with plain `tf.saved_model.load` and describe its signatures.

    Args:
        path: a version folder (holding `saved_model.pb`), or a base folder, whose highest
            version is then read.

    Returns:
        A dict: `path` (the version folder), `version` (int or `None`), `signatures`
        (`{name: {"inputs": {name: {"dtype", "shape"}}, "outputs": {...}}}`, shapes as lists
        with `None` for any size) and `metadata` (the export's JSON file, or `None`).

    Example:
    >>> verify("saved_models/cifar_resnet20")["signatures"]["serving_default"]["outputs"]
    """
    import tensorflow as tf

    version_dir = _find_version_dir(Path(path))
    loaded = tf.saved_model.load(str(version_dir))
    signatures = {}
    for name in sorted(loaded.signatures.keys()):
        function = loaded.signatures[name]
        _, input_specs = function.structured_input_signature
        signatures[name] = {
            "inputs": {key: _describe(spec) for key, spec in sorted(input_specs.items())},
            "outputs": {
                key: _describe(spec) for key, spec in sorted(function.structured_outputs.items())
            },
        }
    metadata_file = version_dir / METADATA_PATH
    return {
        "path": str(version_dir),
        "version": int(version_dir.name) if version_dir.name.isdecimal() else None,
        "signatures": signatures,
        "metadata": json.loads(metadata_file.read_text()) if metadata_file.exists() else None,
    }


def _serving_module(model, *, height, width, class_names, apply_softmax):
    """The `tf.Module` holding both signatures.

    A plain `tf.Module` with `tf.function`s rather than `keras.export.ExportArchive`: the
    archive's endpoints are equally possible, but here the signature input names, the
    in-graph checks and the tracked variables are all explicit in a few lines.

    The module tracks the `tf.Variable`s under the Keras variables, not the Keras model: a
    tracked Keras 3 variable is saved through a copy (`Variable_N`) that the restore op fills
    while the serving graph reads the original, so TF Serving, which loads through that
    restore op (TF1-style session), fails with "Could not find variable ...".
    """
    import tensorflow as tf

    module = tf.Module()
    module.model_variables = [variable.value for variable in model.variables]
    input_dtype = model.inputs[0].dtype

    def predict(images):
        outputs = model(tf.cast(images, input_dtype), training=False)
        # float32 outputs also under a mixed_float16 / mixed_bfloat16 policy.
        outputs = tf.cast(outputs, tf.float32)
        probabilities = tf.nn.softmax(outputs, axis=-1) if apply_softmax else outputs
        classes = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        results = {"probabilities": probabilities, "classes": classes}
        if class_names is not None:
            results["class_names"] = tf.gather(tf.constant(class_names), classes)
        return results

    @tf.function(
        input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32, name="images")]
    )
    def serving_default(images):
        return predict(_checked_images(images, height=height, width=width))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serving_bytes(image_bytes):
        return predict(_decoded_images(image_bytes, height=height, width=width))

    module.serving_default = serving_default
    module.serving_bytes = serving_bytes
    return module


def _checked_images(images, *, height, width):
    """`images` after a run-time check of its shape, with the static shape set.

    Neither TF Serving nor a loaded signature called from Python checks a request against the
    signature's shape, so without this a wrong request fails deep in the network ("input depth
    must be evenly divisible by filter depth") or, for a wrong height and width, is silently
    classified. The check reads `tf.shape` at run time, which Grappler cannot fold.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    # Padding makes a rank < 4 request a mismatch rather than a slicing error; the trailing 0
    # requires rank 4 (a rank 5 request is then caught by `ensure_shape` below).
    received = tf.pad(shape, [[0, 5]])[1:5]
    check = tf.debugging.Assert(
        tf.reduce_all(tf.equal(received, [height, width, 3, 0])),
        [
            f"`images` must be float32 of shape [batch, {height}, {width}, 3]: RGB pixel "
            "values 0..255 (send encoded files to the `serving_bytes` signature to have them "
            "resized). Received shape:",
            shape,
        ],
        summarize=8,
    )
    with tf.control_dependencies([check]):
        images = tf.identity(images)
    # A static channel count also keeps Keras's TF conv off its XLA path (which it takes when
    # channels are unknown), so the graph needs no XLA at serving time.
    return tf.ensure_shape(images, [None, height, width, 3])


def _decoded_images(image_bytes, *, height, width):
    """Decode a `[batch]` string tensor of encoded images to float32 `[batch, H, W, 3]`."""
    import tensorflow as tf

    shape = tf.shape(image_bytes)
    padded = tf.pad(shape, [[0, 2]])
    is_batch = tf.logical_and(tf.equal(tf.size(image_bytes), padded[0]), tf.equal(padded[1], 0))
    check_rank = tf.debugging.Assert(
        is_batch,
        [
            "`image_bytes` must be a 1-D batch of encoded images (over REST, one "
            '{"b64": "..."} per instance). Received shape:',
            shape,
        ],
    )

    def decode(data):
        # The usual REST mistake: base64 text sent as a plain string instead of {"b64": ...}.
        # The check sits on the decode op itself so that it runs first.
        prefix = tf.strings.substr(data, 0, 4)
        check_base64 = tf.debugging.Assert(
            tf.logical_not(tf.logical_or(tf.equal(prefix, "iVBO"), tf.equal(prefix, "/9j/"))),
            [
                "`image_bytes` holds base64 text, not image bytes: over REST send each image "
                'as {"b64": "<base64>"} so that TF Serving decodes the base64.'
            ],
        )
        # channels=3 turns greyscale into RGB and drops alpha; expand_animations=False takes
        # a GIF's first frame. Both keep one [h, w, 3] uint8 image per request element.
        with tf.control_dependencies([check_base64]):
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
        # antialias=True when shrinking a large photo (as Pillow does); at the model's own
        # size, resize returns the pixels unchanged. Values stay within 0..255.
        return tf.image.resize(image, [height, width], antialias=True)

    with tf.control_dependencies([check_rank]):
        image_bytes = tf.reshape(image_bytes, [-1])
    images = tf.map_fn(
        decode, image_bytes, fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32)
    )
    return tf.ensure_shape(images, [None, height, width, 3])


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


def _next_version(base):
    versions = _versions(base)
    return versions[-1] + 1 if versions else 1


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


def _write_metadata(
    version_dir, *, model, version, height, width, num_classes, class_names, apply_softmax
):
    import tensorflow as tf

    import keras_resnets

    metadata = {
        "model_name": model.name,
        "version": version,
        "input": {
            "signature": SERVING_DEFAULT,
            "name": "images",
            "shape": [None, height, width, 3],
            "dtype": "float32",
            "pixel_range": [0, 255],
        },
        "bytes_input": {"signature": SERVING_BYTES, "name": "image_bytes", "dtype": "string"},
        "num_classes": num_classes,
        "class_names": class_names,
        "softmax_added_by_export": apply_softmax,
        "keras_resnets_version": getattr(keras_resnets, "__version__", None),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    metadata_file = version_dir / METADATA_PATH
    metadata_file.parent.mkdir(parents=True, exist_ok=True)
    metadata_file.write_text(json.dumps(metadata, indent=2) + "\n")


def _find_version_dir(path):
    if (path / "saved_model.pb").exists():
        return path
    versions = _versions(path)
    if not versions:
        raise ValueError(
            "`path` must be a SavedModel version folder (with saved_model.pb) or a base folder "
            f"holding numbered versions. Received: path={str(path)!r}"
        )
    return path / str(versions[-1])


def _describe(spec):
    shape = spec.shape.as_list() if spec.shape.rank is not None else None
    return {"dtype": spec.dtype.name, "shape": shape}
