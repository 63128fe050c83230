"""The command line: clear errors for bad input, list, train/evaluate/export end to end."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_resnets import cli

REPO = Path(__file__).resolve().parents[1]
CIFAR = REPO.parent / "shared" / "cifar10"
needs_cifar = pytest.mark.skipif(not CIFAR.exists(), reason=f"CIFAR-10 copy not at {CIFAR}")


def test_list_prints_every_registered_name(capsys):
    import keras_resnets

    assert cli.main(["list"]) == 0
    assert capsys.readouterr().out.split() == keras_resnets.list_models()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--model", "resnet7"], "Unknown model name 'resnet7'"),
        (["train", "--model", "cifar_resnet", "--depth", "24"], "Received: depth=24"),
        (["train", "--recipe", "sgd"], "Received: recipe='sgd'"),
        (["train", "--data", "/nonexistent/cifar"], "/nonexistent/cifar"),
        (["export", "--checkpoint", "/nonexistent.keras", "--name", "x"], "No checkpoint"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys, tmp_path):
    argv = argv + (["--out", str(tmp_path / "run")] if argv[0] == "train" else [])
    if argv[0] == "train" and "--data" not in argv:
        argv += ["--data", str(CIFAR) if CIFAR.exists() else str(tmp_path)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_the_console_script_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "keras_resnets", "list", "cifar_res*"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cifar_resnet"]


@needs_cifar
# 75 s of real training, evaluate and export: slow, so that the default run stays near 10
# minutes on 2 cores (CI's slow step runs it)
@pytest.mark.slow
def test_train_evaluate_export(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert (
        cli.main(
            [
                "train",
                "--model",
                "cifar_resnet",
                "--depth",
                "20",
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--train-limit",
                "128",
                "--test-limit",
                "64",
                "--data",
                str(CIFAR),
                "--out",
                str(out),
                "--verbose",
                "0",
                "--export",
                "r20",
            ]
        )
        == 0
    )
    assert "Test accuracy" in capsys.readouterr().out
    assert (tmp_path / "saved_models" / "r20" / "1" / "saved_model.pb").exists()

    plot = tmp_path / "confusion.png"
    assert (
        cli.main(
            [
                "evaluate",
                "--checkpoint",
                str(out / "best.keras"),
                "--data",
                str(CIFAR),
                "--test-limit",
                "100",
                "--plot",
                str(plot),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "Test accuracy" in printed and "on 100 images" in printed
    # The confusion matrix rows are the classes, numbered and named in full; their counts sum
    # to the images evaluated.
    names = [
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
    rows = [
        line.split()
        for line in printed.splitlines()
        if len(line.split()) > 2 and line.split()[1] in names
    ]
    assert [row[:2] for row in rows] == [[str(i), name] for i, name in enumerate(names)]
    assert sum(int(v) for row in rows for v in row[2:12]) == 100
    assert plot.read_bytes()[:4] == b"\x89PNG"

    assert cli.main(["export", "--checkpoint", str(out / "best.keras"), "--name", "r20"]) == 0
    assert (tmp_path / "saved_models" / "r20" / "2" / "saved_model.pb").exists()

    # The README's main job runs train, evaluate and export as separate processes: a fresh
    # one must load a checkpoint compiled with the fast recipe's label-smoothing loss.
    for argv in (
        [
            "evaluate",
            "--checkpoint",
            str(out / "best.keras"),
            "--data",
            str(CIFAR),
            "--test-limit",
            "50",
        ],
        ["export", "--checkpoint", str(out / "best.keras"), "--name", "r20"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "keras_resnets"] + argv,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "saved_models" / "r20" / "3" / "saved_model.pb").exists()
