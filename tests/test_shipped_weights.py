"""The CIFAR-10 weights that ship inside the package (`keras_resnets/weights/cifar10/`).

Each file must load through `build(..., weights="cifar10")`, match its SHA-256, and give
exactly the recorded number of correct images on the fixed slice of the real test set
(`x_test[::5]`, 2,000 images, from ../shared/cifar10), so that a change in architecture,
padding, preprocessing or loading fails here. Runs on TensorFlow and on JAX.
"""

import dataclasses
import hashlib
import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets import data
from keras_resnets.models import get_info
from keras_resnets.weights import WeightsError, files

DATA = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "shared", "cifar10")
SHIPPED = [
    (name, w)
    for name in keras_resnets.list_models()
    for w in get_info(name).weights
    if w.url.startswith("package:")
]


def test_weights_ship_with_the_package():
    assert SHIPPED, "no shipped weights found in keras_resnets/weights/cifar10/manifest.json"
    total = sum(os.path.getsize(files.fetch(w)) for _, w in SHIPPED)
    assert total < 40e6


@pytest.fixture(scope="module")
def test_set():
    if not os.path.isdir(DATA):
        pytest.skip(f"CIFAR-10 not found at {DATA}")
    arrays = data.load_arrays(DATA)
    return arrays.x_test, arrays.y_test


# 2,000 images through each network: 4 to 6 minutes in all on 2 AVX2 cores, most of the run.
@pytest.mark.first
@pytest.mark.parametrize("name, entry", SHIPPED, ids=[w.name for _, w in SHIPPED])
def test_shipped_weights_reproduce_their_recorded_accuracy(name, entry, test_set):
    path = files.fetch(entry)
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == entry.meta["sha256"]
    model = keras_resnets.build(name, weights="cifar10", **entry.layout)
    x_test, y_test = test_set
    assert entry.meta["slice"] == "x_test[::5]"
    x, y = x_test[::5], y_test[::5]
    assert len(x) == entry.meta["slice_images"] == 2000
    predicted = np.argmax(model.predict(x, batch_size=500, verbose=0), axis=-1)
    assert int((predicted == y).sum()) == entry.meta["slice_correct"]


@pytest.mark.parametrize("name, entry", SHIPPED, ids=[w.name for _, w in SHIPPED])
def test_shipped_backbone_loads_without_the_top(name, entry):
    # The backbone's features are the full trained model's at the same layer: the classifier
    # (a dense layer, or the article's own conv head) is all that is left out.
    full = keras_resnets.build(name, weights="cifar10", **entry.layout)
    backbone = keras_resnets.build(name, weights="cifar10", include_top=False, **entry.layout)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    features = keras.Model(full.input, full.get_layer(backbone.layers[-1].name).output)
    np.testing.assert_allclose(_features(backbone, x), _features(features, x), rtol=1e-5, atol=1e-6)


def _features(model, x):
    # A direct call, not `predict`: for two images, tracing predict's function cost more than
    # the network (about 1.6 s a model on a 2-core AVX2 CPU, against 0.3 s).
    return keras.ops.convert_to_numpy(model(x, training=False))


def test_the_backbone_ignores_classes():
    # As in keras.applications, `classes` only sizes the top: a backbone for, say, CIFAR-100
    # transfer loads the same features whatever `classes` says.
    name, entry = SHIPPED[0]
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    features = [
        _features(
            keras_resnets.build(
                name, weights="cifar10", include_top=False, **entry.layout, **classes
            ),
            x,
        )
        for classes in ({}, {"classes": 100})
    ]
    np.testing.assert_array_equal(features[1], features[0])


def test_a_combination_without_weights_lists_those_that_exist():
    with pytest.raises(ValueError, match=r"No 'cifar10' weights of cifar_resnet fit") as error:
        keras_resnets.build("cifar_resnet", depth=1202, weights="cifar10")
    # Each shipped depth is listed with its recorded accuracy, two decimals as in README.
    for name, entry in SHIPPED:
        if name == "cifar_resnet":
            assert f"depth={entry.layout['depth']}" in str(error.value)
            assert f"top-1 {entry.top1:.2f}%" in str(error.value)
    assert "the requested depth=1202. Available" in str(error.value)


def test_a_default_depth_without_weights_is_named_as_the_default():
    # cifar_highway's builder defaults to depth 32, whose weights ship: the default loads.
    assert keras_resnets.build("cifar_highway", weights="cifar10").name == "cifar_highway32"
    # Were its weights for depth 20 only, the error would name the depth asked for as the
    # default, since the user never wrote it.
    from keras_resnets.weights import select

    info = get_info("cifar_highway")
    only20 = dataclasses.replace(
        info,
        weights=tuple(dataclasses.replace(w, layout={"depth": 20}) for w in info.weights),
    )
    with pytest.raises(
        ValueError, match=r"requested depth=32 \(the default\)\. Available: cifar10 .*depth=20"
    ):
        select(only20, "cifar10", {})


