"""One network of every registry family exports, and its SavedModel's signatures agree with
the Keras model (issue: "every network in the registry exports and verifies this way")."""

import io

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import keras_resnets
from keras_resnets.export import export

# One registry name per family; ImageNet families at a small input to keep the test quick.
FAMILIES = [
    ("resnet", {}),  # the article's nets
    ("highway", {}),
    ("densenet", {}),
    ("plain", {}),
    ("cifar_resnet", {"depth": 20}),  # He et al. 2015 CIFAR (and cifar_plain)
    ("cifar_preact_resnet", {"depth": 110}),  # He et al. 2016
    ("cifar_densenet_bc", {"depth": 100}),  # Huang et al. 2017 CIFAR
    ("cifar_highway", {"depth": 11}),  # Srivastava et al. 2015
    ("resnet18", {"input_shape": (32, 32, 3)}),  # ImageNet v1
    ("resnet50_v2", {"input_shape": (32, 32, 3)}),  # ImageNet v2
    ("densenet121", {"input_shape": (32, 32, 3)}),  # ImageNet DenseNet
]


# The SavedModel check of the bigger families (15 to 30 s each on 2 cores) runs in CI's slow
# step; the default run keeps one network of each kind of unit.
DEFAULT_FAMILIES = {"highway", "cifar_resnet", "cifar_highway", "resnet18"}


@pytest.mark.parametrize(
    "name, kwargs",
    [
        pytest.param(n, k, marks=() if n in DEFAULT_FAMILIES else pytest.mark.slow)
        for n, k in FAMILIES
    ],
    ids=[f[0] for f in FAMILIES],
)
def test_family_exports_and_serves(name, kwargs, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras_resnets.build(name, **kwargs)
    path = export(model, tmp_path / name)
    # The highway unit trains with an XLA-fused gate (layers/_fused_gate.py); serving must not.
    from test_export import xla_compiled_functions

    assert xla_compiled_functions(path) == []
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) >= {"serving_default", "serving_bytes"}

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2,) + model.input_shape[1:]).astype("uint8")
    expected = model.predict(images.astype("float32"), verbose=0)
    got = loaded.signatures["serving_default"](images=tf.constant(images, tf.float32))
    np.testing.assert_allclose(got["probabilities"].numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got["classes"].numpy(), expected.argmax(-1))

    encoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")  # lossless: same pixels back
        encoded.append(buffer.getvalue())
    from_bytes = loaded.signatures["serving_bytes"](image_bytes=tf.constant(encoded))
    np.testing.assert_allclose(from_bytes["probabilities"].numpy(), expected, rtol=1e-4, atol=1e-5)


# ONNX and LiteRT float32 for every family, in a fresh process on real CIFAR-10 images. All
# are slow (20 to 150 s each on 2 shared cores): the default run checks cifar_resnet20 so in
# test_export_formats.py.
RUNTIMES = """
import json, sys
import numpy as np
import onnxruntime as ort
from ai_edge_litert.interpreter import Interpreter

onnx_file, tflite_file, pixels_file = sys.argv[1:]
pixels = np.load(pixels_file)
session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
onnx_probabilities = session.run(["probabilities"], {"images": pixels})[0]
runner = Interpreter(model_path=tflite_file).get_signature_runner()
litert_probabilities = runner(images=pixels)["probabilities"]
assert "keras_resnets" not in sys.modules and "keras" not in sys.modules
print(json.dumps({"onnx": onnx_probabilities.tolist(), "litert": litert_probabilities.tolist()}))
"""


def _cifar_pixels(shape):
    from test_export import CIFAR10_PNG, _png_pixels, _read_members

    if not CIFAR10_PNG.exists():
        pytest.skip(f"CIFAR-10 test archive not found at {CIFAR10_PNG}")
    pixels = _png_pixels(_read_members(CIFAR10_PNG, 1, ["airplane", "automobile"]))
    if tuple(shape[:2]) != (32, 32):
        pixels = tf.image.resize(pixels, shape[:2]).numpy()
    return pixels


@pytest.mark.slow
@pytest.mark.parametrize("name, kwargs", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_family_onnx_and_litert_match_keras(name, kwargs, tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("ai_edge_litert")
    import json
    import os
    import subprocess
    import sys

    keras.utils.set_random_seed(0)
    model = keras_resnets.build(name, **kwargs)
    onnx_dir = export(model, tmp_path / "onnx", format="onnx")
    litert_dir = export(model, tmp_path / "litert", format="litert")
    pixels = _cifar_pixels(model.input_shape[1:])
    np.save(tmp_path / "pixels.npy", pixels)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            RUNTIMES,
            str(onnx_dir / "model.onnx"),
            str(litert_dir / "model.tflite"),
            str(tmp_path / "pixels.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    expected = model.predict(pixels, verbose=0)
    for runtime in ("onnx", "litert"):
        np.testing.assert_allclose(got[runtime], expected, atol=1e-4, err_msg=runtime)
