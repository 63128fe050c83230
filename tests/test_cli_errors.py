"""Bad input through the CLI, as a new user meets it: one `error:` line and exit 2, never a
stack trace; a quiet console; `--help`, `list` and argument errors without TensorFlow.

Each test runs `python -m keras_resnets` in a subprocess with TF_CPP_MIN_LOG_LEVEL unset
(CI sets it; users do not), on tiny generated data. Errors found from the arguments alone
come back in about a second; the others after Keras and TensorFlow have loaded.
"""

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# TF's C++ log lines ("I0000 00:00:1796172248.024907 3749 port.cc:153] ...") and absl's note.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} |cuInit|absl::InitializeLog|cuda_platform|cudart_stub")
# Prints whether TensorFlow was imported after running the CLI with the given arguments.
DRIVER = """
import sys
from keras_resnets import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(code)
"""


def _env(tmp_path):
    env = {
        **os.environ,
        "KERAS_RESNETS_CACHE": str(tmp_path / "cache"),
        "TFDS_DATA_DIR": str(tmp_path / "tfds"),
        "KERAS_HOME": str(tmp_path / "keras"),
    }
    for name in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_RESNETS_DATA", "KERAS_BACKEND"):
        env.pop(name, None)
    # This checkout's package, whatever an editable install points at.
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def _cli(tmp_path, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "keras_resnets", *map(str, args)],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _driver(tmp_path, *args, code=DRIVER, timeout=300):
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_error(result, *expected):
    """Exit 2 and a stderr of exactly one `error:` line holding each of `expected`."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def _npz(path, *, n_train=40, n_test=20, classes=("cat", "dog")):
    """A tiny two-class data set whose classes differ in brightness."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % len(classes)
        arrays[f"x_{split}"] = (
            rng.integers(0, 96, (n, 32, 32, 3)) + 64 * y[:, None, None, None]
        ).astype(np.uint8)
        arrays[f"y_{split}"] = y
    np.savez(path, class_names=np.array(classes), **arrays)
    return path


def _image_archive(path, mode):
    """A small train/<class>/, test/<class>/ archive of PNGs, big enough to truncate."""
    rng = np.random.default_rng(0)
    with tarfile.open(path, mode) as archive:
        for split in ("train", "test"):
            for name in ("cat", "dog"):
                for i in range(8):
                    buffer = io.BytesIO()
                    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                    Image.fromarray(image).save(buffer, format="PNG")
                    info = tarfile.TarInfo(f"{split}/{name}/{i}.png")
                    info.size = len(buffer.getvalue())
                    archive.addfile(info, io.BytesIO(buffer.getvalue()))
    return path


def _truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _not_a_model(path):
    """A zip file where a .keras checkpoint is expected: it gets past the zip check."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    return path


# --- 5: no TensorFlow for --help, list and bad arguments ------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["train", "--help"],
        ["list"],
        ["list", "--markdown", "highway"],
        ["train", "--epochs", "0"],
        ["plot", "run"],
    ],
)
def test_help_list_and_argument_errors_do_not_import_tensorflow(tmp_path, args):
    if args[0] == "plot":  # a real plot: of a one-epoch run's history
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "history.csv").write_text(
            "epoch,accuracy,val_accuracy,wall_time\n0,0.3,0.35,60\n"
        )
        args = args + ["--out", "p.png"]
    start = time.perf_counter()
    result = _driver(tmp_path, *args)
    assert "tensorflow imported: False" in result.stdout, result.stdout + result.stderr
    assert time.perf_counter() - start < 60  # TensorFlow alone takes 10-25 s to import
    if args == ["list"]:
        assert "cifar_resnet" in result.stdout.split()
    if "--markdown" in args:  # counted on Keras's NumPy backend: no TensorFlow log lines
        assert "| `'highway'` | 32x32 | 2,038,996 | 517.2 M |" in result.stdout
        assert not any(TF_LOG_LINE.search(line) for line in result.stderr.splitlines())
        assert "Warning" not in result.stderr, result.stderr
    if args[0] == "plot":
        assert result.returncode == 0 and (tmp_path / "p.png").stat().st_size > 0


# The examples answer as the CLI does: their own --help and argument errors before Keras.
EXAMPLE_DRIVER = """
import runpy, sys
sys.argv = sys.argv[1:]
code = 0
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    code = exit.code
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(code)
"""


@pytest.mark.parametrize(
    "args, expected",
    [
        (["article.py", "--help"], None),
        (["article.py", "--epochs", "0"], "argument --epochs: must be a positive integer"),
        (["article.py", "--networks", "resnet", "vgg"], "argument --networks: invalid choice"),
        (["paper_cifar.py", "--depths", "20", "-1"], "argument --depths: must be a positive"),
        (["paper_cifar.py", "--mixed-precision", "bf16"], "argument --mixed-precision"),
    ],
)
def test_examples_check_their_arguments_before_tensorflow(tmp_path, args, expected):
    example = str(REPO / "examples" / args[0])
    result = _driver(tmp_path, example, *args[1:], code=EXAMPLE_DRIVER)
    assert "tensorflow imported: False" in result.stdout, result.stdout + result.stderr
    if expected is None:
        assert result.returncode == 0 and "usage: " in result.stdout, result.stderr[-3000:]
    else:
        _one_error(result, expected)


@pytest.mark.slow  # 9 s on AMX: Keras and TensorFlow load twice; CI's slow step runs it
def test_examples_name_a_bad_depth_in_one_line_before_training(tmp_path):
    # After Keras has loaded: TensorFlow's C++ log lines stay out (one stderr line in all),
    # and the bad depth is named before any network trains.
    article = _driver(
        tmp_path,
        REPO / "examples" / "article.py",
        "--depth",
        "7",
        "--out",
        "runs/a",
        code=EXAMPLE_DRIVER,
    )
    _one_error(article, "a positive multiple of 5", "Received: depth=7")
    paper = _driver(
        tmp_path,
        REPO / "examples" / "paper_cifar.py",
        "--depths",
        "20",
        "21",
        "--out",
        "runs/p",
        code=EXAMPLE_DRIVER,
    )
    _one_error(paper, "cifar_resnet (and cifar_plain) defines depth 6n+2", "Received: depth=21")
    assert not (tmp_path / "runs").exists()  # nothing trained, no run folder made


def test_import_keras_resnets_is_light_and_still_registers_everything(tmp_path):
    code = """