def test_a_corrupt_shipped_file_is_refused(tmp_path, monkeypatch):
    name, entry = SHIPPED[0]
    copy = tmp_path / "copy.weights.h5"
    copy.write_bytes(open(files.fetch(entry), "rb").read()[:-10] + b"0123456789")
    monkeypatch.setattr(files, "PACKAGE_DIR", str(tmp_path))
    broken = dataclasses.replace(entry, url="package:copy.weights.h5")
    with pytest.raises(WeightsError, match="does not match the publisher's hash"):
        files.fetch(broken)


def test_float32_storage_is_compressed_and_loads_bit_for_bit(tmp_path):
    # ship stores float32 weights with HDF5's shuffle + gzip: the file must be smaller and
    # Keras must load exactly the saved values; float16 storage rounds them (NumPy's cast).
    from keras_resnets.weights import ship

    model = keras_resnets.build("cifar_resnet", depth=8)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    plain, packed, half = (tmp_path / f"{n}.weights.h5" for n in ("plain", "packed", "half"))
    model.save_weights(plain)
    ship.rewrite(plain, packed, float16=False)
    ship.rewrite(plain, half, float16=True)
    assert os.path.getsize(packed) < os.path.getsize(plain)
    with h5py.File(packed) as f:
        filters = set()
        f.visititems(
            lambda _, item: filters.add(item.compression) if hasattr(item, "dtype") else None
        )
    assert "gzip" in filters
    for path, expected in (
        (packed, model.get_weights()),
        (half, [w.astype("float16").astype("float32") for w in model.get_weights()]),
    ):
        reloaded = keras_resnets.build("cifar_resnet", depth=8)
        reloaded.load_weights(path)
        for got, want in zip(reloaded.get_weights(), expected):
            np.testing.assert_array_equal(got, want)


@pytest.mark.slow  # out of the default run, which must stay about 10 min on 2 AVX2 cores
def test_evaluate_reproduces_the_recorded_full_test_set_figure(test_set):
    """`keras-resnets evaluate --model ... --weights cifar10` in a fresh process."""
    import subprocess
    import sys

    name, entry = SHIPPED[0]
    depth = [f"--depth={entry.layout['depth']}"] if "depth" in entry.layout else []
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_resnets",
            "evaluate",
            "--model",
            name,
            *depth,
            "--weights",
            "cifar10",
            "--data",
            DATA,
            "--batch-size",
            "500",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), os.pardir)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = f"Test accuracy: {entry.meta['test_accuracy'] / 100:.4f} on 10000 images"
    assert expected in done.stdout, done.stdout[-2000:]


@pytest.mark.slow  # five passes over the 10,000 test images: about a minute on 2 cores
def test_ship_scores_a_gpu_runs_weights_and_records_that_gpu(tmp_path, monkeypatch, test_set):
    # A GPU run brings back its weights alone (benchmarks/gpu/train.sh). Ship reloads them
    # into a fresh float32 build; its figures must be this model's own predictions, and the
    # machine the run's, not the one that ships it.
    import json

    from keras_resnets import machine
    from keras_resnets.weights import ship

    run = tmp_path / "run"
    run.mkdir()
    model = keras_resnets.build("cifar_resnet", depth=20)
    model.save_weights(run / "last.weights.h5")
    desc = {**machine.describe(), "backend": "jax", "gpus": ["cuda:0 NVIDIA H100 80GB HBM3"]}
    # The data source as a GPU run's run.json words it (benchmarks/gpu/train.sh).
    source = ".gpu/cifar10-gpu/{cifar10-jpeg-train.tar.xz, cifar10-test.tar.xz}"
    (run / "run.json").write_text(
        json.dumps(
            {
                "model": "cifar_resnet",
                "model_kwargs": {"depth": 20},
                "recipe": "paper",
                "data": f"image archives {source} (decoded)",
            }
        )
    )
    (run / "summary.json").write_text(
        json.dumps({"epochs": 164, "seed": 3, "mixed_precision": "mixed_bfloat16", "machine": desc})
    )
    monkeypatch.setattr(ship, "HERE", tmp_path / "shipped")
    monkeypatch.setattr(ship, "MANIFEST", tmp_path / "shipped" / "manifest.json")
    ship.main([str(run), "--data", DATA, "--commit", "abc1234"])

    entry = json.loads((tmp_path / "shipped" / "manifest.json").read_text())["cifar_resnet20"]
    x_test, y_test = test_set
    float32 = np.argmax(model.predict(x_test, batch_size=500, verbose=0), axis=-1)
    path = tmp_path / "shipped" / entry["file"]
    reloaded = keras_resnets.build("cifar_resnet", depth=20)
    reloaded.load_weights(path)
    predicted = np.argmax(reloaded.predict(x_test, batch_size=500, verbose=0), axis=-1)
    # The figures are the shipped file's own; float16 only where it loses no test image.
    assert entry["test_accuracy"] == round(float((predicted == y_test).mean()) * 100, 2)
    assert entry["float32_test_accuracy"] == round(float((float32 == y_test).mean()) * 100, 2)
    assert entry["slice_correct"] == int((predicted[::5] == y_test[::5]).sum())
    half = keras_resnets.build("cifar_resnet", depth=20)
    half.set_weights([w.astype("float16").astype("float32") for w in model.get_weights()])
    float16 = np.argmax(half.predict(x_test, batch_size=500, verbose=0), axis=-1)
    half_is_as_good = (float16 == y_test).sum() >= (float32 == y_test).sum()
    with h5py.File(path) as f:
        dtypes = set()
        f.visititems(lambda _, item: dtypes.add(item.dtype) if hasattr(item, "dtype") else None)
    assert entry["storage"] == ("float16" if half_is_as_good else "float32")
    assert {dtype for dtype in dtypes if dtype.kind == "f"} == {np.dtype(entry["storage"])}
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry["machine"] == "cuda:0 NVIDIA H100 80GB HBM3, jax backend"
    assert "trained on the JPEG q75 copy" in entry["dataset"]
    assert (entry["epochs"], entry["seed"], entry["commit"]) == (164, 3, "abc1234")


