"""Training with plain `model.fit`: a recipe, CIFAR-10 pipelines and a run folder.

    >>> summary = keras_resnets.train.train("cifar_resnet", model_kwargs={"depth": 20},
    ...                                     recipe="fast", data="../shared/cifar10", out="runs/r20")

The run folder holds everything a person or a later process needs:

    history.csv        one row per epoch (Keras's CSVLogger), with wall-clock time
    tensorboard/       TensorBoard logs
    best.keras         the model with the best test accuracy so far
    last.keras         the model after the last finished epoch
    backup/            BackupAndRestore's state: a killed run resumes from it
    errors.png         train and test error against epoch, as in the papers' figures
    run.json           what the run trains (model, builder arguments, recipe, class names,
                       data source, command line), written before the first epoch
    summary.json       model, parameters, recipe, epochs, wall time, accuracies, machine

A run folder holds one run: resuming it with another model, builder arguments or recipe is
refused (pass another `out`, or `restart=True`), and re-running a finished run reports it
without training.
"""

import ast
import csv
import inspect
import json
import numbers
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np

from keras_resnets import data as data_lib
from keras_resnets import distribute as distribute_lib
from keras_resnets import machine, plotting
from keras_resnets import recipes as recipes_lib
from keras_resnets.models.registry import build, get_builder
from keras_resnets.utils import count_params

MIXED_PRECISION = (None, "float32", "mixed_float16", "mixed_bfloat16", "auto")


def resolve_mixed_precision(mixed_precision):
    """The Keras dtype policy name for `mixed_precision` ("auto": mixed_bfloat16 where the
    hardware has native bfloat16, float32 elsewhere)."""
    if mixed_precision not in MIXED_PRECISION:
        raise ValueError(
            f"`mixed_precision` must be one of {list(MIXED_PRECISION)}. "
            f"Received: mixed_precision={mixed_precision!r}"
        )
    if mixed_precision == "auto":
        return "mixed_bfloat16" if machine.has_native_bfloat16() else "float32"
    return "float32" if mixed_precision is None else mixed_precision