import sys
import keras_resnets
print("after import:", "tensorflow" in sys.modules, "keras" in sys.modules)
import keras
for name in ("keras_resnets>ResUnit", "keras_resnets>SmoothedSparseCrossentropy"):
    print(name, keras.saving.get_registered_object(name) is not None)
print("reachable:", callable(keras_resnets.train.train), callable(keras_resnets.data.load_arrays))
print("models:", len(keras_resnets.list_models()) > 20)
"""
    result = _driver(tmp_path, code=code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:5] == [
        "after import: False False",
        "keras_resnets>ResUnit True",
        "keras_resnets>SmoothedSparseCrossentropy True",
        "reachable: True True",
        "models: True",
    ]


def test_importing_one_submodule_first_registers_everything(tmp_path):
    # keras is first imported from inside keras_resnets.layers: the registration must wait
    # for the package to finish, not import the models from a half-initialised one.
    code = """
import keras_resnets.layers
import keras
from keras_resnets.models import registry
print(keras.saving.get_registered_object("keras_resnets>SmoothedSparseCrossentropy") is not None,
      len(registry.list_models()) > 20)
"""
    result = _driver(tmp_path, code=code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["True", "True"]


# --- 1: numbers are validated; 0 never means "default" -------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--epochs", "-1"], "--epochs"),
        (["train", "--steps-per-epoch", "0"], "--steps-per-epoch"),
        (["train", "--batch-size", "0"], "--batch-size"),
        (["train", "--train-limit", "0"], "--train-limit"),
        (["train", "--test-limit", "-5"], "--test-limit"),
        (["train", "--depth", "0"], "--depth"),
        (["train", "--growth-rate", "0"], "--growth-rate"),
        (["train", "--seed", "-1"], "--seed"),
        (["train", "--epochs", "two"], "--epochs"),
        (["evaluate", "--checkpoint", "m.keras", "--batch-size", "0"], "--batch-size"),
        (["evaluate", "--checkpoint", "m.keras", "--test-limit", "0"], "--test-limit"),
        (["export", "--checkpoint", "m.keras", "--name", "m", "--version", "0"], "--version"),
    ],
)
def test_numeric_options_must_be_positive(tmp_path, args, expected):
    value = args[-1]
    _one_error(
        _cli(tmp_path, *args),
        expected,
        f"Received: {value}" if value.lstrip("-").isdigit() else value,
    )


@pytest.mark.parametrize(
    "name", ["epochs", "steps_per_epoch", "batch_size", "train_limit", "test_limit"]
)
@pytest.mark.parametrize("value", [0, -1, True, 2.5])
def test_train_api_validates_counts_before_any_work(name, value, tmp_path):
    from keras_resnets.train import train

    with pytest.raises(ValueError, match=f"Received: {name}={value!r}"):
        train("cifar_resnet", data=tmp_path / "nothing", out=tmp_path / "run", **{name: value})
    assert not (tmp_path / "run").exists()  # refused before the run folder was made


def test_a_tiny_set_names_the_recipe_default_batch_size(tmp_path):
    _npz(tmp_path / "tiny.npz")
    _one_error(
        _cli(tmp_path, "train", "--data", "tiny.npz", "--out", "run"),
        "batch_size=128 (the fast recipe's) is larger than the 40 training images",
    )


# --- 2: archives, folders and builder arguments ---------------------------------------------


def test_truncated_archive_is_named_in_one_line(tmp_path):
    archive = _truncated(_image_archive(tmp_path / "cifar.tar.xz", "w:xz"))
    _one_error(
        _cli(tmp_path, "train", "--data", archive.name, "--out", "run"),
        "cifar.tar.xz is truncated or corrupt",
    )


@pytest.mark.parametrize("name, mode", [("d.tar", "w"), ("d.tar.gz", "w:gz"), ("d.tar.xz", "w:xz")])
def test_truncated_archives_raise_data_source_errors(tmp_path, name, mode):
    from keras_resnets import data

    archive = _truncated(_image_archive(tmp_path / name, mode))
    with pytest.raises(data.DataSourceError, match="truncated or corrupt") as raised:
        data.load_arrays(archive, cache_dir=tmp_path / "cache")
    assert str(archive) in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_truncated_npz_is_named(tmp_path):
    from keras_resnets import data

    path = _truncated(_npz(tmp_path / "tiny.npz"))
    with pytest.raises(data.DataSourceError, match="tiny.npz is not a readable .npz file"):
        data.load_arrays(path)


def test_out_and_base_must_be_folders(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    _one_error(_cli(tmp_path, "train", "--out", "a_file"), "--out a_file is a file")
    _one_error(_cli(tmp_path, "train", "--out", "a_file/run"), "--out a_file/run is inside")
    _not_a_model(tmp_path / "m.keras")
    _one_error(
        _cli(tmp_path, "export", "--checkpoint", "m.keras", "--name", "m", "--base", "a_file"),
        "--base a_file is a file",
    )


def test_unknown_model_arg_lists_the_builders_arguments(tmp_path):
    line = _one_error(
        _cli(tmp_path, "train", "--model", "cifar_plain", "--model-arg", "widht=2", "--out", "run"),
        "cifar_plain takes no argument widht",
        "--model-arg widht",
    )
    # cifar_plain passes **kwargs on to cifar_resnet_family, which fixes `shortcut`.
    valid = line.split("Its arguments: ")[1].split(". Received")[0].split(", ")
    assert {"depth", "input_shape", "classes", "zero_init_residual"} <= set(valid)
    assert "shortcut" not in valid and "kwargs" not in valid


def test_model_arg_classes_must_fit_the_data(tmp_path):
    _npz(tmp_path / "tiny.npz")
    _one_error(
        _cli(
            tmp_path,
            "train",
            "--data",
            "tiny.npz",
            "--out",
            "run",
            "--batch-size",
            "20",
            "--model-arg",
            "classes=5",
        ),
        "classes=5, but the data has 2 classes (cat, dog)",
    )


# --- 4 and 5: a quiet training run; a run folder holds one run -------------------------------


@pytest.mark.slow  # 56 s; the default run stays near 10 minutes on 2 cores; CI's slow step runs it
def test_train_is_quiet_and_a_run_folder_holds_one_run(tmp_path):
    _npz(tmp_path / "tiny.npz")
    args = [
        "train",
        "--data",
        "tiny.npz",
        "--out",
        "runs/run",
        "--epochs",
        "1",
        "--batch-size",
        "20",
        "--verbose",
        "0",
    ]
    # input_shape and classes pass through to the builder (they used to raise TypeError).
    first = _cli(
        tmp_path, *args, "--model-arg", "input_shape=[32, 32, 3]", "--model-arg", "classes=2"
    )
    assert first.returncode == 0, first.stderr[-3000:]
    noise = [line for line in first.stderr.splitlines() if TF_LOG_LINE.search(line)]
    assert not noise, first.stderr[-3000:]
    assert "Test accuracy" in first.stdout
    run = json.loads((tmp_path / "runs/run/run.json").read_text())
    assert run["network"] == "cifar_resnet20"

    last = (tmp_path / "runs/run/last.keras").stat().st_mtime_ns
    again = _cli(
        tmp_path, *args, "--model-arg", "input_shape=[32, 32, 3]", "--model-arg", "classes=2"
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "runs/run is already complete: cifar_resnet20 trained 1 of 1 epochs" in again.stdout
    assert (tmp_path / "runs/run/last.keras").stat().st_mtime_ns == last  # nothing trained
    # Going on with another seed (another data order) would make it another run.
    _one_error(
        _cli(
            tmp_path,
            *args,
            "--model-arg",
            "input_shape=[32, 32, 3]",
            "--model-arg",
            "classes=2",
            "--epochs",
            "2",
            "--seed",
            "5",
        ),
        "runs/run holds a run started with seed=0",
        "pass the ones it started with (--seed 0), or restart it (--restart)",
    )

    other = ["--model", "cifar_highway", "--depth", "11"]
    _one_error(
        _cli(tmp_path, *args, *other),
        "runs/run holds a cifar_resnet20 run",
        "pass another --out, or --restart",
    )

    restarted = _cli(tmp_path, *args, *other, "--restart")
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    summary = json.loads((tmp_path / "runs/run/summary.json").read_text())
    assert summary["registry_name"] == "cifar_highway" and summary["epochs"] == 1


# --- 6: offline, with no data anywhere -------------------------------------------------------


def test_offline_without_data_fails_fast_and_leaves_nothing(tmp_path):
    code = """
