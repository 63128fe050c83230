"""SavedModel export for TF Serving: layout, versions, signatures, bad requests, REST client.

TF Serving itself is not available here, so its two halves are stood in for:
- its C++ loader, by a TF1 session that loads the SavedModel the same way (import the meta
  graph, run the saver's restore op and the init op, feed the signature's tensors by name,
  with no shape check on the feeds) in `_tf_serving_session_run`;
- its REST front end, by `_tf_serving_rest_predict`, which turns a `:predict` JSON body into
  tensors as TF Serving documents it ("instances" rows stacked into a batch, {"b64": ...} to
  bytes) and formats the response the same way.
"""

import base64
import importlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

if keras.config.backend() != "tensorflow":
    pytest.skip("SavedModel export runs on the TensorFlow backend", allow_module_level=True)

export_module = importlib.import_module("keras_resnets.export")
export = export_module.export

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CIFAR10_PNG = SHARED / "cifar10" / "cifar10-test.tar.xz"
CIFAR10_JPEG = SHARED / "cifar10-jpeg" / "cifar10-jpeg-test.tar.xz"
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
TOLERANCE = 1e-4


def _stand_in_model(
    input_shape=(32, 32, 3), *, classes=10, activation="softmax", head_dtype="float32", seed=0
):
    """A small functional classifier with the library's contract (raw 0..255 pixels in)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=input_shape, name="images")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="conv1")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(
        classes, activation=activation, dtype=head_dtype, name="predictions"
    )(x)
    model = keras.Model(inputs, outputs, name="stand_in")
    # Non-default BN statistics, so that a variable that failed to restore would show.
    bn = model.get_layer("bn1")
    bn.moving_mean.assign(np.linspace(-0.5, 0.5, 8).astype("float32"))
    bn.moving_variance.assign(np.linspace(0.5, 2.0, 8).astype("float32"))
    return model


def _library_model(name, **kwargs):
    """`keras_resnets.build(name, ...)`, or None while the registry does not exist yet."""
    try:
        keras_resnets = importlib.import_module("keras_resnets")
    except ImportError:
        return None
    build = getattr(keras_resnets, "build", None)
    return None if build is None else build(name, **kwargs)


def _read_members(archive, count_per_class, classes):
    """The first `count_per_class` files of each class folder in `classes`, in archive order."""
    found = {name: [] for name in classes}
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or parts[1] not in found:
                continue
            if len(found[parts[1]]) < count_per_class:
                found[parts[1]].append((member.name, tar.extractfile(member).read()))
            if all(len(files) == count_per_class for files in found.values()):
                break
    return [item for name in classes for item in found[name]]


@pytest.fixture(scope="module")
def cifar_pngs():
    if not CIFAR10_PNG.exists():
        pytest.skip(f"CIFAR-10 test archive not found at {CIFAR10_PNG}")
    # Airplanes come first in the archive and automobiles next: reading stays fast.
    return _read_members(CIFAR10_PNG, 3, ["airplane", "automobile"])


@pytest.fixture(scope="module")
def cifar_jpegs():
    if not CIFAR10_JPEG.exists():
        pytest.skip(f"CIFAR-10 JPEG test archive not found at {CIFAR10_JPEG}")
    return _read_members(CIFAR10_JPEG, 2, ["airplane"])


def _png_pixels(pngs):
    """Decoded with Pillow, independently of the graph's tf.io.decode_image."""
    return np.stack(
        [np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) for _, data in pngs]
    ).astype("float32")


@pytest.fixture(scope="module")
def model():
    return _library_model("cifar_resnet", depth=20) or _stand_in_model()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models") / "cifar"
    return export(model, base, class_names=CIFAR10_CLASSES)


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported))


def _predict(model, images):
    return model.predict(np.asarray(images, dtype="float32"), verbose=0)


def _hidden_entries(base):
    return sorted(p.name for p in base.iterdir() if p.name.startswith("."))


# --- layout, versions, atomicity -------------------------------------------------------------


def test_layout_and_metadata(exported, model):
    assert exported.name == "1"
    assert (exported / "saved_model.pb").is_file()
    assert (exported / "variables" / "variables.index").is_file()
    metadata = json.loads((exported / "assets.extra" / "keras_resnets.json").read_text())
    assert metadata["class_names"] == CIFAR10_CLASSES
    assert metadata["input"]["shape"] == [None, 32, 32, 3]
    assert metadata["model_name"] == model.name
    assert metadata["version"] == 1
    assert _hidden_entries(exported.parent) == []


