"""ONNX and LiteRT exports, checked as their runtimes see them.

The runtimes run in a fresh process that imports neither keras_resnets nor Keras (only NumPy,
`onnxruntime` and `ai_edge_litert`), on real CIFAR-10 test images; this process compares
their outputs with `model.predict`.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

if keras.config.backend() != "tensorflow":
    pytest.skip("export runs on the TensorFlow backend", allow_module_level=True)
pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("tf2onnx")

from test_export import (  # noqa: E402
    CIFAR10_CLASSES,
    CIFAR10_PNG,
    _png_pixels,
    _read_members,
    _stand_in_model,
)

import keras_resnets  # noqa: E402
from keras_resnets import cli  # noqa: E402
from keras_resnets.export import export, verify  # noqa: E402

TOLERANCE = 1e-4
# Dynamic-range int8 on an untrained net at random BatchNorm statistics (the worst case:
# nothing is calibrated). The trained model's measured loss is in docs/serving.md.
INT8_TOLERANCE = 0.05

RUNTIMES = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    onnx_file, tflite_file, int8_file, pixels_file = sys.argv[1:]
    pixels = np.load(pixels_file)
    good = pixels[:1]
    bad = {
        "rank 3": pixels[0],
        "one channel": pixels[:1, :, :, :1],
        "wrong size": pixels[:1, :28, :28],
        "uint8": pixels[:1].astype("uint8"),
        "channels first": np.ascontiguousarray(pixels[:1].transpose(0, 3, 1, 2)),
    }
    result = {}

    session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    probabilities, classes = session.run(["probabilities", "classes"], {"images": pixels})
    result["onnx"] = {"probabilities": probabilities.tolist(), "classes": classes.tolist(),
                      "inputs": [(i.name, i.type, i.shape) for i in session.get_inputs()],
                      "outputs": names,
                      "metadata": session.get_modelmeta().custom_metadata_map, "bad": {}}
    for case, value in bad.items():
        try:
            session.run(None, {"images": value})
            result["onnx"]["bad"][case] = None
        except Exception as error:
            result["onnx"]["bad"][case] = str(error)
        # the session goes on serving
        assert np.allclose(session.run(["probabilities"], {"images": good})[0],
                           probabilities[:1], atol=1e-6)

    class LiteRT:
        # docs/serving.md's LiteRT server loop. The interpreter resizes its input to whatever
        # it is given (a 28x28 or 1-channel image would be classified) and its own shape
        # errors are terse C++ checks, so the request is checked first against the model's
        # declared input (shape_signature: -1 for the batch axis), in words.
        def __init__(self, path):
            self.interpreter = Interpreter(model_path=path)
            self.input = self.interpreter.get_input_details()[0]
            runner = self.interpreter.get_signature_runner()
            self.output_names = runner.get_output_details()

        def check(self, images):
            want, dtype = list(self.input["shape_signature"]), np.dtype(self.input["dtype"])
            if (images.dtype != dtype or images.ndim != len(want)
                    or any(w not in (-1, s) for w, s in zip(want, images.shape))):
                axes = ", ".join("batch" if w < 0 else str(w) for w in want)
                raise ValueError(f"`images` must be {dtype.name} of shape [{axes}]. "
                                 f"Received: {images.dtype.name} {list(images.shape)}")

        def __call__(self, images):
            self.check(images)
            self.interpreter.resize_tensor_input(self.input["index"], images.shape,
                                                 strict=True)
            self.interpreter.allocate_tensors()
            self.interpreter.set_tensor(self.input["index"], images)
            self.interpreter.invoke()
            return {name: self.interpreter.get_tensor(d["index"])
                    for name, d in self.output_names.items()}

    for key, path in (("litert", tflite_file), ("litert_int8", int8_file)):
        run = LiteRT(path)
        out = run(pixels)
        result[key] = {"probabilities": out["probabilities"].tolist(),
                       "classes": out["classes"].tolist(), "bad": {}}
        for case, value in bad.items():
            try:
                run(value)
                result[key]["bad"][case] = None
            except Exception as error:
                result[key]["bad"][case] = str(error)
            assert np.allclose(run(good)["probabilities"], out["probabilities"][:1], atol=1e-6)
    assert "keras_resnets" not in sys.modules and "keras" not in sys.modules
    print(json.dumps(result))
    """
)


