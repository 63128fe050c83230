"""A model whose weights come from the JAX backend exports from a TensorFlow process.

A JAX process builds cifar_resnet20, sets every weight from a seeded generator, saves them
with `save_weights` and records its own predictions; this (TensorFlow) process builds the same
network, loads the weights and exports it. The served outputs must match the JAX predictions.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

if keras.config.backend() != "tensorflow":
    pytest.skip("export runs on the TensorFlow backend", allow_module_level=True)
pytest.importorskip("jax")

import keras_resnets  # noqa: E402
from keras_resnets.export import export  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4

JAX_PROCESS = textwrap.dedent(
    """
    import os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np
    import keras
    import keras_resnets

    assert keras.config.backend() == "jax"
    out = sys.argv[1]
    model = keras_resnets.build("cifar_resnet", depth=20)
    rng = np.random.default_rng(7)
    for variable in model.weights:
        if "variance" in variable.path:
            value = rng.uniform(0.5, 2.0, variable.shape)
        else:
            value = rng.normal(0.0, 0.2, variable.shape)
        variable.assign(value.astype("float32"))
    model.save_weights(os.path.join(out, "jax.weights.h5"))
    pixels = rng.integers(0, 256, (4, 32, 32, 3)).astype("float32")
    np.save(os.path.join(out, "pixels.npy"), pixels)
    np.save(os.path.join(out, "jax_predictions.npy"), np.asarray(model.predict(pixels, verbose=0)))
    print("backend", keras.config.backend())
    """
)


@pytest.mark.slow  # out of the default run, which must stay about 10 min on 2 AVX2 cores
def test_jax_weights_export_from_tensorflow(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", JAX_PROCESS, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={
            **os.environ,
            "KERAS_BACKEND": "jax",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "JAX_PLATFORMS": "cpu",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "backend jax" in done.stdout
    pixels = np.load(tmp_path / "pixels.npy")
    expected = np.load(tmp_path / "jax_predictions.npy")

    model = keras_resnets.build("cifar_resnet", depth=20)
    model.load_weights(tmp_path / "jax.weights.h5")
    path = export(model, tmp_path / "saved_models" / "r20")
    served = tf.saved_model.load(str(path)).signatures["serving_default"](images=pixels)
    np.testing.assert_allclose(served["probabilities"], expected, atol=TOLERANCE)
    assert served["classes"].numpy().tolist() == expected.argmax(-1).tolist()
    # The weights are not the fresh TF initialisation: the JAX ones arrived.
    fresh = keras_resnets.build("cifar_resnet", depth=20).predict(pixels, verbose=0)
    assert np.abs(fresh - expected).max() > 1e-3
    assert json.loads((path / "assets.extra" / "keras_resnets.json").read_text())["version"] == 1