class WallClock(keras.callbacks.Callback):
    """Adds `wall_time` (seconds since the run first started, across resumes) and
    `train_images_per_second` (training steps only, evaluation excluded) to the epoch logs,
    so CSVLogger records them. Keras has no callback for either."""

    def __init__(self, *, images_per_epoch, elapsed_before=0.0):
        super().__init__()
        self.images_per_epoch = images_per_epoch
        self.elapsed_before = elapsed_before

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._train_seconds = time.perf_counter() - self._epoch_start

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        train_seconds = getattr(self, "_train_seconds", time.perf_counter() - self._epoch_start)
        logs["wall_time"] = self.elapsed_before + time.perf_counter() - self._start
        logs["train_images_per_second"] = self.images_per_epoch / max(train_seconds, 1e-9)


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Saves `last.keras` every epoch and `best.keras` on a new best `monitor`, atomically.

    Keras's ModelCheckpoint writes in place, so a kill during the write leaves a truncated
    file where the previous good one was; here the write goes to a temporary file that then
    replaces the target in one `os.replace`.
    """

    def __init__(self, directory, *, monitor="val_accuracy", best=-np.inf):
        super().__init__()
        self.directory = Path(directory)
        self.monitor = monitor
        self.best = best

    def _save(self, name):
        target = self.directory / name
        tmp = self.directory / f".{name}.tmp.keras"
        self.model.save(tmp)
        os.replace(tmp, target)

    def on_epoch_end(self, epoch, logs=None):
        self._save("last.keras")
        value = (logs or {}).get(self.monitor)
        if value is not None and value > self.best:
            self.best = value
            self._save("best.keras")


class PlotErrors(keras.callbacks.Callback):
    """Redraws `errors.png` from `history.csv` after each epoch."""

    def __init__(self, history_path, plot_path, title):
        super().__init__()
        self.history_path, self.plot_path, self.title = history_path, plot_path, title

    def on_epoch_end(self, epoch, logs=None):
        plotting.plot_history(self.history_path, self.plot_path, title=self.title)


def _resume_epoch(backup_dir):
    """The epoch BackupAndRestore will resume at: it records it in training_metadata.json."""
    path = Path(backup_dir) / "training_metadata.json"
    if not path.exists():
        return 0
    try:
        return int(json.loads(path.read_text())["epoch"])
    except (ValueError, KeyError):
        return 0


def _trim_history(history_path, initial_epoch):
    """Drop rows of epochs that will be trained again (a kill after CSVLogger wrote a row but
    before the backup saved), so the resumed history has each epoch once."""
    path = Path(history_path)
    if not path.exists():
        return 0.0, -np.inf
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < initial_epoch]
    if not rows:
        path.unlink()
        return 0.0, -np.inf
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    best = max(float(r.get("val_accuracy") or -np.inf) for r in rows)
    return float(rows[-1].get("wall_time") or 0.0), best


def builder_arguments(model):
    """The keyword arguments that the registered builder `model` accepts, following its
    `**kwargs` into the builder it passes them to (`cifar_resnet` -> `cifar_resnet_family`);
    None where they cannot be told (no source to read)."""
    return _accepted_keywords(get_builder(model))


def _accepted_keywords(function):
    parameters = inspect.signature(function).parameters.values()
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    var_keyword = next((p.name for p in parameters if p.kind is p.VAR_KEYWORD), None)
    if var_keyword is None:
        return names
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None
    closure = inspect.getclosurevars(function)
    scope = {**closure.globals, **closure.nonlocals}
    for node in ast.walk(tree.body[0]):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        # `kwargs.pop("compression", 0.5)`: a keyword the builder takes out of **kwargs.
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == var_keyword
            and func.attr in ("pop", "get")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(node.args[0].value)
        # `family(depth, shortcut="none", **kwargs)`: what `family` takes, less what is set.
        if not any(
            k.arg is None and isinstance(k.value, ast.Name) and k.value.id == var_keyword
            for k in node.keywords
        ):
            continue
        callee = scope.get(func.id) if isinstance(func, ast.Name) else None
        inner = _accepted_keywords(callee) if callable(callee) else None
        if inner is None:
            return None
        positional = [
            p.name
            for p in inspect.signature(callee).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        names |= inner - {k.arg for k in node.keywords if k.arg} - set(positional[: len(node.args)])
    return names


def _normalization(arrays, valid):
    """`include_preprocessing` as the data's `(mean, std)`, where the builder takes it."""
    if valid is None or "include_preprocessing" not in valid:
        return {}
    return {"include_preprocessing": arrays.dataset.normalization}


