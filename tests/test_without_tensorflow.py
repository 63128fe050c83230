"""Training without TensorFlow: the JAX backend alone, as on the GPU machines.

Each test runs a real subprocess through `tests/without_tensorflow.py`, which makes
`import tensorflow` fail as it does where TensorFlow is not installed. The data then decodes
with Pillow and batches come from `keras_resnets.data.ArrayBatches` (a PyDataset).
"""

import ast
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("jax")

TESTS = Path(__file__).resolve().parent
RUNNER = str(TESTS / "without_tensorflow.py")


def _env(tmp_path, backend="jax"):
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "JAX_PLATFORMS": "cpu",
        "KERAS_RESNETS_CACHE": str(tmp_path / "cache"),
    }
    env.pop("KERAS_RESNETS_DATA", None)
    # This checkout's package, whatever an editable install points at.
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), env.get("PYTHONPATH", "")])
    return env


def _run(args, tmp_path, timeout=600):
    """Runs `python tests/without_tensorflow.py ARGS` on the JAX backend."""
    return subprocess.run(
        [sys.executable, RUNNER, *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _image_folder(root, n_train=48, n_test=12, classes=("cat", "dog", "emu")):
    """A small class-folder data set of PNGs whose classes differ in mean colour."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                image = rng.integers(0, 96, (32, 32, 3)) + 64 * label
                buffer = io.BytesIO()
                Image.fromarray(image.astype(np.uint8)).save(buffer, format="PNG")
                (folder / f"{i:03d}.png").write_bytes(buffer.getvalue())
    return root


def test_the_test_runner_hides_tensorflow(tmp_path):
    done = _run(
        [
            "-c",
            "import keras_resnets, keras\n"
            "try:\n    import tensorflow\nexcept ImportError:\n    print('absent')\n"
            "print(keras.backend.backend())",
        ],
        tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["absent", "jax"]


FIT_EPOCHS = """
import sys
import keras
import numpy as np
from keras_resnets import data

calls = []


class Recording(data.ArrayBatches):
    def __getitem__(self, index):
        calls.append((self.epoch, index))
        return super().__getitem__(index)


workers, first_epoch = int(sys.argv[1]), int(sys.argv[2])
x = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
y = np.arange(40) % 2
ds = Recording(x, y, batch_size=8, augment=True, shuffle=True, drop_remainder=True,
               first_epoch=first_epoch, workers=workers)
model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
marker = keras.callbacks.LambdaCallback(
    on_epoch_begin=lambda epoch, logs=None: calls.append(("begin", epoch)))
model.fit(ds, epochs=first_epoch + 3, initial_epoch=first_epoch, steps_per_epoch=len(ds),
          shuffle=False, verbose=0, callbacks=[ds.epoch_callback(), marker])
print(calls)
"""


@pytest.mark.parametrize(
    "backend,workers,first_epoch", [("jax", 1, 0), ("jax", 3, 2), ("tensorflow", 2, 1)]
)
def test_fit_reads_every_batch_of_each_epoch_once(tmp_path, backend, workers, first_epoch):
    args = ["-c", FIT_EPOCHS, str(workers), str(first_epoch)]
    if backend == "jax":
        done = _run(args, tmp_path, timeout=180)
    else:  # TensorFlow installed: Keras feeds the PyDataset through tf.data.
        done = subprocess.run(
            [sys.executable, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
            env=_env(tmp_path, backend),
        )
    assert done.returncode == 0, done.stderr[-3000:]
    calls = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    # Before training, Keras may read a batch to build the optimizer (and, on TensorFlow,
    # a few to learn the batches' shapes): any batch, as each is a pure function of
    # (epoch, index). From the first epoch on, each epoch reads its own batches, in order.
    start = calls.index(("begin", first_epoch))
    expected = []
    for epoch in range(first_epoch, first_epoch + 3):
        expected += [("begin", epoch)] + [(epoch, step) for step in range(5)]
    assert calls[start:] == expected


@pytest.mark.slow  # 55 s; the default run stays near 10 minutes on 2 cores; CI's slow step runs it
def test_train_evaluate_and_a_clear_export_error_without_tensorflow(tmp_path):
    folder = _image_folder(tmp_path / "images")
    out = tmp_path / "run"
    train = [
        "-m",
        "keras_resnets",
        "train",
        "--model",
        "cifar_resnet",
        "--depth",
        "20",
        "--batch-size",
        "16",
        "--data",
        str(folder),
        "--out",
        str(out),
        "--verbose",
        "2",
    ]
    done = _run(train + ["--epochs", "1"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "TensorBoard logs skipped" in done.stdout
    assert "Test accuracy" in done.stdout

    # Run again with more epochs: it resumes at epoch 2 from the backup, with the NumPy
    # pipeline starting at that epoch.
    done = _run(train + ["--epochs", "2"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Resuming" in done.stdout and "at epoch 2 of 2" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pipeline"] == "numpy"
    assert summary["machine"]["tensorflow"] is None
    assert summary["machine"]["backend"] == "jax"
    assert summary["epochs"] == 2 and summary["steps_per_epoch"] == 144 // 16
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 3  # header and one row per epoch
    assert not (out / "tensorboard").exists()

    done = _run(
        [
            "-m",
            "keras_resnets",
            "evaluate",
            "--checkpoint",
            str(out / "best.keras"),
            "--data",
            str(folder),
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 36 images" in done.stdout

    done = _run(
        ["-m", "keras_resnets", "export", "--checkpoint", str(out / "best.keras"), "--name", "r20"],
        tmp_path,
    )
    assert done.returncode == 2
    assert "needs the TensorFlow backend" in done.stderr
    assert "Traceback" not in done.stderr