def test_ship_names_the_cpu_a_run_trained_on():
    from keras_resnets.weights import ship

    zen4 = {"model": "AMD EPYC", "family": 25, "model_number": 17, "generation": "Zen 4"}
    summary = {"machine": {"cpu_count": 2, "gpus": [], "cpu": {**zen4, "kind": "AVX-512 BF16"}}}
    assert ship.trained_on(summary) == (
        "AMD EPYC (Zen 4, family 25 model 17), 2 cores, AVX-512 with BF16, no AMX"
    )
    # A summary from before family and model were recorded: ship falls back to this machine.
    assert ship.trained_on({"machine": {"cpu": {"model": "AMD EPYC", "kind": "AVX2"}}}) is None


def test_ship_names_each_machine_of_a_resumed_run_with_its_epochs():
    from keras_resnets.weights import ship

    summary = {"epochs": 9, "machine": {"cpu_count": 2, "gpus": ["H100"], "backend": "jax"}}
    zen4, spr = "AMD EPYC (Zen 4), 2 cores", "Intel Xeon (Sapphire Rapids), 2 cores, AMX"
    starts = [
        {"epoch": 0, "machine": zen4},
        {"epoch": 4, "machine": zen4},  # killed and resumed on the same kind: one span
        {"epoch": 6, "machine": spr},
    ]
    assert ship.trained_on(summary, starts) == f"{zen4} (epochs 1-6); {spr} (epochs 7-9)"
    # A run begun before starts were recorded, then resumed: the first machine is unknown.
    unknown = [{"epoch": 0, "machine": None}, {"epoch": 3, "machine": spr}]
    assert ship.trained_on(summary, unknown) == (
        f"an unrecorded machine (epochs 1-3); {spr} (epochs 4-9)"
    )
    # One machine throughout: the summary's own words.
    assert ship.trained_on(summary, starts[:2]) == "H100, jax backend"
    # Starts that trained no epoch name no machine: killed in its first epoch, then resumed
    # elsewhere; resumed after the last epoch's backup (only the summary was left to write).
    assert ship.spans([{"epoch": 0, "machine": zen4}, {"epoch": 0, "machine": spr}], 9) == [
        (spr, 1, 9)
    ]
    assert ship.spans(starts + [{"epoch": 9, "machine": "a GPU"}], 9) == [
        (zen4, 1, 6),
        (spr, 7, 9),
    ]
    # A start at an earlier epoch (the backup removed) replaces the epochs it trained again.
    again = [{"epoch": 0, "machine": zen4}, {"epoch": 5, "machine": spr}]
    assert ship.spans(again + [{"epoch": 2, "machine": zen4}], 9) == [(zen4, 1, 9)]


def test_ship_names_the_training_images_a_run_used():
    from keras_resnets.weights import ship

    png = "image archives ../shared/cifar10/{cifar10-test.tar.xz, cifar10-train.tar.xz}"
    gpu = "image archives .gpu/cifar10-gpu/{cifar10-jpeg-train.tar.xz, cifar10-test.tar.xz}"
    assert ship.dataset_words([png]) == ship.PNG
    assert ship.dataset_words([gpu, gpu]) == ship.JPEG_TRAINED
    assert ship.dataset_words([png, gpu]) == ship.PARTLY_JPEG
    assert ship.dataset_words(["/data/my_jpeg_photos.npz"]) == "cifar10 (/data/my_jpeg_photos.npz)"


