"""What each `keras-resnets` command does once cli.py has parsed its options.

Each command checks its arguments in the CLI's words (the option names, not the library's
argument names), then starts Keras (`_start_keras`: TensorFlow's oneDNN as `--onednn`
says, its log lines hidden unless `--tf-logs`) and calls the library: `train` fills a
`keras_resnets.training.TrainConfig` and runs it, `export` calls `keras_resnets.export.export`,
`evaluate` reports a checkpoint's test accuracy and confusion matrix, `plot` draws runs'
histories (matplotlib only, no Keras). Nothing imports Keras before the checks, so an
argument error answers at once.
"""

import dataclasses
import json
import os
import sys
import zipfile
from pathlib import Path

# The options that set a builder argument, for messages about them.
_MODEL_OPTIONS = {"depth": "--depth", "shortcut": "--shortcut", "growth_rate": "--growth-rate"}
# Where `train --export NAME` writes (export's default `--base`).
EXPORT_BASE = "saved_models"


def _start_keras(args):
    """Import Keras, and TensorFlow where it will be used, with oneDNN as --onednn says and
    without TF's log lines (unless --tf-logs): the console then shows only our progress and
    results."""
    from keras_resnets import machine

    machine.start_keras(
        onednn=getattr(args, "onednn", "auto"),
        tf_logs=args.tf_logs,
        numpy_only=getattr(args, "pipeline", None) == "numpy",
    )


def _check_folder(path, option):
    """`path` can be (or become) a folder: neither it nor any parent is a file."""
    path = Path(path)
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is a file" if folder == path else f"is inside {folder}, which is a file"
                raise ValueError(f"{option} {path} {what}, not a folder. Received: {option} {path}")
            return


def _check_keras_file(path):
    if not Path(path).is_file():
        raise ValueError(f"No checkpoint at {path}. Received: --checkpoint {path}")
    if not zipfile.is_zipfile(path):  # Keras would say "File not found" of a truncated file
        raise ValueError(
            f"{path} is not a valid .keras archive (truncated, or not a Keras "
            f"model file). Received: --checkpoint {path}"
        )


def _load_checkpoint(path):
    import keras

    # The layers and the recipes' loss register themselves with Keras on import.
    from keras_resnets import models  # noqa: F401
    from keras_resnets.training import recipes  # noqa: F401

    _check_keras_file(path)
    try:
        # The optimizer and loss are not needed to predict or export.
        return keras.saving.load_model(path, compile=False)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as error:
        text = str(error).strip().splitlines()
        raise ValueError(
            f"{path} is not a valid .keras archive ({type(error).__name__}: "
            f"{text[0] if text else ''})"
        ) from None


def _class_names_for(checkpoint):
    run = Path(checkpoint).with_name("run.json")
    if run.exists():
        return json.loads(run.read_text()).get("class_names")
    return None


def _model_kwargs(args):
    model_kwargs = {}
    for key, value in args.model_arg:
        if key in model_kwargs:
            raise ValueError(
                f"--model-arg {key} is given twice. Received: --model-arg "
                f"{key}={model_kwargs[key]!r} and --model-arg {key}={value!r}"
            )
        model_kwargs[key] = value
    for key, option in _MODEL_OPTIONS.items():
        if getattr(args, key) is None:
            continue
        if key in model_kwargs:
            raise ValueError(
                f"{option} and --model-arg {key}=... both set {key}. "
                f"Received: {option} {getattr(args, key)}"
            )
        model_kwargs[key] = getattr(args, key)
    return model_kwargs


def _check_model_kwargs(model, model_kwargs):
    """An unknown builder argument gets the builder's valid ones, before any data loads, in
    the CLI's words (TrainConfig says the same in train()'s); a value of the wrong kind
    (`--model-arg zero_init_residual=maybe`) is refused as `build` refuses it."""
    from keras_resnets.models import registry
    from keras_resnets.training.config import unknown_builder_arguments

    unknown, valid = unknown_builder_arguments(model, model_kwargs)
    if unknown:
        given = ", ".join(_MODEL_OPTIONS.get(k) or f"--model-arg {k}=..." for k in unknown)
        raise ValueError(
            f"{model} takes no argument {', '.join(unknown)}. Its arguments: "
            f"{', '.join(sorted(valid))}. Received: {given}"
        )
    registry.check_builder_arguments(model, model_kwargs)