import argparse
import sys
from keras_resnets import cli, commands
commands._start_keras(argparse.Namespace(tf_logs=False))  # as the CLI starts, before the patch
from keras_resnets import data
data.tfds._network_reachable = lambda *args, **kwargs: False  # as on a machine with no network
sys.exit(cli.main(sys.argv[1:]))
"""
    start = time.perf_counter()
    result = _driver(tmp_path, "train", "--data", "tfds", "--out", "run", code=code)
    _one_error(result, "no network to download it", str(tmp_path / "tfds"))
    assert time.perf_counter() - start < 120  # was 3.5 minutes of download retries
    assert not (tmp_path / "tfds").exists()


def test_a_failed_download_removes_the_folders_it_made(tmp_path, monkeypatch):
    from keras_resnets import data

    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setattr(data.tfds, "_network_reachable", lambda *args, **kwargs: True)

    def no_network(builder):
        # As TFDS's download_and_prepare does before its first request fails.
        (tmp_path / "tfds" / "cifar10" / "3.0.2.incomplete").mkdir(parents=True)
        (tmp_path / "tfds" / "downloads" / "extracted").mkdir(parents=True)
        raise ConnectionError("network disabled by the test")

    monkeypatch.setattr(data.tfds, "_tfds_download", no_network)
    with pytest.raises(data.DataSourceError, match="network disabled by the test"):
        data.load_arrays("tfds")
    assert not (tmp_path / "tfds").exists()


# --- 7: misleading messages -----------------------------------------------------------------


def test_corrupt_checkpoint_is_not_a_valid_keras_archive(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"PK\x03\x04 truncated")
    _one_error(
        _cli(tmp_path, "evaluate", "--checkpoint", "m.keras"),
        "m.keras is not a valid .keras archive",
    )


def test_version_clash_names_the_cli_option(tmp_path):
    _not_a_model(tmp_path / "m.keras")
    (tmp_path / "saved_models" / "m" / "1").mkdir(parents=True)
    line = _one_error(
        _cli(tmp_path, "export", "--checkpoint", "m.keras", "--name", "m", "--version", "1"),
        "Version 1 already exists",
        "--overwrite",
    )
    assert "overwrite=True" not in line


def test_plot_into_a_missing_folder_fails_before_evaluating(tmp_path):
    _not_a_model(tmp_path / "m.keras")
    start = time.perf_counter()
    _one_error(
        _cli(tmp_path, "evaluate", "--checkpoint", "m.keras", "--plot", "missing/confusion.png"),
        "--plot missing/confusion.png",
        "does not exist",
    )
    assert time.perf_counter() - start < 60


# --- 8: smaller ------------------------------------------------------------------------------


def test_list_with_no_match_says_so(tmp_path):
    _one_error(_cli(tmp_path, "list", "resnet_*"), "No registered model matches 'resnet_*'")


def test_text_confusion_matrix_keeps_whole_class_names():
    from keras_resnets.evaluation import format_confusion_matrix

    names = ["automobile", "a rather long class name"]
    text = format_confusion_matrix(np.array([[5, 1234], [3, 4]]), names)
    rows = text.splitlines()[2:]
    assert [row.split(None, 1)[1].startswith(name) for row, name in zip(rows, names)] == [
        True,
        True,
    ]
    assert [row.split()[-3:-1] for row in rows] == [["5", "1234"], ["3", "4"]]
    assert max(len(line) for line in text.splitlines()) < 100


def test_confusion_plot_labels_its_colour_bar(tmp_path, monkeypatch):
    from keras_resnets import evaluation, plotting

    figures = []
    real_save = plotting.save_figure
    monkeypatch.setattr(
        plotting,
        "save_figure",
        lambda fig, path: (
            figures.append([a.get_ylabel() for a in fig.axes]) or real_save(fig, path)
        ),
    )
    evaluation.plot_confusion_matrix(np.eye(3, dtype=int), ["a", "b", "c"], tmp_path / "c.png")
    assert figures[0][0] == "true" and "fraction" in figures[0][1]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