def _check_count(name, value, *, minimum=1):
    """`value` is None (the default) or an integer of at least `minimum`: 0 never means
    "the default"."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        raise ValueError(f"`{name}` must be {what} or None. Received: {name}={value!r}")


# What a run writes into its folder; `restart` removes these and nothing else.
RUN_FILES = (
    "backup",
    "tensorboard",
    "history.csv",
    "best.keras",
    "last.keras",
    "errors.png",
    "run.json",
    "summary.json",
)


def _restart(out):
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def check_run_folder(
    out, model, model_kwargs, recipe, *, remedy="pass another `out`, or restart=True to replace it"
):
    """Raise ValueError if the run folder `out` holds a run of another model, other builder
    arguments or another recipe: resuming it, Keras would fail deep in the restore ("A total
    of 45 objects could not be loaded")."""
    previous = _read_json(Path(out) / "run.json")
    if previous is None:
        return
    current = {"model": model, "model_kwargs": _jsonable(model_kwargs), "recipe": recipe}
    before = {key: previous.get(key) for key in current}
    if before == current:
        return
    network = previous.get("network") or _describe(before["model"], before["model_kwargs"])
    raise ValueError(
        f"{out} holds a {network} run ({_describe(before['model'], before['model_kwargs'])}, "
        f"recipe {before['recipe']!r}); {remedy}. Received: "
        f"{_describe(model, current['model_kwargs'])}, recipe {recipe!r}"
    )


def _jsonable(value):
    return json.loads(json.dumps(value))


def _describe(model, model_kwargs):
    arguments = ", ".join(f"{k}={v!r}" for k, v in (model_kwargs or {}).items())
    return f"{model}({arguments})"


def _check_input_shape(model_kwargs, image_shape, class_names):
    """`input_shape` and `classes` may be given, but must fit the data."""
    if model_kwargs.get("input_shape") is not None:
        shape = tuple(model_kwargs["input_shape"])
        if len(shape) != len(image_shape) or any(
            given is not None and given != size for given, size in zip(shape, image_shape)
        ):
            raise ValueError(
                f"input_shape={shape} does not fit the data's {tuple(image_shape)} images "
                f"(None fits any size). Received: input_shape={model_kwargs['input_shape']!r}"
            )
        model_kwargs["input_shape"] = shape
    if "classes" in model_kwargs and model_kwargs["classes"] != len(class_names):
        raise ValueError(
            f"classes={model_kwargs['classes']!r}, but the data has {len(class_names)} classes "
            f"({', '.join(class_names)}). Received: classes={model_kwargs['classes']!r}"
        )


def train(
    model="cifar_resnet",
    *,
    model_kwargs=None,
    recipe="fast",
    epochs=None,
    steps_per_epoch=None,
    batch_size=None,
    data=None,
    out="runs/run",
    restart=False,
    seed=0,
    mixed_precision=None,
    jit_compile="auto",
    train_limit=None,
    test_limit=None,
    distribute="none",
    scale_lr=False,
    engine=None,
    verbose=1,
):
    """Train a registered model on CIFAR-10 with `model.fit`; return the run's summary dict.

    Running it again with the same `out` resumes a killed run where its last finished
    epoch left it (`keras.callbacks.BackupAndRestore`), with the same data order and
    augmentation as an uninterrupted run, so the result is the same.

    Args:
        model: a name from `keras_resnets.list_models()`. Defaults to "cifar_resnet".
        model_kwargs: dict of builder arguments (`depth`, `shortcut`, ...). `input_shape` and
            `classes` default to the data's, and must fit it.
        recipe: a name from `keras_resnets.recipes.RECIPES` or a `Recipe`. Defaults to "fast".
        epochs: a positive integer. Defaults to None: the recipe's.
        steps_per_epoch: cap on the steps of an epoch (a short run), positive. Defaults to
            None: a full pass.
        batch_size: positive. Defaults to None: the recipe's.
        data: the CIFAR-10 source (see `keras_resnets.data.load_arrays`). Defaults to
            `$KERAS_RESNETS_DATA`, else a search.
        out: the run folder. Defaults to "runs/run". It holds one run: resuming it with
            another model, builder arguments or recipe raises ValueError.
        restart: clear `out` of a previous run (the files in `RUN_FILES` only) and train from
            the start. Defaults to False: resume.
        seed: seeds the weights, the data order and the augmentation. Defaults to 0.
        mixed_precision: None (float32), "mixed_float16", "mixed_bfloat16" or "auto":
            mixed_bfloat16 where the hardware computes bfloat16 natively (AMX or AVX512_BF16
            CPUs, Ampere and later GPUs, TPUs; see `keras_resnets.machine`), float32
            elsewhere.
        jit_compile: True, False or "auto", as in `model.compile`: compile the train step
            with XLA. Defaults to "auto", Keras's choice: on for JAX (without it a JAX step
            runs op by op) and for TensorFlow on a GPU, off for TensorFlow on a CPU (where XLA
            does not use oneDNN's convolutions and trains about 2x slower) and for PyTorch.
        train_limit, test_limit: use only this many images (quick runs and tests), positive.
            Defaults to None: all.
        distribute: "none", "mirrored" (the GPUs of this host), "multi_worker" (hosts listed
            in `TF_CONFIG`), a `tf.distribute.Strategy` or a `keras.distribution`
            DataParallel/ModelParallel; see `keras_resnets.distribute`. `batch_size` is the
            global batch, split across the replicas.
        scale_lr: apply the linear scaling rule with warm-up (Goyal et al. 2017): learning
            rate times `batch_size / recipe.batch_size`. Defaults to False.
        engine: the input pipeline, "tf.data" or "numpy" (see `keras_resnets.data`).
            Defaults to tf.data where TensorFlow is installed, else NumPy.
        verbose: Keras's progress bar (1), one line per epoch (2) or silent (0).
    """
    for name, value in (
        ("epochs", epochs),
        ("steps_per_epoch", steps_per_epoch),
        ("batch_size", batch_size),
        ("train_limit", train_limit),
        ("test_limit", test_limit),
    ):
        _check_count(name, value)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"`seed` must be an integer of at least 0. Received: seed={seed!r}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"`verbose` must be 0, 1 or 2. Received: verbose={verbose!r}")
    model_kwargs = dict(model_kwargs or {})
    valid = builder_arguments(model)
    unknown = sorted(set(model_kwargs) - valid) if valid is not None else []
    if unknown:
        raise ValueError(
            f"{model} takes no argument {', '.join(unknown)}. Its arguments: "
            f"{', '.join(sorted(valid))}. Received: model_kwargs={model_kwargs}"
        )
    for folder in (Path(out), *Path(out).parents):
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(
                    f"`out` must be a folder, and {folder} is a file. Received: out={str(out)!r}"
                )
            break
    policy = resolve_mixed_precision(mixed_precision)
    if isinstance(recipe, str):
        recipe = recipes_lib.for_model(recipe, model, model_kwargs.get("depth"))
    batch_size_is_default = batch_size is None
    if batch_size_is_default:
        batch_size = recipe.batch_size
    # Before anything runs TensorFlow: MultiWorkerMirroredStrategy must be made at start-up.
    dist = distribute_lib.resolve(distribute)
    dist.check_batch_size(batch_size)
    if restart and dist.is_chief:
        _restart(Path(out))
    check_run_folder(out, model, model_kwargs, recipe.name)
    # The chief writes `out`; other workers write into a temporary folder (see distribute.py).
    out = dist.writable_run_folder(out)
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy(policy)
    if verbose and mixed_precision == "auto":
        print(f"--mixed-precision auto: {policy}")
    notice = machine.onednn_notice() if verbose and dist.is_chief else None
    if notice:
        print(notice)

    arrays = data_lib.load_arrays(data)
    x_train, y_train, x_test, y_test = arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test
    if train_limit is not None:
        x_train, y_train = data_lib.balanced_subset(x_train, y_train, train_limit)
    if test_limit is not None:
        x_test, y_test = data_lib.balanced_subset(x_test, y_test, test_limit)
    _check_input_shape(model_kwargs, x_train.shape[1:], arrays.class_names)
    full_steps = len(x_train) // batch_size
    if full_steps < 1:
        default = f" (the {recipe.name} recipe's)" if batch_size_is_default else ""
        raise ValueError(
            f"batch_size={batch_size}{default} is larger than the {len(x_train)} training "
            f"images: pass a smaller batch size. Received: batch_size={batch_size}"
        )
    steps = full_steps if steps_per_epoch is None else min(steps_per_epoch, full_steps)
    if scale_lr:
        recipe = distribute_lib.scale_learning_rate(recipe, batch_size, steps_per_epoch=steps)
    if epochs is None:
        epochs = recipe.epochs_for(steps)

    backup_dir = out / "backup"
    initial_epoch = _resume_epoch(backup_dir)
    dist.check_same(initial_epoch, "the epoch to resume at")
    finished = _read_json(out / "summary.json") if initial_epoch >= epochs else None
    if finished is not None and finished.get("epochs") == epochs:
        print(
            f"{out} is already complete: {finished.get('model')} trained {epochs} of "
            f"{epochs} epochs, test accuracy {finished.get('final_test_accuracy', 0):.4f} "
            f"(best {finished.get('best_test_accuracy', 0):.4f}). Pass more epochs (--epochs) to "
            "go on, or restart (--restart) to train it again."
        )
        dist.close()
        return finished
    if initial_epoch > epochs:
        raise ValueError(
            f"{out} has trained {initial_epoch} epochs already, more than the {epochs} asked "
            f"for: pass at least {initial_epoch} epochs (--epochs), or restart (--restart). "
            f"Received: epochs={epochs}"
        )
    history_path = out / "history.csv"
    elapsed_before, best_before = _trim_history(history_path, initial_epoch)
    if 0 < initial_epoch < epochs and verbose:
        print(f"Resuming {out} at epoch {initial_epoch + 1} of {epochs}.")

    # The training stream is indexed by epoch, so a resumed run sees exactly the batches the
    # uninterrupted run would have seen from `initial_epoch` on.
    engine = data_lib.resolve_engine(engine)
    train_ds = data_lib.make_pipeline(
        x_train,
        y_train,
        batch_size=batch_size,
        training=True,
        seed=seed,
        first_epoch=initial_epoch,
        steps_per_epoch=steps,
        engine=engine,
    )
    test_ds = data_lib.make_pipeline(x_test, y_test, batch_size=256, training=False, engine=engine)
    train_ds, test_ds = dist.distribute_datasets(train_ds, test_ds)

    with dist.scope():
        # `input_shape` and `classes` given in model_kwargs (checked against the data) win.
        net = build(
            model,
            **{
                "input_shape": x_train.shape[1:],
                "classes": len(arrays.class_names),
                # The data's own statistics (CIFAR-100's, a custom set's), not the model's.
                **_normalization(arrays, valid),
                **model_kwargs,
            },
        )
        net.compile(
            **recipe.compile_kwargs(
                net, steps_per_epoch=steps, epochs=epochs, jit_compile=jit_compile
            )
        )
    if isinstance(train_ds, data_lib.ArrayBatches):  # its epoch follows fit's (resumes too)
        callbacks = [train_ds.epoch_callback()]
    else:
        callbacks = []
    callbacks += dist.callbacks() + [  # first: the statistics are averaged before any save
        WallClock(images_per_epoch=steps * batch_size, elapsed_before=elapsed_before),
        # delete_checkpoint=False: re-running a finished run re-reports it instead of retraining.
        keras.callbacks.BackupAndRestore(
            str(backup_dir), double_checkpoint=True, delete_checkpoint=False
        ),
        keras.callbacks.CSVLogger(str(history_path), append=True),
        AtomicModelCheckpoint(out, best=best_before),
        PlotErrors(history_path, out / "errors.png", title=net.name),
    ]
    if data_lib._tensorflow() is not None:  # Keras's TensorBoard writes through tf.summary
        callbacks.insert(-2, keras.callbacks.TensorBoard(str(out / "tensorboard")))
    elif verbose:
        print(
            "TensorBoard logs skipped: Keras writes them through TensorFlow, which is not "
            "installed here. history.csv and errors.png hold the curves."
        )
    (out / "run.json").write_text(
        json.dumps(
            {
                "model": model,
                "model_kwargs": model_kwargs,
                "recipe": recipe.name,
                "network": net.name,
                "class_names": list(arrays.class_names),
                "data": arrays.source,
                "argv": sys.argv,
            },
            indent=2,
        )
    )

    start = time.perf_counter()
    with dist.scope():  # keras.distribution (JAX) lays out each batch within its scope
        history = net.fit(
            train_ds,
            epochs=epochs,
            steps_per_epoch=steps,
            validation_data=test_ds,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles, by (seed, epoch)
            verbose=verbose,
        )
        _, final_accuracy = net.evaluate(test_ds, verbose=0)
    rows = plotting.read_history(history_path)
    summary = {
        "model": net.name,
        "registry_name": model,
        "model_kwargs": model_kwargs,
        "params": count_params(net),
        "recipe": recipe.name,
        "recipe_settings": {k: v for k, v in vars(recipe).items() if k != "description"},
        "epochs": epochs,
        "steps_per_epoch": steps,
        "batch_size": batch_size,
        "seed": seed,
        "mixed_precision": policy,
        "jit_compile": bool(net.jit_compile),  # what "auto" became
        "pipeline": engine,
        "data": arrays.source,
        "num_train": len(x_train),
        "num_test": len(x_test),
        "wall_time_seconds": rows[-1]["wall_time"] if rows else time.perf_counter() - start,
        "final_test_accuracy": float(final_accuracy),
        "best_test_accuracy": max((r["val_accuracy"] for r in rows), default=float("nan")),
        "train_images_per_second_median": float(
            np.median([r["train_images_per_second"] for r in rows])
        )
        if rows
        else None,
        "machine": machine.describe(),
        "distribute": dist.describe(),
        "history": history.history and str(history_path),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    # The result is printed whatever `verbose` says: it only silences Keras's progress output.
    print(
        f"Test accuracy: {final_accuracy:.4f} (best {summary['best_test_accuracy']:.4f}); "
        f"outputs in {out}/"
    )
    dist.close()
    return summary