def test_ship_usage_errors_are_one_line(capsys):
    from keras_resnets.weights import ship

    for argv in (
        ["--data", DATA],
        ["--restore", "resnet25", "--commit", "abc1234", "--data", DATA],
    ):
        with pytest.raises(SystemExit) as raised:
            ship.main(argv)
        assert raised.value.code == 2
    assert "give the run folder to ship, or --restore KEY" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="No shipped weights 'resnet9'"):
        ship.main(["--restore", "resnet9", "--data", DATA])


@pytest.mark.slow  # five passes over the 10,000 test images: about a minute on 2 cores
def test_restore_stores_a_shipped_file_again_and_keeps_its_provenance(
    tmp_path, monkeypatch, test_set
):
    # `ship --restore` re-stores a shipped file (float16 for those shipped in float32). Here on
    # a copy of a float32 ResNet-20 file with random weights, whose manifest figure is its own.
    import json

    from keras_resnets.weights import ship

    x_test, y_test = test_set
    model = keras_resnets.build("cifar_resnet", depth=20)
    float32 = np.argmax(model.predict(x_test, batch_size=500, verbose=0), axis=-1)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    model.save_weights(shipped / "cifar_resnet20.weights.h5")
    before = (shipped / "cifar_resnet20.weights.h5").read_bytes()
    entry = {
        "model": "cifar_resnet",
        "model_kwargs": {"depth": 20},
        "file": "cifar_resnet20.weights.h5",
        "sha256": hashlib.sha256(before).hexdigest(),
        "test_accuracy": round(float((float32 == y_test).mean()) * 100, 2),
        "commit": "abc1234",
        "recipe": "fast",
    }
    monkeypatch.setattr(ship, "HERE", shipped)
    monkeypatch.setattr(ship, "MANIFEST", shipped / "manifest.json")

    # A manifest figure the weights no longer reproduce: refused, nothing written.
    wrong = {**entry, "test_accuracy": entry["test_accuracy"] + 1}
    (shipped / "manifest.json").write_text(json.dumps({"cifar_resnet20": wrong}))
    with pytest.raises(SystemExit, match="scores .* where its manifest says"):
        ship.main(["--restore", "cifar_resnet20", "--data", DATA, "--storage", "float16"])
    assert (shipped / "cifar_resnet20.weights.h5").read_bytes() == before

    (shipped / "manifest.json").write_text(json.dumps({"cifar_resnet20": entry}))
    ship.main(["--restore", "cifar_resnet20", "--data", DATA, "--storage", "float16"])
    got = json.loads((shipped / "manifest.json").read_text())["cifar_resnet20"]
    path = shipped / got["file"]
    half = keras_resnets.build("cifar_resnet", depth=20)
    half.set_weights([w.astype("float16").astype("float32") for w in model.get_weights()])
    float16 = np.argmax(half.predict(x_test, batch_size=500, verbose=0), axis=-1)
    with h5py.File(path) as f:
        dtypes = set()
        f.visititems(lambda _, item: dtypes.add(item.dtype) if hasattr(item, "dtype") else None)
    assert {dtype for dtype in dtypes if dtype.kind == "f"} == {np.dtype("float16")}
    assert got["storage"] == "float16"
    assert got["test_accuracy"] == round(float((float16 == y_test).mean()) * 100, 2)
    assert got["float32_test_accuracy"] == entry["test_accuracy"]
    assert got["slice_correct"] == int((float16[::5] == y_test[::5]).sum())
    assert got["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (got["commit"], got["recipe"]) == ("abc1234", "fast")

    # Stored in float16, it cannot go back to float32; a changed file is refused.
    restore = ["--restore", "cifar_resnet20", "--data", DATA]
    with pytest.raises(SystemExit, match="stored in float16: its float32 weights are gone"):
        ship.main(restore + ["--storage", "float32"])
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(SystemExit, match="does not match its manifest's SHA-256"):
        ship.main(restore)


def test_the_ship_tool_starts_keras_quietly(tmp_path):
    # `python -m keras_resnets.weights.ship` imports no Keras before it has quieted TensorFlow
    # (as the CLI does), so its console holds its own words only.
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    result = subprocess.run(
        [sys.executable, "-m", "keras_resnets.weights.ship", "--restore", "nosuch"]
        + ["--data", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"No shipped weights 'nosuch': the manifest has {', '.join(_manifest_keys())}."
    ], result.stderr[-3000:]


def _manifest_keys():
    import json

    from keras_resnets.weights import ship

    return list(json.loads(ship.MANIFEST.read_text()))