def test_versions_increment_refuse_and_overwrite(tmp_path):
    model = _stand_in_model()
    base = tmp_path / "m"
    (base / "not_a_version").mkdir(parents=True)  # TF Serving ignores it; so does the export
    assert export(model, base) == base / "1"
    # The version is readable like any folder made here (a server may run as another user).
    probe = tmp_path / "probe"
    probe.mkdir()
    assert (base / "1").stat().st_mode & 0o777 == probe.stat().st_mode & 0o777
    assert export(model, base) == base / "2"
    assert export(model, base, version=7) == base / "7"
    assert export(model, base) == base / "8"

    with pytest.raises(ValueError, match=r"already exists.*overwrite=True.*version=7"):
        export(model, base, version=7)
    # Text is truthy: "False" once replaced the version it was meant to keep.
    with pytest.raises(ValueError, match=r"Received: overwrite='False'"):
        export(model, base, version=7, overwrite="False")
    with pytest.raises(ValueError, match=r"Received: path=None"):
        export(model, None)
    with pytest.raises(ValueError, match=r"Received: warmup='no'"):
        export(model, base, warmup="no")
    before = (base / "7" / "saved_model.pb").stat().st_mtime_ns

    written = export(model, base, version=7, overwrite=True, class_names=CIFAR10_CLASSES)
    assert written == base / "7"
    assert (base / "7" / "saved_model.pb").stat().st_mtime_ns != before
    metadata = json.loads((base / "7" / "assets.extra" / "keras_resnets.json").read_text())
    assert metadata["class_names"] == CIFAR10_CLASSES
    assert (
        "class_names"
        in tf.saved_model.load(str(written)).signatures["serving_default"].structured_outputs
    )
    assert sorted(p.name for p in base.iterdir()) == ["1", "2", "7", "8", "not_a_version"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_failure_midway_leaves_no_version_and_no_temp(tmp_path, monkeypatch, overwrite):
    model = _stand_in_model()
    base = tmp_path / "m"
    export(model, base)
    original = (base / "1" / "saved_model.pb").read_bytes()

    def failing_save(obj, export_dir, *args, **kwargs):
        Path(export_dir, "saved_model.pb").write_bytes(b"half written")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(tf.saved_model, "save", failing_save)
    version = 1 if overwrite else None
    with pytest.raises(OSError, match="simulated"):
        export(model, base, version=version, overwrite=overwrite)
    assert sorted(p.name for p in base.iterdir()) == ["1"]
    assert (base / "1" / "saved_model.pb").read_bytes() == original


@pytest.mark.parametrize("version", [0, -1, "3", 1.5, True, 2**63])
def test_bad_version(tmp_path, version):
    with pytest.raises(ValueError, match=re.escape(f"Received: version={version!r}")):
        export(_stand_in_model(), tmp_path / "m", version=version)
    assert not (tmp_path / "m").exists()


def test_bad_models_and_arguments(tmp_path):
    base = tmp_path / "m"
    with pytest.raises(ValueError, match=r"\[batch, height, width, 3\].*\(None, 32, 32, 1\)"):
        export(_stand_in_model((32, 32, 1)), base)
    flat = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match=r"4-D.*\(None, 10\)"):
        export(flat, base)
    with pytest.raises(ValueError, match="must be a keras.Model"):
        export("runs/best.keras", base)
    with pytest.raises(ValueError, match=r"name all 10 classes.*Received 2"):
        export(_stand_in_model(), base, class_names=["cat", "dog"])
    with pytest.raises(ValueError, match="Received: image_size=None"):
        export(_stand_in_model((None, None, 3)), base)
    with pytest.raises(ValueError, match=r"differs from the model's input size"):
        export(_stand_in_model(), base, image_size=64)
    with pytest.raises(ValueError, match="sigmoid"):
        export(_stand_in_model(activation="sigmoid"), base)
    assert not base.exists() or list(base.iterdir()) == []
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="must be a folder"):
        export(_stand_in_model(), tmp_path / "file")


def test_model_without_fixed_size_takes_image_size(tmp_path):
    model = _stand_in_model((None, None, 3))
    path = export(model, tmp_path / "m", image_size=(40, 48))
    signatures = export_module.verify(path)["signatures"]
    assert signatures["serving_default"]["inputs"]["images"]["shape"] == [None, 40, 48, 3]
    images = np.random.default_rng(0).uniform(0, 255, (2, 40, 48, 3)).astype("float32")
    got = tf.saved_model.load(str(path)).signatures["serving_default"](images=images)
    np.testing.assert_allclose(got["probabilities"], _predict(model, images), atol=TOLERANCE)


# --- what TF Serving and saved_model_cli see -------------------------------------------------


def _saved_model_cli(*args):
    command = (
        ["saved_model_cli"]
        if _which("saved_model_cli")
        else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    )
    result = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _which(program):
    import shutil

    return shutil.which(program)


def _parse_signature_defs(text):
    """{signature: {"inputs"|"outputs": {name: (dtype, shape)}}} from `show --all` output."""
    signatures = {}
    blocks = re.split(r"^signature_def\['([^']+)'\]:$", text, flags=re.M)
    for name, body in zip(blocks[1::2], blocks[2::2]):
        parts = re.split(r"contains the following output\(s\):", body)
        signatures[name] = {
            side: {
                key: (dtype, shape)
                for key, dtype, shape in re.findall(
                    r"\['([^']+)'\] tensor_info:\s+dtype: (\S+)\s+shape: (.+)", part
                )
            }
            for side, part in zip(("inputs", "outputs"), parts)
        }
    return signatures