@pytest.fixture(scope="module")
def model():
    # The shipped, trained weights: int8's error is meaningful only on a trained network.
    return keras_resnets.build("cifar_resnet", depth=20, weights="cifar10")


@pytest.fixture(scope="module")
def pixels():
    if not CIFAR10_PNG.exists():
        pytest.skip(f"CIFAR-10 test archive not found at {CIFAR10_PNG}")
    return _png_pixels(_read_members(CIFAR10_PNG, 4, ["airplane", "automobile"]))


@pytest.fixture(scope="module")
def exports(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    return {
        "onnx": export(model, base / "r20_onnx", format="onnx", class_names=CIFAR10_CLASSES),
        "litert": export(model, base / "r20_litert", format="litert"),
        "litert_int8": export(model, base / "r20_litert_int8", format="litert", quantize="int8"),
    }


@pytest.fixture(scope="module")
def runtimes(exports, pixels, tmp_path_factory):
    folder = tmp_path_factory.mktemp("runtimes")
    np.save(folder / "pixels.npy", pixels)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            RUNTIMES,
            str(exports["onnx"] / "model.onnx"),
            str(exports["litert"] / "model.tflite"),
            str(exports["litert_int8"] / "model.tflite"),
            str(folder / "pixels.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=folder,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_layout_and_metadata(exports):
    for key, path in exports.items():
        assert path.name == "1"
        info = verify(path.parent)
        assert info["format"] == key.split("_")[0] and info["version"] == 1
        assert info["signatures"]["serving_default"]["inputs"] == {
            "images": {"dtype": "float32", "shape": [None, 32, 32, 3]}
        }
        outputs = info["signatures"]["serving_default"]["outputs"]
        assert outputs == {
            "classes": {"dtype": "int64", "shape": [None]},
            "probabilities": {"dtype": "float32", "shape": [None, 10]},
        }
        assert sorted(p.name for p in path.parent.iterdir()) == ["1"]  # no temporary left
    assert verify(exports["onnx"])["metadata_props"]["class_names"] == json.dumps(CIFAR10_CLASSES)
    assert verify(exports["litert_int8"])["metadata"]["quantization"] == "dynamic_range_int8"
    size = {
        k: (p / ("model.onnx" if k == "onnx" else "model.tflite")).stat().st_size
        for k, p in exports.items()
    }
    assert size["litert_int8"] < 0.35 * size["litert"]  # int8 weights: about 4x smaller


def test_onnx_runtime_matches_keras(runtimes, model, pixels):
    expected = model.predict(pixels, verbose=0)
    got = runtimes["onnx"]
    assert got["inputs"] == [["images", "tensor(float)", ["batch", 32, 32, 3]]]
    assert sorted(got["outputs"]) == ["classes", "probabilities"]
    assert json.loads(got["metadata"]["class_names"]) == CIFAR10_CLASSES
    np.testing.assert_allclose(got["probabilities"], expected, atol=TOLERANCE)
    assert got["classes"] == expected.argmax(-1).tolist()


def test_litert_float32_matches_keras(runtimes, model, pixels):
    expected = model.predict(pixels, verbose=0)
    np.testing.assert_allclose(runtimes["litert"]["probabilities"], expected, atol=TOLERANCE)
    assert runtimes["litert"]["classes"] == expected.argmax(-1).tolist()


def test_litert_int8_stays_close(runtimes, model, pixels):
    expected = model.predict(pixels, verbose=0)
    got = np.asarray(runtimes["litert_int8"]["probabilities"])
    assert np.abs(got - expected).max() < INT8_TOLERANCE
    assert np.asarray(runtimes["litert_int8"]["classes"]).tolist() == got.argmax(-1).tolist()


# What each runtime says, in its own words, to a request that breaks the contract.
BAD_MESSAGES = {
    "onnx": {
        "rank 3": "Invalid rank for input: images Got: 3 Expected: 4",
        "one channel": "index: 3 Got: 1 Expected: 3",
        "wrong size": "index: 1 Got: 28 Expected: 32",
        "uint8": "Unexpected input data type. Actual: (tensor(uint8)) , expected: (tensor(float))",
        "channels first": "index: 1 Got: 3 Expected: 32",
    },
    "litert": {
        "rank 3": "must be float32 of shape [batch, 32, 32, 3]. Received: float32 [32, 32, 3]",
        "one channel": "Received: float32 [1, 32, 32, 1]",
        "wrong size": "Received: float32 [1, 28, 28, 3]",
        "uint8": "must be float32 of shape [batch, 32, 32, 3]. Received: uint8 [1, 32, 32, 3]",
        "channels first": "Received: float32 [1, 3, 32, 32]",
    },
}


@pytest.mark.parametrize("runtime", ["onnx", "litert", "litert_int8"])
def test_bad_requests_fail_readably_and_the_runtime_keeps_serving(runtimes, runtime):
    # The fresh process also checked that a good request after each bad one still matches.
    messages = BAD_MESSAGES[runtime.split("_")[0]]
    for case, message in runtimes[runtime]["bad"].items():
        assert message is not None, f"{runtime} accepted a {case} request"
        assert messages[case] in message, (case, message)


def test_one_format_per_folder_and_bad_arguments(model, exports, tmp_path):
    with pytest.raises(ValueError, match=r"already holds onnx version\(s\) \[1\].*litert"):
        export(model, exports["onnx"].parent, format="litert")
    with pytest.raises(ValueError, match="Received: format='tflite'"):
        export(model, tmp_path / "m", format="tflite")
    with pytest.raises(ValueError, match="is for format='litert'"):
        export(model, tmp_path / "m", format="onnx", quantize="int8")
    with pytest.raises(ValueError, match="Received: quantize='int4'"):
        export(model, tmp_path / "m", format="litert", quantize="int4")
    assert not (tmp_path / "m").exists()


def test_missing_extra_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if not installed
    checkpoint = tmp_path / "m.keras"
    _stand_in_model().save(checkpoint)
    code = cli.main(
        [
            "export",
            "--checkpoint",
            str(checkpoint),
            "--name",
            "m",
            "--base",
            str(tmp_path / "out"),
            "--format",
            "onnx",
        ]
    )
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: ONNX export needs the `tf2onnx` package: pip install 'keras-resnets[export]'"
    ]
    assert not (tmp_path / "out").exists()


def test_cli_exports_each_format(tmp_path, capsys):
    checkpoint = tmp_path / "m.keras"
    model = _stand_in_model()
    model.save(checkpoint)
    for fmt, extra in (("onnx", []), ("litert", ["--quantize", "int8"]), ("saved_model", [])):
        code = cli.main(
            [
                "export",
                "--checkpoint",
                str(checkpoint),
                "--name",
                f"m_{fmt}",
                "--base",
                str(tmp_path / "out"),
                "--format",
                fmt,
                *extra,
            ]
        )
        assert code == 0, capsys.readouterr().err
        info = verify(tmp_path / "out" / f"m_{fmt}")
        assert info["format"] == fmt and info["version"] == 1
    assert info["metadata"]["warmup_requests"] is not None
    code = cli.main(
        [
            "export",
            "--checkpoint",
            str(checkpoint),
            "--name",
            "m_x",
            "--base",
            str(tmp_path / "out"),
            "--quantize",
            "int8",
        ]
    )
    assert code == 2 and "is for format='litert'" in capsys.readouterr().err