def _check_png(path, option, *, create_folder):
    """`path` can be written as a PNG: not a folder, and no file where a folder must be. Its
    folder must exist unless the command creates it (`create_folder`)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(
            f"{option} {path} is a folder: give the PNG file's path. Received: {option} {path}"
        )
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(
                    f"{option} {path}: {folder} is a file, not a folder. Received: {option} {path}"
                )
            break
    if not create_folder and not path.parent.is_dir():
        raise ValueError(
            f"{option} {path}: the folder {path.parent} does not exist. Received: {option} {path}"
        )


def _train_config(args, model_kwargs):
    """The TrainConfig of `train`'s options: those named as train()'s arguments are passed as
    they are; the builder arguments, --jit-compile and --pipeline are spelt the CLI's way."""
    from keras_resnets.training import TrainConfig

    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    return TrainConfig(
        **{
            **{name: value for name, value in vars(args).items() if name in fields},
            "model_kwargs": model_kwargs,
            "jit_compile": {"on": True, "off": False}.get(args.jit_compile, "auto"),
            "engine": args.pipeline,
        }
    )


def _check_export_name(name, option, base):
    """TF Serving's layout is <base>/<name>/<version>: a model name is one folder inside the
    base, never a path out of it."""
    if len(Path(name).parts) != 1 or name in (".", "..") or name != Path(name).name:
        raise ValueError(
            f"{option} must be one folder name inside {base}, not a path. "
            f"Received: {option} {name!r}"
        )


def _train(args):
    _check_folder(args.out, "--out")
    if args.export:
        _check_export_name(args.export, "--export", EXPORT_BASE)
        _check_folder(Path(EXPORT_BASE) / args.export, "--export")
    _start_keras(args)
    from keras_resnets import training
    from keras_resnets.training import run_folder

    model_kwargs = _model_kwargs(args)
    _check_model_kwargs(args.model, model_kwargs)
    config = _train_config(args, model_kwargs)
    if not args.restart:
        run_folder.check_run_folder(
            args.out,
            args.model,
            model_kwargs,
            args.recipe,
            remedy="pass another --out, or --restart to replace it",
        )
    summary = training.run(config)
    if args.export and summary["distribute"]["is_chief"]:  # only the chief exports
        _export_checkpoint(Path(args.out) / "best.keras", Path(EXPORT_BASE) / args.export)
    return summary


def _evaluate(args):
    if args.checkpoint:
        ignored = [f"--{k}" for k in ("depth", "weights") if getattr(args, k) is not None]
        if ignored:  # a checkpoint is its own model and weights: never silently ignore them
            raise ValueError(
                f"{' and '.join(ignored)} {'go' if len(ignored) > 1 else 'goes'} with --model; "
                "a --checkpoint holds its own model "
                f"and weights. Received: --checkpoint {args.checkpoint} {' '.join(ignored)}"
            )
        _check_keras_file(args.checkpoint)
    elif not args.weights:
        raise ValueError(
            f"--model {args.model} needs --weights (e.g. --weights cifar10): "
            "an untrained model has nothing to evaluate."
        )
    if args.plot:  # before the evaluation, not after it
        _check_png(args.plot, "--plot", create_folder=False)
    _start_keras(args)
    if args.model:
        depth = {"depth": args.depth} if args.depth is not None else {}
        _check_model_kwargs(args.model, depth)
    import numpy as np

    from keras_resnets import data as data_lib
    from keras_resnets import evaluation

    if args.checkpoint:
        model = _load_checkpoint(args.checkpoint)
    else:
        from keras_resnets import models

        depth = {"depth": args.depth} if args.depth is not None else {}
        model = models.build(args.model, weights=args.weights, **depth)
    arrays = data_lib.load_arrays(args.data)
    x, y = arrays.x_test, arrays.y_test
    if args.test_limit is not None:
        x, y = data_lib.balanced_subset(x, y, args.test_limit)
    ds = data_lib.make_pipeline(x, y, batch_size=args.batch_size, training=False)
    probabilities = model.predict(ds, verbose=1)
    predicted = np.argmax(probabilities, axis=-1)
    names = (args.checkpoint and _class_names_for(args.checkpoint)) or arrays.class_names
    matrix = evaluation.confusion_matrix(y, predicted, len(names))
    accuracy = float(np.mean(predicted == y))
    print(f"Test accuracy: {accuracy:.4f} on {len(y)} images ({arrays.source})")
    print(evaluation.format_confusion_matrix(matrix, names))
    if args.plot:
        evaluation.plot_confusion_matrix(matrix, names, args.plot, title=model.name)
        print(f"Confusion matrix plot: {args.plot}")
    return {"accuracy": accuracy, "confusion_matrix": matrix.tolist()}


