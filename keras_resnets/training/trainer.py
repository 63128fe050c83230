"""`train()`: a registered model trained with plain `model.fit`, each step in its own module.

resolve the config        config.py (TrainConfig), precision.py, recipes.py
choose the distribution   distribute/
open the run folder       run_folder.py (restart, one run per folder, resume)
load the data             inputs.py (arrays, limits, steps, pipelines)
build and compile         keras_resnets.models, the recipe's compile arguments
fit                       callbacks.py
write the summary         run_folder.py
"""

import contextlib
import dataclasses
import time
from pathlib import Path

import keras
import numpy as np

from keras_resnets import data as data_lib
from keras_resnets import machine, plotting
from keras_resnets.accounting import count_params
from keras_resnets.models.registry import build
from keras_resnets.training import callbacks as callbacks_lib
from keras_resnets.training import distribute, inputs, precision, recipes, run_folder
from keras_resnets.training.config import COUNTS, TrainConfig, builder_arguments


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
    """Train a registered model on a CIFAR-style image set (CIFAR-10 by default, CIFAR-100, a
    folder of class folders) with `model.fit`; return the run's summary dict.

    Running it again with the same `out` resumes a killed run where its last finished
    epoch left it (`keras.callbacks.BackupAndRestore`), with the same data order and
    augmentation as an uninterrupted run, so the result is the same. The run folder's
    files are listed in `keras_resnets.training.run_folder`.

    Args:
        model: a name from `keras_resnets.list_models()`. Defaults to "cifar_resnet".
        model_kwargs: dict of builder arguments (`depth`, `shortcut`, ...). `input_shape` and
            `classes` default to the data's, and must fit it.
        recipe: a name from `keras_resnets.training.recipes.RECIPES` or a `Recipe`. Defaults
            to "fast".
        epochs: a positive integer. Defaults to None: the recipe's.
        steps_per_epoch: cap on the steps of an epoch (a short run), positive. Defaults to
            None: a full pass.
        batch_size: positive. Defaults to None: the recipe's.
        data: the data source (see `keras_resnets.data.load_arrays`). Defaults to
            `$KERAS_RESNETS_DATA`, else a search.
        out: the run folder. Defaults to "runs/run". It holds one run: resuming it with
            another model, builder arguments or recipe raises ValueError.
        restart: clear `out` of a previous run (the files in `run_folder.RUN_FILES` only)
            and train from the start. Defaults to False: resume.
        seed: seeds the weights, the data order and the augmentation. Defaults to 0.
        mixed_precision: None (float32), "mixed_float16", "mixed_bfloat16" or "auto":
            mixed_bfloat16 where the hardware computes bfloat16 natively (AMX or AVX512_BF16
            CPUs, Ampere and later GPUs, TPUs; see `keras_resnets.machine`), float32
            elsewhere. The run sets Keras's global dtype policy to it, and gives the
            caller's back when it ends, even by an error.
        jit_compile: True, False or "auto", as in `model.compile`: compile the train step
            with XLA. Defaults to "auto", Keras's choice: on for JAX (without it a JAX step
            runs op by op) and for TensorFlow on a GPU, off for TensorFlow on a CPU (where XLA
            does not use oneDNN's convolutions; docs/benchmarks.md) and for PyTorch.
        train_limit, test_limit: use only this many images (quick runs and tests), positive.
            Defaults to None: all.
        distribute: "none", "mirrored" (the GPUs of this host), "multi_worker" (hosts listed
            in `TF_CONFIG`), a `tf.distribute.Strategy` or a `keras.distribution`
            DataParallel/ModelParallel; see `keras_resnets.training.distribute`. `batch_size`
            is the global batch, split across the replicas.
        scale_lr: apply the linear scaling rule with warm-up (Goyal et al. 2017): learning
            rate times `batch_size / recipe.batch_size`. Defaults to False.
        engine: the input pipeline, "tf.data" or "numpy" (see `keras_resnets.data`).
            Defaults to tf.data where TensorFlow is installed, else NumPy.
        verbose: Keras's progress bar (1), one line per epoch (2) or silent (0).
    """
    # The arguments are the TrainConfig's fields (tests/test_train.py checks they agree).
    return run(TrainConfig(**locals()))


