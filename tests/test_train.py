"""Recipes, the training loop's outputs, and resuming a killed run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets import machine, plotting, recipes
from keras_resnets.train import train
from keras_resnets.utils import count_params

REPO = Path(__file__).resolve().parents[1]
CIFAR = REPO.parent / "shared" / "cifar10"
needs_cifar = pytest.mark.skipif(not CIFAR.exists(), reason=f"CIFAR-10 copy not at {CIFAR}")


def test_paper_recipe_follows_he_et_al_section_4_2():
    recipe = recipes.get("paper")
    # 64k iterations at batch 128 over 50k images: 391 steps an epoch -> 164 epochs.
    assert recipe.batch_size == 128
    assert recipe.epochs_for(391) == 164
    opt = recipe.make_optimizer(steps_per_epoch=391, epochs=164)
    assert opt.momentum == pytest.approx(0.9)
    lr = opt._learning_rate
    assert float(lr(0)) == pytest.approx(0.1)
    assert float(lr(31999)) == pytest.approx(0.1)
    assert float(lr(32001)) == pytest.approx(0.01)
    assert float(lr(48001)) == pytest.approx(0.001)


def test_paper_recipe_warms_up_resnet110_only():
    warm = (
        recipes.for_model("paper", "cifar_resnet", 110)
        .make_optimizer(steps_per_epoch=391, epochs=164)
        ._learning_rate
    )
    assert float(warm(0)) == pytest.approx(0.01)
    assert float(warm(399)) == pytest.approx(0.01)
    assert float(warm(401)) == pytest.approx(0.1)
    cold = (
        recipes.for_model("paper", "cifar_resnet", 56)
        .make_optimizer(steps_per_epoch=391, epochs=164)
        ._learning_rate
    )
    assert float(cold(0)) == pytest.approx(0.1)


def test_densenet_recipe_divides_at_half_and_three_quarters():
    recipe = recipes.get("densenet")
    assert recipe.batch_size == 64 and recipe.epochs == 300 and recipe.nesterov
    lr = recipe.make_optimizer(steps_per_epoch=100, epochs=300)._learning_rate
    assert float(lr(14999)) == pytest.approx(0.1)
    assert float(lr(15001)) == pytest.approx(0.01)
    assert float(lr(22501)) == pytest.approx(0.001)


def test_fast_recipe_warms_up_then_decays_to_zero():
    lr = recipes.get("fast").make_optimizer(steps_per_epoch=100, epochs=30)._learning_rate
    assert float(lr(0)) == pytest.approx(0.0, abs=1e-6)
    assert float(lr(100)) == pytest.approx(0.1, rel=1e-3)  # halfway through the 2-epoch warm-up
    assert float(lr(200)) == pytest.approx(0.2, rel=1e-3)
    assert float(lr(3000)) == pytest.approx(0.0, abs=1e-4)


def test_fast_recipe_warm_up_is_at_most_a_fifth_of_a_short_run():
    # 2 epochs of 200 steps: the 2-epoch warm-up would be the whole run; it is capped at 80.
    lr = recipes.get("fast").make_optimizer(steps_per_epoch=200, epochs=2)._learning_rate
    assert float(lr(40)) == pytest.approx(0.1, rel=1e-3)
    assert float(lr(80)) == pytest.approx(0.2, rel=1e-3)
    assert float(lr(240)) == pytest.approx(0.1, rel=1e-3)  # halfway through the cosine
    assert float(lr(399)) < 0.001


def test_article_fast_recipe_is_the_fast_recipe_cut_to_nine_epochs():
    fast, short = recipes.get("fast"), recipes.get("article_fast")
    assert short.epochs == 9 and short.batch_size == fast.batch_size == 128
    for field in ("optimizer", "learning_rate", "schedule", "nesterov", "weight_decay"):
        assert getattr(short, field) == getattr(fast, field)
    steps = 391  # 50,000 images at batch 128
    lr = short.make_optimizer(steps_per_epoch=steps, epochs=9)._learning_rate
    assert float(lr(steps)) == pytest.approx(0.2, rel=1e-3)  # the 1-epoch warm-up ends
    # then the cosine over the other 8 epochs, against its formula
    t = (5 * steps - steps) / (8 * steps)
    assert float(lr(5 * steps)) == pytest.approx(0.1 * (1 + np.cos(np.pi * t)), rel=1e-3)
    assert float(lr(9 * steps)) == pytest.approx(0.0, abs=1e-5)


def test_unknown_recipe_is_a_clear_error():
    with pytest.raises(ValueError, match="Valid recipes: .*Received: recipe='sgd'"):
        recipes.get("sgd")


def test_weight_decay_touches_kernels_only():
    model = keras_resnets.build("cifar_resnet", depth=20)
    recipes.apply_weight_decay(model, 1e-4)
    decayed = [v for v in model.trainable_weights if v.regularizer is not None]
    assert decayed and all(v.path.endswith("kernel") for v in decayed)
    for v in model.trainable_weights:
        if v.path.endswith(("gamma", "beta", "bias")):
            assert v.regularizer is None, v.path
    # Coupled L2: the penalty's gradient is weight_decay * w, i.e. the loss is wd/2 * sum(w^2).
    expected = (
        0.5 * 1e-4 * sum(float(np.sum(np.square(keras.ops.convert_to_numpy(v)))) for v in decayed)
    )
    got = float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))
    assert got == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_loss_matches_numpy():
    loss = recipes.get("fast").make_loss()
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    labels = np.array([0, 2])
    eps, k = 0.1, 3
    target = np.full((2, 3), eps / k)
    target[np.arange(2), labels] += 1 - eps
    expected = np.mean(-np.sum(target * np.log(probs), axis=1))
    assert float(loss(labels, probs)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow  # 24 s; the default run stays under 10 minutes on 2 AVX2 cores (CI runs it)
@needs_cifar
def test_train_writes_the_run_folder(tmp_path):
    out = tmp_path / "run"
    summary = train(
        "cifar_resnet",
        model_kwargs={"depth": 20},
        recipe="fast",
        epochs=2,
        batch_size=32,
        data=str(CIFAR),
        out=out,
        train_limit=256,
        test_limit=128,
        verbose=0,
    )
    rows = plotting.read_history(out / "history.csv")
    assert [r["epoch"] for r in rows] == [0, 1]
    assert all(r["wall_time"] > 0 and r["train_images_per_second"] > 0 for r in rows)
    for name in ("best.keras", "last.keras"):
        model = keras.saving.load_model(out / name)
        assert model.output_shape == (None, 10)
    assert (out / "errors.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((out / "tensorboard").rglob("events.out.tfevents.*"))
    (start,) = json.loads((out / "run.json").read_text())["starts"]
    assert start["epoch"] == 0 and start["machine"] == machine.words(machine.describe())
    saved = json.loads((out / "summary.json").read_text())
    for key in (
        "model",
        "params",
        "recipe",
        "epochs",
        "wall_time_seconds",
        "best_test_accuracy",
        "final_test_accuracy",
        "machine",
    ):
        assert key in saved
    assert saved["params"] == summary["params"] == count_params(model)
    # The recipe as it ran: 2 epochs, not the `fast` recipe's default 30.
    assert saved["epochs"] == saved["recipe_settings"]["epochs"] == 2
    assert saved["recipe_settings"]["learning_rate"] == recipes.get("fast").learning_rate
    assert 0.0 <= saved["final_test_accuracy"] <= 1.0
    assert saved["best_test_accuracy"] == max(r["val_accuracy"] for r in rows)


def _train_command(out, epochs):
    return [
        sys.executable,
        "-m",
        "keras_resnets",
        "train",
        "--model",
        "cifar_resnet",
        "--depth",
        "20",
        "--recipe",
        "fast",
        "--epochs",
        str(epochs),
        "--batch-size",
        "32",
        "--data",
        str(CIFAR),
        "--out",
        str(out),
        "--train-limit",
        "320",
        "--test-limit",
        "64",
        "--verbose",
        "2",
        "--seed",
        "3",
    ]


@pytest.mark.slow
@needs_cifar
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    """Kill a real training process after its second epoch, run it again, compare."""
    epochs = 4
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    reference = tmp_path / "reference"
    subprocess.run(
        _train_command(reference, epochs), check=True, env=env, timeout=900, capture_output=True
    )

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_command(out, epochs), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None:
            if len(plotting.read_history(out / "history.csv")) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_after = len(plotting.read_history(out / "history.csv"))
    assert killed_after < epochs
    backed_up = json.loads((out / "backup" / "training_metadata.json").read_text())["epoch"]

    # Resumed without --epochs and --batch-size: the run keeps its own (run.json's settings).
    command = _train_command(out, epochs)
    for flag in ("--epochs", "--batch-size"):
        del command[command.index(flag) : command.index(flag) + 2]
    resumed = subprocess.run(command, env=env, timeout=900, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resuming" in resumed.stdout
    starts = json.loads((out / "run.json").read_text())["starts"]
    assert [s["epoch"] for s in starts] == [0, backed_up]
    rows = plotting.read_history(out / "history.csv")
    assert [r["epoch"] for r in rows] == list(range(epochs))

    expected = keras.saving.load_model(reference / "last.keras")
    got = keras.saving.load_model(out / "last.keras")
    for a, b in zip(expected.weights, got.weights):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a),
            keras.ops.convert_to_numpy(b),
            rtol=1e-4,
            atol=1e-5,
            err_msg=a.path,
        )
    ref_rows = plotting.read_history(reference / "history.csv")
    assert rows[-1]["val_accuracy"] == pytest.approx(ref_rows[-1]["val_accuracy"], abs=1e-6)


def test_mixed_precision_auto_follows_the_hardware(monkeypatch):
    import tensorflow as tf

    from keras_resnets import train as train_lib

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("the GPU decides here, not the CPU")
    # On a machine without a GPU the answer is the CPU's: AMX-BF16 or not.
    monkeypatch.setattr(machine, "cpu_has_native_bf16", lambda backend: True)
    assert train_lib.resolve_mixed_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(machine, "cpu_has_native_bf16", lambda backend: False)
    assert train_lib.resolve_mixed_precision("auto") == "float32"
    assert train_lib.resolve_mixed_precision(None) == "float32"
    assert train_lib.resolve_mixed_precision("mixed_float16") == "mixed_float16"
    with pytest.raises(ValueError, match="Received: mixed_precision='bf16'"):
        train_lib.resolve_mixed_precision("bf16")


@pytest.mark.parametrize("native", [False, True])
def test_named_bfloat16_says_when_it_is_emulated(monkeypatch, capsys, tmp_path, native):
    import keras

    from keras_resnets.training import TrainConfig, distribute, trainer

    monkeypatch.setattr(machine, "has_native_bfloat16", lambda: native)
    config = TrainConfig(mixed_precision="mixed_bfloat16", out=tmp_path / "run")
    previous = keras.config.dtype_policy()
    try:
        trainer._set_up_process(config, distribute.resolve("none"), "mixed_bfloat16")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    said = "no native bfloat16, so it is emulated" in capsys.readouterr().out
    assert said == (not native)


def test_cpu_amx_detection_reads_the_cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags here")
    assert machine.cpu_has_native_bf16("tensorflow") == (
        "amx_bf16" in flags or "avx512_bf16" in flags
    )
    assert machine.cpu_has_native_bf16("jax") == ("amx_bf16" in flags)


def test_train_takes_exactly_the_train_config_fields():
    """train()'s signature and TrainConfig's fields are the same names with the same defaults:
    the CLI fills the one, Python callers the other."""
    import dataclasses
    import inspect

    from keras_resnets.training import TrainConfig

    parameters = inspect.signature(train).parameters
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name != "_"}
    assert {name: p.default for name, p in parameters.items()} == fields
    assert list(parameters) == list(fields)
    with pytest.raises(TypeError):
        TrainConfig("cifar_resnet", 20)  # everything past `model` is keyword-only


@pytest.mark.parametrize(
    "kwargs, message",
    [
        # Text is truthy: restart="False" once cleared a finished run and trained it again,
        # scale_lr="False" cut the rate 32-fold, jit_compile="off" turned XLA on.
        ({"restart": "False"}, "Received: restart='False'"),
        ({"scale_lr": "False"}, "Received: scale_lr='False'"),
        ({"jit_compile": "off"}, "must be True, False or 'auto'. Received: jit_compile='off'"),
        ({"recipe": None}, "Valid names: article, article_fast, densenet, fast, paper"),
        ({"model_kwargs": "depth=8"}, "must be a dict of builder arguments"),
        ({"verbose": True}, "Received: verbose=True"),
        ({"out": None}, "`out` must be a folder's path. Received: out=None"),
    ],
)
def test_train_config_refuses_bad_values_in_one_line(kwargs, message, tmp_path):
    from keras_resnets.training import TrainConfig

    with pytest.raises(ValueError) as error:
        TrainConfig("cifar_resnet", **{"out": tmp_path / "run", **kwargs})
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"batch_size": 0}, "Received: batch_size=0"),
        ({"learning_rate": "0.1"}, "Received: learning_rate='0.1'"),
        ({"learning_rate": -0.1}, "Received: learning_rate=-0.1"),
        ({"optimizer": "adamw"}, "must be one of ['sgd', 'adam']. Received: optimizer='adamw'"),
        ({"schedule": "linear"}, "Received: schedule='linear'"),
        ({"nesterov": "no"}, "Received: nesterov='no'"),
        ({"label_smoothing": 2}, "Received: label_smoothing=2"),
        ({"momentum": 1.0}, "Received: momentum=1.0"),
    ],
)
def test_recipe_fields_are_checked_when_the_recipe_is_made(overrides, message):
    from keras_resnets.training import recipes

    with pytest.raises(ValueError) as error:
        recipes.get("fast", **overrides)
    assert message in str(error.value)


def test_loss_and_scaling_arguments_are_checked():
    from keras_resnets.training import recipes

    with pytest.raises(ValueError, match=r"Received: label_smoothing='0.1'$"):
        recipes.SmoothedSparseCrossentropy("0.1")
    # A negative batch once gave a negative learning rate.
    with pytest.raises(ValueError, match=r"Received: global_batch_size=-128$"):
        recipes.scale_learning_rate(recipes.get("fast"), -128, steps_per_epoch=10)


def test_the_former_module_names_are_aliases():
    from keras_resnets import distribute, training
    from keras_resnets import train as train_module

    assert train_module.train is training.train is training.trainer.train
    assert train_module.TrainConfig is training.TrainConfig
    assert recipes.Recipe is training.recipes.Recipe
    assert recipes.scale_learning_rate is training.recipes.scale_learning_rate
    assert distribute.resolve is training.distribute.resolve
    assert distribute.scale_learning_rate is training.recipes.scale_learning_rate
    assert keras_resnets.training is training


def test_the_cli_fills_the_train_config():
    from keras_resnets import cli, commands

    args = cli._parser().parse_args(
        ["train", "--depth", "56", "--epochs", "3", "--jit-compile", "off", "--pipeline", "numpy"]
    )
    config = commands._train_config(args, {"depth": 56})
    assert (config.model, config.model_kwargs, config.epochs) == ("cifar_resnet", {"depth": 56}, 3)
    assert (config.jit_compile, config.engine, config.out) == (False, "numpy", "runs/run")
    assert cli._parser().parse_args(["train"]).jit_compile == "auto"


def test_run_json_records_each_start_and_a_start_it_never_saw(tmp_path):
    from keras_resnets.training.run_folder import RunFolder

    folder = RunFolder(tmp_path)
    what = dict(
        model="resnet",
        model_kwargs={"depth": 25},
        recipe="article_fast",
        network="n",
        class_names=["a", "b"],
    )
    # A run begun before run.json recorded its starts, resumed at epoch 4 on another source.
    (tmp_path / "run.json").write_text(json.dumps({**what, "data": "png archives"}))
    folder.write_run(**what, data="jpeg archives", epoch=4)
    folder.write_run(**what, data="jpeg archives", epoch=7)
    starts = json.loads((tmp_path / "run.json").read_text())["starts"]
    here = machine.words(machine.describe())
    assert [(s["epoch"], s["machine"], s["data"]) for s in starts] == [
        (0, None, "png archives"),
        (4, here, "jpeg archives"),
        (7, here, "jpeg archives"),
    ]
    assert starts[0]["time"] is None and all(s["time"].endswith("+00:00") for s in starts[1:])


def _started_run(out, **settings):
    """A run folder as a run leaves it after its second epoch: run.json with its settings,
    and the backup's epoch."""
    (out / "backup").mkdir(parents=True)
    (out / "backup" / "training_metadata.json").write_text(json.dumps({"epoch": 2}))
    run = {"model": "cifar_resnet", "model_kwargs": {"depth": 20}, "recipe": "fast"}
    (out / "run.json").write_text(json.dumps({**run, "settings": settings}))