def test_saved_model_cli_lists_the_signatures(exported):
    text = _saved_model_cli("show", "--all", "--dir", str(exported))
    signatures = _parse_signature_defs(text)
    outputs = {
        "classes": ("DT_INT64", "(-1)"),
        "class_names": ("DT_STRING", "(-1)"),
        "probabilities": ("DT_FLOAT", "(-1, 10)"),
    }
    assert signatures["serving_default"] == {
        "inputs": {"images": ("DT_FLOAT", "(-1, 32, 32, 3)")},
        "outputs": outputs,
    }
    assert signatures["serving_uint8"] == {
        "inputs": {"images": ("DT_UINT8", "(-1, 32, 32, 3)")},
        "outputs": outputs,
    }
    assert signatures["serving_bytes"] == {
        "inputs": {"image_bytes": ("DT_STRING", "(-1)")},
        "outputs": outputs,
    }
    assert text.count("Method name is: tensorflow/serving/predict") == 3


def test_saved_model_cli_run_on_a_saved_npy(exported, model, cifar_pngs, tmp_path):
    # `saved_model_cli run` feeds the .npy to the signature as a C++ client would and writes
    # each output as .npy: independent of this process's model and of tf.saved_model.load.
    pixels = _png_pixels(cifar_pngs)
    np.save(tmp_path / "pixels.npy", pixels)
    _saved_model_cli(
        "run",
        "--dir",
        str(exported),
        "--tag_set",
        "serve",
        "--signature_def",
        "serving_default",
        "--inputs",
        f"images={tmp_path / 'pixels.npy'}",
        "--outdir",
        str(tmp_path / "out"),
    )
    expected = _predict(model, pixels)
    np.testing.assert_allclose(
        np.load(tmp_path / "out" / "probabilities.npy"), expected, atol=TOLERANCE
    )
    assert np.load(tmp_path / "out" / "classes.npy").tolist() == expected.argmax(-1).tolist()


def xla_compiled_functions(version_dir):
    """The functions of an export that TF Serving could run only with XLA enabled."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    library = saved_model.meta_graphs[0].graph_def.library
    return [f.signature.name for f in library.function if f.attr["_XlaMustCompile"].b]


def test_graph_needs_no_xla(exported, tmp_path):
    # A TF Serving build need not have XLA, and Keras's TF conv jit-compiles when the channel
    # count is unknown. The stand-in's first layer (Rescaling) keeps whatever the signature
    # gives, so it shows the XLA path if the export lost the static channel count.
    for version_dir in (exported, export(_stand_in_model(), tmp_path / "m")):
        assert xla_compiled_functions(version_dir) == []


def test_verify_describes_signatures(exported):
    for path in (exported, exported.parent):
        info = export_module.verify(path)
        assert info["path"] == str(exported) and info["version"] == 1
        assert sorted(info["signatures"]) == ["serving_bytes", "serving_default", "serving_uint8"]
        assert info["format"] == "saved_model"
        default = info["signatures"]["serving_default"]
        assert default["inputs"] == {"images": {"dtype": "float32", "shape": [None, 32, 32, 3]}}
        assert default["outputs"]["probabilities"] == {"dtype": "float32", "shape": [None, 10]}
        assert default["outputs"]["classes"] == {"dtype": "int64", "shape": [None]}
        assert info["signatures"]["serving_bytes"]["inputs"] == {
            "image_bytes": {"dtype": "string", "shape": [None]}
        }
        assert info["metadata"]["class_names"] == CIFAR10_CLASSES
    with pytest.raises(ValueError, match="Received: path="):
        export_module.verify(exported / "variables")


def test_one_table_drives_the_signatures_and_the_metadata(exported):
    table = export_module.signatures
    info = export_module.verify(exported)
    assert sorted(info["signatures"]) == sorted(table.SIGNATURES)
    outputs = {**table.OUTPUTS, table.CLASS_NAMES_OUTPUT[0]: table.CLASS_NAMES_OUTPUT[1:]}
    for name, signature in table.SIGNATURES.items():
        saved = info["signatures"][name]
        entry = signature.input_entry(32, 32)
        assert saved["inputs"] == {
            signature.input: {"dtype": entry["dtype"], "shape": entry["shape"]}
        }
        assert {k: v["dtype"] for k, v in saved["outputs"].items()} == {
            k: dtype for k, (dtype, _) in outputs.items()
        }
    assert info["metadata"]["inputs"] == table.inputs(32, 32)
    assert info["metadata"]["input"] == {**table.inputs(32, 32)[0], "pixel_range": [0, 255]}
    assert info["metadata"]["outputs"] == table.outputs(10)


def test_the_format_functions_and_the_old_names(tmp_path):
    import keras_resnets

    assert keras_resnets.export_saved_model is export_module.saved_model
    assert export_module.export_saved_model is export_module.saved_model
    path = export_module.saved_model(_stand_in_model(), tmp_path / "m", warmup=False)
    assert export_module.verify(path)["format"] == "saved_model"
    with pytest.raises(ValueError, match="is for format='litert'"):
        export_module.onnx(_stand_in_model(), tmp_path / "o", quantize="int8")
    with pytest.raises(ValueError, match="Received: quantize='int4'"):
        export_module.litert(_stand_in_model(), tmp_path / "l", quantize="int4")


FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    version_dir, pixels_file, *image_files = sys.argv[1:]
    loaded = tf.saved_model.load(version_dir)
    default = loaded.signatures["serving_default"](images=tf.constant(np.load(pixels_file)))
    encoded = [open(name, "rb").read() for name in image_files]
    by_bytes = loaded.signatures["serving_bytes"](image_bytes=tf.constant(encoded))
    assert "keras_resnets" not in sys.modules, "the SavedModel must not need keras_resnets"

    def plain(outputs):
        return {key: [v.decode() if isinstance(v, bytes) else v for v in value.numpy().tolist()]
                for key, value in outputs.items()}

    print(json.dumps({"default": plain(default), "bytes": plain(by_bytes)}))
    """
)