def run(config):
    """Train as the `TrainConfig` `config` says; return the run's summary dict (see `train`)."""
    config = _resumed(config)
    policy = precision.resolve_mixed_precision(config.mixed_precision)
    recipe = config.resolve_recipe()
    batch_size = config.batch_size or recipe.batch_size
    settings = {
        "batch_size": batch_size,
        "steps_per_epoch": config.steps_per_epoch,
        "seed": config.seed,
        "mixed_precision": policy,
        "train_limit": config.train_limit,
        "test_limit": config.test_limit,
        "scale_lr": config.scale_lr,
    }
    # Before anything runs TensorFlow: MultiWorkerMirroredStrategy must be made at start-up.
    dist = distribute.resolve(config.distribute)
    dist.check_batch_size(batch_size)
    # The run sets Keras's global dtype policy; the caller gets theirs back, however it ends.
    previous_policy = keras.config.dtype_policy()
    out_existed = Path(config.out).exists()
    try:
        return _run(config, dist, policy=policy, recipe=recipe, settings=settings)
    except BaseException:
        # A start that failed (no data, a bad depth) leaves no empty folder. The chief's
        # alone: a worker must never remove the folder the chief is about to fill.
        if not out_existed and dist.is_chief:
            with contextlib.suppress(OSError):
                Path(config.out).rmdir()  # only if empty: a started run keeps its files
        raise
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        dist.close()


def _resumed(config):
    """`config` with the counts it leaves to their defaults (None: `epochs`, `batch_size`,
    ...) taken from the run it resumes, as that run started (run.json's settings), so that
    the same command without `--epochs 60` resumes a 60-epoch run as one."""
    if config.restart:
        return config
    recorded = run_folder.recorded_settings(config.out)
    own = {
        k: recorded[k] for k in COUNTS if getattr(config, k) is None and recorded.get(k) is not None
    }
    return dataclasses.replace(config, **own) if own else config