def test_a_resumed_run_keeps_the_counts_it_left_to_their_defaults(tmp_path):
    from keras_resnets.training import trainer
    from keras_resnets.training.config import TrainConfig

    _started_run(tmp_path, epochs=60, batch_size=64, steps_per_epoch=None, seed=3)
    config = trainer._resumed(TrainConfig(out=tmp_path, seed=3))
    assert (config.epochs, config.batch_size, config.steps_per_epoch) == (60, 64, None)
    # Given counts are the caller's; a restart starts from the defaults.
    assert trainer._resumed(TrainConfig(out=tmp_path, epochs=70)).epochs == 70
    assert trainer._resumed(TrainConfig(out=tmp_path, restart=True)).epochs is None


@pytest.mark.parametrize(
    "changed, message",
    [
        (
            {"seed": 1},
            "started with seed=3; resuming it with other values would change it "
            "midway: pass the ones it started with (--seed 3), or restart it (--restart). "
            "Received: seed=1",
        ),
        (
            {"mixed_precision": None},
            "started with mixed_precision='mixed_bfloat16'; resuming "
            "it with other values would change it midway: pass the ones it started with "
            "(--mixed-precision mixed_bfloat16), or restart it (--restart). Received: "
            "mixed_precision='float32'",
        ),
        (
            {"batch_size": 32, "train_limit": 500},
            "started with batch_size=64, train_limit=None;"
            " resuming it with other values would change it midway: pass the ones it started "
            "with (--batch-size 64, no --train-limit)",
        ),
    ],
)
def test_a_run_resumed_with_other_settings_is_refused_before_it_loads_anything(
    tmp_path, changed, message
):
    settings = dict(
        epochs=60,
        batch_size=64,
        steps_per_epoch=None,
        seed=3,
        mixed_precision="mixed_bfloat16",
        train_limit=None,
        test_limit=None,
        scale_lr=False,
    )
    _started_run(tmp_path, **settings)

    def resume(**given):  # no data anywhere: what passes the settings fails on the data
        return train(
            "cifar_resnet", model_kwargs={"depth": 20}, out=tmp_path, data="nowhere.npz", **given
        )

    with pytest.raises(ValueError) as info:
        resume(**{"seed": 3, "mixed_precision": "mixed_bfloat16", **changed})
    assert message in str(info.value)
    # More epochs are not another run: it goes on to the data, having set bfloat16 up.
    with pytest.raises(Exception) as info:
        resume(seed=3, mixed_precision="mixed_bfloat16", epochs=90)
    assert keras.config.dtype_policy().name == "float32"  # the caller's policy, restored
    assert "nowhere.npz" in str(info.value)