def test_fresh_process_matches_keras(exported, model, cifar_pngs, tmp_path):
    pixels = _png_pixels(cifar_pngs)
    np.save(tmp_path / "pixels.npy", pixels)
    files = []
    for i, (_, data) in enumerate(cifar_pngs):
        files.append(tmp_path / f"{i}.png")
        files[-1].write_bytes(data)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_PROCESS,
            str(exported),
            str(tmp_path / "pixels.npy"),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = json.loads(result.stdout.strip().splitlines()[-1])

    expected = _predict(model, pixels)
    for signature in ("default", "bytes"):
        got = outputs[signature]
        np.testing.assert_allclose(got["probabilities"], expected, atol=TOLERANCE)
        assert got["classes"] == expected.argmax(-1).tolist()
        assert got["class_names"] == [CIFAR10_CLASSES[i] for i in expected.argmax(-1)]


def test_bytes_signature_decodes_jpeg_resizes_and_converts(loaded, model, cifar_pngs, cifar_jpegs):
    serve = loaded.signatures["serving_bytes"]
    rgb = Image.open(io.BytesIO(cifar_pngs[0][1])).convert("RGB")
    variants = {}
    for mode in ("L", "RGBA", "P"):  # greyscale, alpha, palette: all become RGB
        buffer = io.BytesIO()
        rgb.convert(mode).save(buffer, format="PNG")
        variants[mode] = buffer.getvalue()
    big = io.BytesIO()
    rgb.resize((96, 80), Image.BICUBIC).save(big, format="PNG")
    variants["big"] = big.getvalue()
    for i, (_, data) in enumerate(cifar_jpegs):
        variants[f"jpeg{i}"] = data

    got = serve(image_bytes=tf.constant(list(variants.values())))
    expected_pixels = [
        tf.image.resize(
            tf.io.decode_image(data, channels=3, expand_animations=False), [32, 32], antialias=True
        )
        for data in variants.values()
    ]
    np.testing.assert_allclose(
        got["probabilities"], _predict(model, np.stack(expected_pixels)), atol=TOLERANCE
    )
    # Greyscale decodes to three equal channels; the resized image keeps 0..255 values.
    grey = np.asarray(expected_pixels[0])
    assert np.array_equal(grey[..., 0], grey[..., 2])
    assert 0 <= float(np.min(expected_pixels[3])) and float(np.max(expected_pixels[3])) <= 255


def test_logits_model_gets_softmax(tmp_path):
    model = _stand_in_model(activation=None)
    path = export(model, tmp_path / "m")
    images = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    got = tf.saved_model.load(str(path)).signatures["serving_default"](images=images)
    expected = tf.nn.softmax(_predict(model, images)).numpy()
    np.testing.assert_allclose(got["probabilities"], expected, atol=TOLERANCE)
    assert json.loads((path / "assets.extra" / "keras_resnets.json").read_text())[
        "softmax_added_by_export"
    ]


def _has_bfloat16(path):
    graph = tf.saved_model.load(str(path)).signatures["serving_default"].graph
    return "DT_BFLOAT16" in str(graph.as_graph_def())


