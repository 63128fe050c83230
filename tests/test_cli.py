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
        # A bad depth is refused before the data is looked for (it once waited for the load).
        (
            ["train", "--model", "cifar_densenet_bc", "--depth", "41", "--data", "/nonexistent"],
            "cifar_densenet_bc defines depth 6n+4",
        ),
        (
            [
                "evaluate",
                "--model",
                "highway",
                "--depth",
                "24",
                "--weights",
                "cifar10",
                "--data",
                "/x",
            ],
            "a positive multiple of 5 (5, 10, ..., 25, ...). Received: depth=24",
        ),
        (["train", "--recipe", "sgd"], "Received: recipe='sgd'"),
        (["train", "--data", "/nonexistent/cifar"], "/nonexistent/cifar"),
        (["export", "--checkpoint", "/nonexistent.keras", "--name", "x"], "No checkpoint"),
        # Builder arguments are checked as build() checks them, in one line, before any data.
        (
            ["evaluate", "--model", "resnet50", "--depth", "50", "--weights", "imagenet"],
            "resnet50 takes no argument depth. Its arguments: classes",
        ),
        (
            ["train", "--model", "cifar_resnet", "--model-arg", "zero_init_residual=maybe"],
            "`zero_init_residual` of cifar_resnet must be True or False, not text. Received: "
            "zero_init_residual='maybe'",
        ),
        (
            [
                "train",
                "--model",
                "cifar_densenet_bc",
                "--depth",
                "40",
                "--model-arg",
                "growth_rate=0",
            ],
            "must be a positive integer. Received: growth_rate=0",
        ),
        (["train", "--model-arg", "include_top=false"], "needs include_top=True"),
        (["train", "--model-arg", "classifier_activation=null"], "classifier_activation='softmax'"),
        # A checkpoint holds its model and weights: --weights or --depth beside it are refused.
        (
            ["evaluate", "--checkpoint", "/nonexistent.keras", "--weights", "cifar10"],
            "--weights goes with --model",
        ),
        (["evaluate", "--checkpoint", "/x.keras", "--depth", "56"], "--depth goes with --model"),
        (["train", "--export", "../../x"], "--export must be one folder name inside saved_models"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys, tmp_path):
    argv = argv + (["--out", str(tmp_path / "run")] if argv[0] == "train" else [])
    if argv[0] == "train" and "--data" not in argv:
        argv += ["--data", str(CIFAR) if CIFAR.exists() else str(tmp_path)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # a failed start leaves no empty run folder


@pytest.mark.parametrize(
    "text, expected",
    [
        ("zero_init_residual=true", ("zero_init_residual", True)),
        ("zero_init_residual=False", ("zero_init_residual", False)),
        ("input_shape=64,64,3", ("input_shape", (64, 64, 3))),
        ("input_shape=(None, None, 3)", ("input_shape", (None, None, 3))),
        ("input_shape=[null,null,3]", ("input_shape", [None, None, 3])),
        ("shortcut=A", ("shortcut", "A")),
        ("shortcut=none", ("shortcut", "none")),
        ("gate-bias-initializer=-2", ("gate_bias_initializer", -2)),
    ],
)
def test_model_arg_values_read_as_json_then_python_literals(text, expected):
    assert cli.key_value(text) == expected


def test_export_name_is_one_folder_inside_base(tmp_path, capsys):
    import zipfile

    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:  # gets past the file checks
        archive.writestr("config.json", "{}")
    base = tmp_path / "sm"
    for name in ("../../etc/x", "", ".", "a/b"):
        argv = ["export", "--checkpoint", str(tmp_path / "m.keras"), "--base", str(base)]
        assert cli.main(argv + ["--name", name]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --name must be one folder name inside --base"), err
    assert not base.exists() and not (tmp_path / "etc").exists()


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


def _history(folder, accuracies, seconds_per_epoch=60):
    """A CSVLogger history.csv in `folder`, as `train --out` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["epoch,accuracy,loss,val_accuracy,val_loss,wall_time"]
    for i, a in enumerate(accuracies):
        lines.append(f"{i},{a - 0.05},1.0,{a},1.0,{(i + 1) * seconds_per_epoch}")
    (folder / "history.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_plot_draws_runs_into_one_png(tmp_path, capsys, monkeypatch):
    from keras_resnets import plotting

    a = _history(tmp_path / "r20", [0.5, 0.8, 0.9])
    b = _history(tmp_path / "r56", [0.4, 0.7], seconds_per_epoch=180)
    out = tmp_path / "plots" / "errors.png"
    argv = ["plot", str(a), str(b / "history.csv"), "--out", str(out)]
    assert cli.main(argv + ["--label", "ResNet-20", "ResNet-56", "--ymax", "30"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"Plot: {out}" in capsys.readouterr().out

    drawn = []
    monkeypatch.setattr(plotting, "save_figure", lambda fig, path: drawn.append(fig) or path)
    assert cli.main(argv + ["--target", "10", "--deadline", "60"]) == 0
    by_epoch, by_minutes = drawn[0].axes
    minutes = {line.get_label(): line for line in by_minutes.get_lines()}
    # default labels are the run folders' names; wall time in minutes
    assert list(minutes["r56 test"].get_xdata()) == pytest.approx([3, 6])
    assert list(minutes["r20 test"].get_ydata()) == pytest.approx([50, 20, 10])
    assert "60 min" in minutes
    drawn.clear()
    # a CSV not named history.csv is labelled by its own name
    named = tmp_path / "paper_r20_history.csv"
    named.write_text((a / "history.csv").read_text())
    assert cli.main(["plot", str(named), str(a), "--out", str(out)]) == 0
    labels = [line.get_label() for line in drawn[0].axes[1].get_lines()]
    assert labels == ["paper_r20_history test", "r20 test"]
    drawn.clear()
    assert cli.main(argv + ["--against", "epoch", "--ymax", "30"]) == 0
    assert len(drawn[0].axes) == 1 and drawn[0].axes[0].get_ylim()[1] == 30


@pytest.mark.parametrize(
    "extra, message",
    [
        (["missing"], "No training history at"),
        (["--label", "only-one"], "--label needs one name per run: 2 runs, 1 labels"),
        (["--label", "x", "x"], "Two runs are labelled 'x'"),
        (["empty"], "has no finished epoch yet"),
        (["--against", "hours"], "invalid choice: 'hours'"),
        (["--ymax", "0"], "argument --ymax: must be above 0. Received: 0"),
        (["--target", "ten"], "argument --target: expected a number. Received: 'ten'"),
        (["--against", "epoch", "--deadline", "60"], "--deadline marks the minutes panel"),
    ],
)
def test_plot_bad_input_is_one_clear_line(tmp_path, capsys, extra, message):
    a = _history(tmp_path / "a", [0.5, 0.6])
    b = _history(tmp_path / "b", [0.4])
    _history(tmp_path / "empty", [])
    runs = [str(a), str(b)]
    if extra[0] in ("missing", "empty"):
        runs, extra = [str(tmp_path / extra[0])], []
    argv = ["plot", *runs, "--out", str(tmp_path / "p.png"), *extra]
    code = None
    try:
        code = cli.main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "p.png").exists()


def test_plot_refuses_an_unwritable_out_and_names_a_bad_history(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = _history(tmp_path / "a", [0.5, 0.6])
    (tmp_path / "a_file").write_text("")
    (tmp_path / "notes.csv").write_text("hello,world\n1,2\n")
    # A header and no rows: it once read as a run before its first epoch.
    (tmp_path / "header.csv").write_text("hello,world\n")
    cases = [
        (["header.csv", "--out", "p.png"], "header.csv is not a training history"),
        ([str(run), "--out", "a"], "--out a is a folder"),
        ([str(run), "--out", "a_file/p.png"], "a_file is a file, not a folder"),
        (["notes.csv", "--out", "p.png"], "notes.csv is not a training history"),
    ]
    for args, message in cases:
        assert cli.main(["plot", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err
    # Nothing half-written is left behind: no temporary PNG, no plot.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "a_file", "header.csv", "notes.csv"]