def _export(args):
    _check_keras_file(args.checkpoint)
    _check_folder(args.base, "--base")
    _check_export_name(args.name, "--name", "--base")
    target = Path(args.base) / args.name
    _check_folder(target, "--name")
    if args.version is not None and (target / str(args.version)).exists() and not args.overwrite:
        # Checked here so that the message names the CLI's options, not export()'s arguments.
        raise ValueError(
            f"Version {args.version} already exists at {target / str(args.version)}: pass "
            "--overwrite to replace it, or leave out --version for the next free version. "
            f"Received: --version {args.version}"
        )
    _start_keras(args)
    return _export_checkpoint(
        args.checkpoint,
        target,
        version=args.version,
        overwrite=args.overwrite,
        dtype=args.dtype,
        format=args.format,
        quantize=args.quantize,
    )


def _export_checkpoint(checkpoint, target, **options):
    """`keras_resnets.export.export` of the checkpoint, with its run's class names; `options`
    are export()'s (version, format, ...)."""
    from keras_resnets.export import export

    model = _load_checkpoint(checkpoint)
    try:
        path = export(model, os.fspath(target), class_names=_class_names_for(checkpoint), **options)
    except (RuntimeError, ImportError) as error:  # the backend, a missing extra: one line
        raise ValueError(str(error)) from None
    print(f"Exported {checkpoint} to {path}")
    return path


def _plot(args):
    from keras_resnets import plotting

    if args.label and len(args.label) != len(args.runs):
        raise ValueError(
            f"--label needs one name per run: {len(args.runs)} runs, {len(args.label)} labels. "
            f"Received: --label {' '.join(args.label)}"
        )
    if args.deadline is not None and "minutes" not in args.against:
        raise ValueError(
            "--deadline marks the minutes panel: add minutes to --against. "
            f"Received: --against {' '.join(args.against)}"
        )
    runs = {}
    for i, run in enumerate(args.runs):
        run = Path(run)
        history = run / "history.csv" if run.is_dir() else run
        if not history.is_file():
            raise FileNotFoundError(
                f"No training history at {history}: give a run folder (`train --out`) or its "
                f"history.csv. Received: {run}"
            )
        if args.label:
            label = args.label[i]
        elif run.is_dir() or history.name == "history.csv":
            label = history.parent.name  # the run folder's name
        else:
            label = history.stem  # e.g. paper_short_cifar_resnet20_history
        if label in runs:
            raise ValueError(f"Two runs are labelled {label!r}: name them with --label.")
        runs[label] = plotting.read_history(history)
        if not runs[label]:
            raise ValueError(f"{history} has no finished epoch yet.")
    out = Path(args.out)
    _check_png(out, "--out", create_folder=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = plotting.plot_runs(
        runs,
        out,
        title=args.title,
        against=tuple(dict.fromkeys(args.against)),
        target=args.target,
        deadline=args.deadline,
        ymax=args.ymax,
    )
    print(f"Plot: {path}")
    return path


def _list(args):
    if "keras" not in sys.modules:
        # The registry, the parameter counts and the multiply-adds are the same on any
        # backend, and Keras's NumPy backend loads in a second, without TensorFlow's log
        # lines, where TensorFlow takes 10-25 s.
        os.environ["KERAS_BACKEND"] = "numpy"
    from keras_resnets import models

    names = models.list_models(args.pattern)
    if not names:
        raise ValueError(
            f"No registered model matches {args.pattern!r}; `keras-resnets list` "
            f"shows all {len(models.list_models())}. Received: {args.pattern!r}"
        )
    if not args.markdown:
        print("\n".join(names))
        return names
    from keras_resnets import model_table

    print(model_table.markdown(names, progress=True))
    return names


COMMANDS = {
    "train": _train,
    "evaluate": _evaluate,
    "export": _export,
    "plot": _plot,
    "list": _list,
}