@pytest.mark.slow  # 23 s; the default run stays near 10 minutes on 2 cores; CI's slow step runs it
def test_mixed_precision_model_is_served_in_float32_by_default(tmp_path):
    import keras_resnets

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        trained = keras_resnets.build("cifar_resnet", depth=20)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    # Weights that make the outputs far from uniform, so that a difference would show.
    rng = np.random.default_rng(5)
    trained.set_weights(
        [w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in trained.get_weights()]
    )
    reference = keras_resnets.build("cifar_resnet", depth=20)  # float32, built independently
    reference.set_weights(trained.get_weights())
    images = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")

    path = export(trained, tmp_path / "m")
    assert not _has_bfloat16(path)
    got = tf.saved_model.load(str(path)).signatures["serving_default"](images=images)
    np.testing.assert_allclose(got["probabilities"], _predict(reference, images), atol=1e-5)

    kept = export(trained, tmp_path / "m", dtype="keep")
    assert _has_bfloat16(kept)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_model(tmp_path, policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        # No float32 head: the model's own output is then float16/bfloat16.
        model = _stand_in_model(head_dtype=None)
        assert model.outputs[0].dtype != "float32"
        images = np.random.default_rng(2).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
        expected = _predict(model, images).astype("float32")
        path = export(model, tmp_path / "m", dtype="keep")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    got = tf.saved_model.load(str(path)).signatures["serving_default"](images=images)
    assert got["probabilities"].dtype == tf.float32
    # The same low-precision graph runs on both sides; the tolerance covers float16 output.
    np.testing.assert_allclose(got["probabilities"], expected, atol=1e-2)


@pytest.mark.slow
def test_library_resnet18_at_64px(tmp_path):
    model = _library_model("resnet18", input_shape=(64, 64, 3))
    if model is None:
        pytest.skip("keras_resnets.build is not available yet")
    path = export(model, tmp_path / "resnet18")
    images = np.random.default_rng(3).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    got = tf.saved_model.load(str(path)).signatures["serving_default"](images=images)
    np.testing.assert_allclose(got["probabilities"], _predict(model, images), atol=TOLERANCE)


# --- bad requests ----------------------------------------------------------------------------


def _error_text(error):
    return getattr(error, "message", str(error))


BAD_IMAGES = {
    "one channel": np.zeros((2, 32, 32, 1), "float32"),
    "four channels": np.zeros((2, 32, 32, 4), "float32"),
    "no batch axis": np.zeros((32, 32, 3), "float32"),
    "wrong size": np.zeros((2, 28, 28, 3), "float32"),
    "rank 5": np.zeros((1, 2, 32, 32, 3), "float32"),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_pixel_request_fails_clearly_and_server_survives(loaded, model, case):
    serve = loaded.signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        serve(images=tf.constant(BAD_IMAGES[case]))
    message = _error_text(error.value)
    assert "must be float32 of shape [batch, 32, 32, 3]" in message, message
    if case == "wrong size":  # the example docs/serving.md shows, word for word
        documented = (REPO / "docs" / "serving.md").read_text().split("28x28 image sent to")[1]
        shown = documented.split("```")[1].strip().split("Received shape:]")[0]
        assert shown.removeprefix("assertion failed: [") in message, message
    good = np.full((1, 32, 32, 3), 128.0, "float32")
    np.testing.assert_allclose(
        serve(images=good)["probabilities"], _predict(model, good), atol=TOLERANCE
    )


BAD_BYTES = {
    "garbage": ([b"not an image"], "Unknown image file format"),
    "truncated png": ([b"\x89PNG\r\n\x1a\n\x00\x00"], "PNG"),
    "empty": ([b""], "empty"),
    "base64 text": ([b"iVBORw0KGgoAAAANSUhEUg"], 'send each image as {"b64"'),
    "scalar": (b"\x89PNG", "must be a 1-D batch of encoded images"),
}


@pytest.mark.parametrize("case", list(BAD_BYTES))
def test_bad_bytes_request_fails_clearly_and_server_survives(loaded, cifar_pngs, case):
    serve = loaded.signatures["serving_bytes"]
    value, expected_message = BAD_BYTES[case]
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        serve(image_bytes=tf.constant(value))
    assert expected_message in _error_text(error.value).replace('\\"', '"')
    assert serve(image_bytes=tf.constant([cifar_pngs[0][1]]))["probabilities"].shape == (1, 10)


def _tf_serving_session_run(version_dir, signature_name, feeds):
    """Run a signature as TF Serving's C++ loader does: a TF1 session, the saver's restore op,
    the init op, feeds by tensor name. `_make_callable_from_options` skips Python's feed-shape
    check, as TF Serving (which feeds tensors to Session::Run unchecked) does."""
    from tensorflow.core.protobuf import config_pb2

    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], str(version_dir))
        signature = meta_graph.signature_def[signature_name]
        names = sorted(signature.outputs)
        run = session._make_callable_from_options(
            config_pb2.CallableOptions(
                feed=[signature.inputs[key].name for key in feeds],
                fetch=[signature.outputs[key].name for key in names],
            )
        )
        return dict(zip(names, run(*feeds.values())))