def _run(config, dist, *, policy, recipe, settings):
    batch_size = settings["batch_size"]
    folder = _open_run_folder(config, dist, recipe, settings)
    _set_up_process(config, dist, policy)

    data = inputs.load(config.data, train_limit=config.train_limit, test_limit=config.test_limit)
    model_kwargs = inputs.model_kwargs_for(config.model_kwargs, data)
    default_batch = recipe.name if config.batch_size is None else None
    steps = inputs.steps_per_epoch(
        len(data.x_train), batch_size, config.steps_per_epoch, default_from=default_batch
    )
    if config.scale_lr:
        recipe = recipes.scale_learning_rate(recipe, batch_size, steps_per_epoch=steps)
    epochs = config.epochs or recipe.epochs_for(steps)

    initial_epoch = folder.resume_epoch()
    dist.check_same(initial_epoch, "the epoch to resume at")
    finished = folder.finished(initial_epoch, epochs)
    if finished is not None:
        return finished
    elapsed_before, best_before = folder.trim_history(initial_epoch)
    if 0 < initial_epoch < epochs and config.verbose:
        print(f"Resuming {folder.path} at epoch {initial_epoch + 1} of {epochs}.")
        started_for = run_folder.recorded_settings(config.out).get("epochs")
        if started_for and started_for != epochs:
            print(
                f"It started as a {started_for}-epoch run: its learning-rate schedule now "
                f"spans {epochs} epochs."
            )

    engine = data_lib.resolve_engine(config.engine)
    train_ds, test_ds = dist.distribute_datasets(
        *inputs.pipelines(
            data,
            batch_size=batch_size,
            seed=config.seed,
            first_epoch=initial_epoch,
            steps_per_epoch=steps,
            engine=engine,
        )
    )
    with dist.scope():
        # `input_shape` and `classes` given in model_kwargs (checked against the data) win.
        defaults = {
            "input_shape": data.x_train.shape[1:],
            "classes": len(data.class_names),
            **inputs.normalization(builder_arguments(config.model), data),
        }
        net = build(config.model, **{**defaults, **model_kwargs})
        net.compile(
            **recipe.compile_kwargs(
                net, steps_per_epoch=steps, epochs=epochs, jit_compile=config.jit_compile
            )
        )
    callbacks = callbacks_lib.run_callbacks(
        folder,
        title=net.name,
        images_per_epoch=steps * batch_size,
        elapsed_before=elapsed_before,
        best_before=best_before,
        # First: the pipeline's epoch; the statistics averaged before any save.
        first=inputs.epoch_callbacks(train_ds) + dist.callbacks(),
        verbose=config.verbose,
    )
    folder.write_run(
        model=config.model,
        model_kwargs=model_kwargs,
        recipe=recipe.name,
        network=net.name,
        class_names=data.class_names,
        data=data.source,
        epoch=initial_epoch,
        settings={**settings, "epochs": epochs},
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
            verbose=config.verbose,
        )
        _, final_accuracy = net.evaluate(test_ds, verbose=0)
    rows = plotting.read_history(folder.history)
    summary = folder.write_summary(
        {
            "model": net.name,
            "registry_name": config.model,
            "model_kwargs": model_kwargs,
            "params": count_params(net),
            "recipe": recipe.name,
            # The recipe as it ran: `epochs` is the run's, not the recipe's default.
            "recipe_settings": {
                **{k: v for k, v in vars(recipe).items() if k != "description"},
                "epochs": epochs,
            },
            "epochs": epochs,
            "steps_per_epoch": steps,
            "batch_size": batch_size,
            "seed": config.seed,
            "mixed_precision": policy,
            "jit_compile": bool(net.jit_compile),  # what "auto" became
            "pipeline": engine,
            "data": data.source,
            "num_train": len(data.x_train),
            "num_test": len(data.x_test),
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
            "history": history.history and str(folder.history),
        }
    )
    # The result is printed whatever `verbose` says: it only silences Keras's progress output.
    print(
        f"Test accuracy: {final_accuracy:.4f} (best {summary['best_test_accuracy']:.4f}); "
        f"outputs in {folder.path}/"
    )
    return summary


def _open_run_folder(config, dist, recipe, settings):
    """The `RunFolder` this process writes: `out` cleared first on a restart (by the chief),
    refused if it holds another run, or a started run with other `settings`."""
    if config.restart and dist.is_chief:
        run_folder.restart(config.out)
    run_folder.check_run_folder(config.out, config.model, config.model_kwargs, recipe.name)
    if not config.restart and run_folder.RunFolder(config.out).resume_epoch():
        run_folder.check_settings(config.out, settings)
    # The chief writes `out`; other workers write into a temporary folder (see distribute/).
    return run_folder.RunFolder(dist.writable_run_folder(config.out))


def _set_up_process(config, dist, policy):
    """Seeds and the dtype policy, and a line on each choice the user may want to know."""
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(policy)
    if config.verbose and config.mixed_precision == "auto":
        print(f"--mixed-precision auto: {policy}")
    elif (
        config.verbose
        and dist.is_chief
        and policy == "mixed_bfloat16"
        and not machine.has_native_bfloat16()
    ):
        # Asked for by name: it runs, but the user should know what it costs here.
        print(
            "mixed_bfloat16: this hardware has no native bfloat16, so it is emulated, several "
            "times slower than float32 (precision 'auto' picks float32 here)."
        )
    notice = machine.onednn_notice() if config.verbose and dist.is_chief else None
    if notice:
        print(notice)