def test_tf_serving_loader_path(exported, model, cifar_pngs):
    pixels = _png_pixels(cifar_pngs)
    expected = _predict(model, pixels)
    got = _tf_serving_session_run(exported, "serving_default", {"images": pixels})
    np.testing.assert_allclose(got["probabilities"], expected, atol=TOLERANCE)
    assert [name.decode() for name in got["class_names"]] == [
        CIFAR10_CLASSES[i] for i in expected.argmax(-1)
    ]
    got = _tf_serving_session_run(
        exported, "serving_bytes", {"image_bytes": np.array([d for _, d in cifar_pngs], object)}
    )
    np.testing.assert_allclose(got["probabilities"], expected, atol=TOLERANCE)

    # TF Serving does not check a request against the signature's shape: the graph does.
    for case in ("one channel", "wrong size", "no batch axis"):
        with pytest.raises(
            tf.errors.InvalidArgumentError, match=r"must be float32 of shape \[batch, 32, 32, 3\]"
        ):
            _tf_serving_session_run(exported, "serving_default", {"images": BAD_IMAGES[case]})


# --- uint8 pixels, NaN pixels, wrong dtypes ------------------------------------------------


def test_uint8_signature_matches_float32(loaded, model, cifar_pngs):
    pixels = _png_pixels(cifar_pngs)
    got = loaded.signatures["serving_uint8"](images=tf.constant(pixels.astype("uint8")))
    np.testing.assert_allclose(got["probabilities"], _predict(model, pixels), atol=TOLERANCE)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"must be uint8 of shape \[batch, 32, 32, 3\]"
    ):
        loaded.signatures["serving_uint8"](images=tf.zeros((1, 28, 28, 3), tf.uint8))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_pixels_are_refused(exported, loaded, model, value):
    images = np.full((2, 32, 32, 3), 100.0, "float32")
    images[1, 3, 4, 0] = value
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinite"):
        loaded.signatures["serving_default"](images=images)
    # The same refusal through TF Serving's loader path, and the server goes on serving.
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinite"):
        _tf_serving_session_run(exported, "serving_default", {"images": images})
    got = _tf_serving_session_run(exported, "serving_default", {"images": images[:1]})
    np.testing.assert_allclose(got["probabilities"], _predict(model, images[:1]), atol=TOLERANCE)


def test_wrong_dtype_is_refused_by_the_loader(exported):
    # TF Serving feeds a gRPC tensor to Session::Run as it is: the session checks the dtype.
    with pytest.raises(tf.errors.InvalidArgumentError, match="(?i)float.*uint8|uint8.*float"):
        _tf_serving_session_run(
            exported, "serving_default", {"images": np.zeros((1, 32, 32, 3), "uint8")}
        )


# --- TF Serving's warm-up file ------------------------------------------------------------

WARMUP_REPLAY = textwrap.dedent(
    """
    # What TF Serving does with assets.extra/tf_serving_warmup_requests at load
    # (servables/tensorflow/saved_model_warmup_util.cc): read each record as a PredictionLog,
    # run its PredictRequest against the signature it names, fail the load on any error.
    import json, sys
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    version_dir = sys.argv[1]
    replayed = []
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], version_dir)
        path = version_dir + "/assets.extra/tf_serving_warmup_requests"
        for record in tf.compat.v1.io.tf_record_iterator(path):
            log = prediction_log_pb2.PredictionLog.FromString(record)
            assert log.WhichOneof("log_type") == "predict_log", log
            request = log.predict_log.request
            signature = meta_graph.signature_def[request.model_spec.signature_name]
            assert sorted(request.inputs) == sorted(signature.inputs), request.inputs.keys()
            feeds = {}
            for key, tensor in request.inputs.items():
                spec = signature.inputs[key]
                assert tensor.dtype == spec.dtype, (key, tensor.dtype, spec.dtype)
                shape = [d.size for d in tensor.tensor_shape.dim]
                declared = [d.size for d in spec.tensor_shape.dim]
                assert len(shape) == len(declared) and all(
                    d in (-1, s) for s, d in zip(shape, declared)), (key, shape, declared)
                feeds[spec.name] = tf.make_ndarray(tensor)
            names = sorted(signature.outputs)
            outputs = session.run([signature.outputs[n].name for n in names], feeds)
            replayed.append({"signature": request.model_spec.signature_name,
                             "shapes": {n: list(o.shape) for n, o in zip(names, outputs)}})
    assert "keras_resnets" not in sys.modules
    print(json.dumps(replayed))
    """
)


def test_warmup_requests_replay_as_tf_serving_does(exported):
    pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")
    result = subprocess.run(
        [sys.executable, "-c", WARMUP_REPLAY, str(exported)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    replayed = json.loads(result.stdout.strip().splitlines()[-1])
    assert [r["signature"] for r in replayed] == list(export_module.signatures.SIGNATURES)
    for r in replayed:
        assert r["shapes"] == {"class_names": [1], "classes": [1], "probabilities": [1, 10]}
    metadata = export_module.verify(exported)["metadata"]
    assert metadata["warmup_requests"] == "assets.extra/tf_serving_warmup_requests"


def test_export_without_serving_api_warns_and_skips_warmup(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis.predict_pb2", None)
    with pytest.warns(UserWarning, match=r"pip install 'keras-resnets\[export\]'"):
        path = export(_stand_in_model(), tmp_path / "m")
    assert not (path / "assets.extra" / "tf_serving_warmup_requests").exists()
    assert export_module.verify(path)["metadata"]["warmup_requests"] is None


# --- the REST client (examples/serving_client.py) --------------------------------------------


@pytest.fixture(scope="module")
def client():
    path = REPO / "examples" / "serving_client.py"
    spec = importlib.util.spec_from_file_location("serving_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _from_json(value, dtype):
    """A JSON request value as TF Serving reads it: {"b64": ...} is bytes, lists are arrays."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list) and dtype == tf.string:
        return [_from_json(v, dtype) for v in value]
    return value


def _tf_serving_rest_predict(loaded, body):
    """TF Serving's REST `:predict`, as documented: row ("instances") and columnar ("inputs")
    requests; row responses as {"predictions": [{output: value}, ...]}; strings as UTF-8 text
    unless the output name ends in "_bytes"."""
    body = json.loads(json.dumps(body))  # exactly what goes over the wire
    signature = loaded.signatures[body.get("signature_name", "serving_default")]
    specs = signature.structured_input_signature[1]
    if "instances" in body:
        rows = body["instances"]
        rows = [row if isinstance(row, dict) else {next(iter(specs)): row} for row in rows]
        columns = {
            key: [_from_json(row[key], spec.dtype) for row in rows] for key, spec in specs.items()
        }
    else:
        inputs = body["inputs"]
        inputs = (
            inputs
            if isinstance(inputs, dict) and set(inputs) <= set(specs)
            else {next(iter(specs)): inputs}
        )
        columns = {key: _from_json(value, specs[key].dtype) for key, value in inputs.items()}
    tensors = {key: tf.constant(value, dtype=specs[key].dtype) for key, value in columns.items()}
    outputs = {key: value.numpy() for key, value in signature(**tensors).items()}

    def jsonable(key, value):
        if isinstance(value, bytes):
            return (
                {"b64": base64.b64encode(value).decode()}
                if key.endswith("_bytes")
                else (value.decode("utf-8"))
            )
        return value.tolist() if hasattr(value, "tolist") else value

    if "instances" in body:
        count = len(next(iter(outputs.values())))
        return {
            "predictions": [
                {key: jsonable(key, value[i]) for key, value in outputs.items()}
                for i in range(count)
            ]
        }
    return {"outputs": {key: [jsonable(key, v) for v in value] for key, value in outputs.items()}}


def _png_files(pngs, folder):
    files = []
    for i, (_, data) in enumerate(pngs):
        files.append(folder / f"image{i}.png")
        files[-1].write_bytes(data)
    return files


@pytest.mark.parametrize("use_bytes", [False, True])
def test_client_request_through_tf_serving_rest(
    client, loaded, model, cifar_pngs, tmp_path, use_bytes
):
    files = _png_files(cifar_pngs, tmp_path)
    body = client.build_request(files, use_bytes=use_bytes)
    name = "serving_bytes" if use_bytes else "serving_default"
    assert body["signature_name"] == name
    instance = body["instances"][0]
    if use_bytes:
        assert base64.b64decode(instance["image_bytes"]["b64"]) == cifar_pngs[0][1]
    else:
        assert np.asarray(instance["images"]).shape == (32, 32, 3)

    response = _tf_serving_rest_predict(loaded, body)
    expected = _predict(model, _png_pixels(cifar_pngs))
    predictions = response["predictions"]
    np.testing.assert_allclose([p["probabilities"] for p in predictions], expected, atol=TOLERANCE)
    assert [p["class_names"] for p in predictions] == [
        CIFAR10_CLASSES[i] for i in expected.argmax(-1)
    ]
    lines = client.format_predictions(response, [str(f) for f in files]).splitlines()
    assert len(lines) == len(files) and lines[0].startswith(f"{files[0]}: ")


def test_client_pixel_arrays_and_resizing(client, loaded, model, cifar_pngs, tmp_path):
    pixels = _png_pixels(cifar_pngs)
    response = _tf_serving_rest_predict(loaded, client.build_request(list(pixels), use_bytes=False))
    np.testing.assert_allclose(
        [p["probabilities"] for p in response["predictions"]],
        _predict(model, pixels),
        atol=TOLERANCE,
    )
    response = _tf_serving_rest_predict(loaded, client.build_request(pixels, use_bytes=True))
    np.testing.assert_allclose(
        [p["probabilities"] for p in response["predictions"]],
        _predict(model, pixels),
        atol=TOLERANCE,
    )

    big = tmp_path / "big.png"
    Image.fromarray(pixels[0].astype("uint8")).resize((64, 64)).save(big)
    with pytest.raises(ValueError, match=r"one size.*Received sizes: \[\(32, 32\), \(64, 64\)\]"):
        client.build_request([big, _png_files(cifar_pngs[:1], tmp_path)[0]], use_bytes=False)
    body = client.build_request([big], use_bytes=False, image_size=32)
    assert np.asarray(body["instances"][0]["images"]).shape == (32, 32, 3)
    assert _tf_serving_rest_predict(loaded, body)["predictions"][0]["classes"] in range(10)


def test_columnar_inputs_form(loaded, model, cifar_pngs):
    pixels = _png_pixels(cifar_pngs)
    body = {"signature_name": "serving_default", "inputs": {"images": pixels.tolist()}}
    response = _tf_serving_rest_predict(loaded, body)
    np.testing.assert_allclose(
        response["outputs"]["probabilities"], _predict(model, pixels), atol=TOLERANCE
    )


class _FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_client_post_and_main_without_network(
    client, loaded, cifar_pngs, tmp_path, monkeypatch, capsys
):
    files = _png_files(cifar_pngs[:2], tmp_path)
    sent = []

    def fake_urlopen(request, timeout):
        sent.append(request)
        body = json.loads(request.data)
        return _FakeResponse(json.dumps(_tf_serving_rest_predict(loaded, body)).encode())

    monkeypatch.setattr(client.urllib.request, "urlopen", fake_urlopen)
    url = "http://localhost:8501/v1/models/cifar_resnet20:predict"
    assert client.main(["--url", url, "--images", *map(str, files), "--bytes"]) == 0
    assert sent[0].full_url == url and sent[0].get_method() == "POST"
    assert sent[0].get_header("Content-type") == "application/json"
    assert json.loads(sent[0].data)["signature_name"] == "serving_bytes"
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed] == [str(f) for f in files]
    assert client.main(["--url", url, "--images", str(files[0]), "--print-request"]) == 0
    assert json.loads(capsys.readouterr().out)["signature_name"] == "serving_default"
    assert len(sent) == 1

    def failing_urlopen(request, timeout):
        error_body = io.BytesIO(b'{"error": "assertion failed: [`images` must be float32"}')
        raise client.urllib.error.HTTPError(url, 400, "Bad Request", {}, error_body)

    monkeypatch.setattr(client.urllib.request, "urlopen", failing_urlopen)
    with pytest.raises(RuntimeError, match=r"HTTP 400: assertion failed: \[`images` must be"):
        client.post(url, {"instances": []})
    assert client.main(["--url", url, "--images", str(files[0])]) == 1
    assert "HTTP 400" in capsys.readouterr().err


def test_client_reads_the_signatures_from_the_export_metadata(
    client, exported, cifar_pngs, tmp_path
):
    metadata = client.read_metadata(exported.parent)  # the model folder: its highest version
    assert metadata == client.read_metadata(exported / "assets.extra" / "keras_resnets.json")
    # The client's defaults are the export's table, as its metadata lists it.
    assert list(client.DEFAULT_INPUTS) == [
        {key: entry[key] for key in ("signature", "name", "dtype")} for entry in metadata["inputs"]
    ]
    big = tmp_path / "big.png"
    Image.fromarray(_png_pixels(cifar_pngs[:1])[0].astype("uint8")).resize((64, 64)).save(big)
    body = client.build_request([big], use_bytes=False, metadata=metadata)
    assert body["signature_name"] == "serving_default"
    assert np.asarray(body["instances"][0]["images"]).shape == (32, 32, 3)  # the model's size
    renamed = {
        **metadata,
        "inputs": [{**e, "signature": f"my_{e['signature']}"} for e in metadata["inputs"]],
    }
    assert client.build_request([big], use_bytes=True, metadata=renamed)["signature_name"] == (
        "my_serving_bytes"
    )
    no_bytes = {**metadata, "inputs": metadata["inputs"][:1]}
    with pytest.raises(ValueError, match="no signature taking string inputs"):
        client.build_request([big], use_bytes=True, metadata=no_bytes)


def test_client_missing_image_and_no_pillow_warning(cifar_pngs, tmp_path):
    # A fresh process, with every DeprecationWarning an error (Pillow's `getdata` is one).
    files = _png_files(cifar_pngs[:1], tmp_path)

    def client_main(*images):
        return subprocess.run(
            [
                sys.executable,
                "-W",
                "error::DeprecationWarning",
                str(REPO / "examples" / "serving_client.py"),
                "--url",
                "http://localhost:1/x",
                "--print-request",
                "--images",
                *map(str, images),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": ""},
        )

    done = client_main(files[0])
    assert done.returncode == 0 and done.stderr == "", done.stderr
    pixels = json.loads(done.stdout)["instances"][0]["images"]
    np.testing.assert_array_equal(np.asarray(pixels), _png_pixels(cifar_pngs[:1])[0])

    done = client_main(files[0], "--metadata", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(
        f"error: cannot read the export's metadata {tmp_path / 'nowhere'}"
    )

    done = client_main(files[0], tmp_path / "missing.png")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: cannot read image {tmp_path / 'missing.png'}: No such file or directory"
    ]
