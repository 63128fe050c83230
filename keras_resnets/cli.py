"""The `keras-resnets` command line: train, evaluate, export, list, benchmark.

    keras-resnets train --model cifar_resnet --depth 20 --recipe fast --epochs 30 \\
        --data ../shared/cifar10 --out runs/r20
    keras-resnets evaluate --checkpoint runs/r20/best.keras --data ../shared/cifar10
    keras-resnets export --checkpoint runs/r20/best.keras --name cifar_resnet20
    keras-resnets list --markdown
"""

import argparse
import contextlib
import json
import os
import sys
import zipfile
from pathlib import Path

# The options that set a builder argument, for messages about them.
_MODEL_OPTIONS = {"depth": "--depth", "shortcut": "--shortcut", "growth_rate": "--growth-rate"}


class _Parser(argparse.ArgumentParser):
    """Bad arguments get the same one `error:` line as every other bad input, and exit 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _int_at_least(minimum, what):
    """An argparse type: an integer of at least `minimum` (0 is never a silent "default")."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer. Received: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {what}. Received: {text}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "0 or more")


def _model_arg(text):
    """KEY=VALUE for a builder argument; the value is parsed as JSON when it can be."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE. Received: {text!r}")
    key, value = text.split("=", 1)
    try:
        value = json.loads(value)
    except json.JSONDecodeError:
        pass
    return key.replace("-", "_"), value


def _parser():
    parser = _Parser(
        prog="keras-resnets",
        description="ResNets, HighwayNets and DenseNets for Keras 3: train, evaluate, export.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train a registered model on CIFAR-10")
    p.add_argument("--model", default="cifar_resnet", help="a name from `keras-resnets list`")
    p.add_argument("--depth", type=_positive_int, help="the family's depth (e.g. 20, 110, 25)")
    p.add_argument("--shortcut", choices=["A", "B", "C", "none"], help="ResNet shortcut option")
    p.add_argument("--growth-rate", type=_positive_int, help="DenseNet growth rate k")
    p.add_argument(
        "--model-arg",
        type=_model_arg,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other builder argument (repeatable)",
    )
    p.add_argument("--recipe", default="fast", help="paper, densenet, article or fast")
    p.add_argument("--epochs", type=_positive_int, help="default: the recipe's")
    p.add_argument(
        "--steps-per-epoch", type=_positive_int, help="cap the steps of an epoch (short runs)"
    )
    p.add_argument("--batch-size", type=_positive_int, help="default: the recipe's")
    p.add_argument(
        "--data",
        help="CIFAR-10 source: a folder or archive, 'tfds' or 'keras' "
        "(default: $KERAS_RESNETS_DATA, else a search)",
    )
    p.add_argument("--out", default="runs/run", help="the run folder (re-use it to resume)")
    p.add_argument(
        "--restart",
        action="store_true",
        help="clear the run folder's previous run first, instead of resuming it",
    )
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument(
        "--mixed-precision",
        choices=["float32", "mixed_float16", "mixed_bfloat16", "auto"],
        help="auto: mixed_bfloat16 on hardware with native bfloat16 (AMX or "
        "AVX512_BF16 CPUs, Ampere+ GPUs), float32 elsewhere. Default: float32",
    )
    p.add_argument(
        "--jit-compile",
        nargs="?",
        const="on",
        default="auto",
        choices=["auto", "on", "off"],
        help="compile the step with XLA. auto (default): on for JAX and for "
        "TensorFlow on a GPU, off for TensorFlow on a CPU; --jit-compile alone: on",
    )
    p.add_argument("--train-limit", type=_positive_int, help="use only this many training images")
    p.add_argument("--test-limit", type=_positive_int, help="use only this many test images")
    p.add_argument(
        "--distribute",
        default="none",
        choices=["none", "mirrored", "multi_worker"],
        help="mirrored: the GPUs of this host; multi_worker: the hosts in TF_CONFIG "
        "(see docs/distributed.md). --batch-size is the global batch",
    )
    p.add_argument(
        "--scale-lr",
        action="store_true",
        help="linear scaling rule: lr x batch size / the recipe's, with a warm-up",
    )
    p.add_argument(
        "--pipeline",
        default="auto",
        choices=["auto", "tf.data", "numpy"],
        help="the input pipeline. auto (default): tf.data where TensorFlow is "
        "installed, else NumPy (JAX or PyTorch backend without TensorFlow)",
    )
    p.add_argument(
        "--export",
        metavar="NAME",
        help="after training, export best.keras to saved_models/NAME/<version>",
    )
    p.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=[0, 1, 2],
        help="Keras's progress output: 0 none, 1 a bar (default), 2 a line an epoch",
    )
    _add_tensorflow_options(p)

    p = sub.add_parser("evaluate", help="test accuracy and confusion matrix of a checkpoint")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a .keras file")
    source.add_argument("--model", help="a registered model, with --weights")
    p.add_argument("--depth", type=_positive_int, help="with --model: its depth")
    p.add_argument("--weights", help="with --model: 'cifar10' (shipped weights) or a weights file")
    p.add_argument("--data", help="CIFAR-10 source, as for train")
    p.add_argument("--batch-size", type=_positive_int, default=256)
    p.add_argument("--test-limit", type=_positive_int)
    p.add_argument("--plot", help="also draw the confusion matrix into this PNG")
    _add_tensorflow_options(p)

    p = sub.add_parser("export", help="export a checkpoint for TF Serving, ONNX Runtime or LiteRT")
    p.add_argument("--checkpoint", required=True, help="a .keras file")
    p.add_argument("--name", required=True, help="the model name: saved_models/NAME/<version>")
    p.add_argument("--base", default="saved_models", help="the base folder (default saved_models)")
    p.add_argument(
        "--version", type=_positive_int, help="default: one more than the highest existing"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing version")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "keep"],
        help="float32 (default): serve a mixed-precision model in float32, fast on "
        "any server; keep: serve in the training precision",
    )
    p.add_argument(
        "--format",
        default="saved_model",
        choices=["saved_model", "onnx", "litert"],
        help="saved_model (default): TF Serving; onnx: ONNX Runtime; litert: TFLite",
    )
    p.add_argument(
        "--quantize",
        choices=["int8"],
        help="litert only: dynamic-range int8 weights (see docs/serving.md)",
    )
    _add_tensorflow_options(p)

    p = sub.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", help="a glob, e.g. 'cifar_*'")
    p.add_argument(
        "--markdown",
        action="store_true",
        help="a markdown table with parameters and multiply-adds (slow: builds each)",
    )

    sub.add_parser(
        "benchmark", help="speed and memory benchmarks (see benchmarks/README)", add_help=False
    )
    return parser


def _add_tensorflow_options(parser):
    parser.add_argument(
        "--tf-logs",
        action="store_true",
        help="show TensorFlow's own C++ log lines (hidden by default)",
    )
    parser.add_argument(
        "--onednn",
        choices=["auto", "on", "off"],
        default="auto",
        help="TensorFlow's oneDNN CPU kernels. auto (default): TF_ENABLE_ONEDNN_OPTS where it "
        "is set, else on (TensorFlow itself turns them on only on AVX-512 CPUs; on AVX2 CPUs "
        "they train about twice as fast, docs/benchmarks.md); on; off",
    )


@contextlib.contextmanager
def _stderr_fd_silenced():
    """Point file descriptor 2 at /dev/null: TF 2.21's libraries log while they load, before
    they read TF_CPP_MIN_LOG_LEVEL ("WARNING: All log messages before absl::InitializeLog()",
    the oneDNN and CUDA lines), straight to the descriptor, past `sys.stderr`."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _set_onednn(choice):
    """TF_ENABLE_ONEDNN_OPTS for `--onednn`, before TensorFlow reads it (on import)."""
    if choice == "auto":
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    else:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if choice == "on" else "0"


def _start_keras(args):
    """Import Keras, and TensorFlow where it will be used, with oneDNN as --onednn says and
    without TF's log lines (unless --tf-logs): the console then shows only our progress and
    results."""
    if "tensorflow" not in sys.modules:
        _set_onednn(getattr(args, "onednn", "auto"))
    if args.tf_logs or "keras" in sys.modules:
        return
    # 3 hides the lines TF logs after it has loaded, `failed call to cuInit` among them.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with _stderr_fd_silenced():
        import keras

        numpy_only = getattr(args, "pipeline", None) == "numpy"
        if keras.backend.backend() == "tensorflow" or not numpy_only:
            try:  # TensorFlow is optional on the JAX and PyTorch backends
                import tensorflow as tf
            except ImportError:
                pass
            else:
                tf.get_logger().setLevel("ERROR")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


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
    from keras_resnets import models, recipes  # noqa: F401

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
    """An unknown builder argument gets the builder's valid ones, before any data loads."""
    from keras_resnets import train as train_lib

    valid = train_lib.builder_arguments(model)
    if valid is None:
        return
    unknown = sorted(set(model_kwargs) - valid)
    if unknown:
        given = ", ".join(_MODEL_OPTIONS.get(k) or f"--model-arg {k}=..." for k in unknown)
        raise ValueError(
            f"{model} takes no argument {', '.join(unknown)}. Its arguments: "
            f"{', '.join(sorted(valid))}. Received: {given}"
        )


def _train(args):
    _check_folder(args.out, "--out")
    if args.export:
        _check_folder(Path("saved_models") / args.export, "--export")
    _start_keras(args)
    from keras_resnets import train as train_lib

    model_kwargs = _model_kwargs(args)
    _check_model_kwargs(args.model, model_kwargs)
    if not args.restart:
        train_lib.check_run_folder(
            args.out,
            args.model,
            model_kwargs,
            args.recipe,
            remedy="pass another --out, or --restart to replace it",
        )
    summary = train_lib.train(
        args.model,
        model_kwargs=model_kwargs,
        recipe=args.recipe,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        data=args.data,
        out=args.out,
        restart=args.restart,
        seed=args.seed,
        mixed_precision=args.mixed_precision,
        jit_compile={"on": True, "off": False}.get(args.jit_compile, "auto"),
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        distribute=args.distribute,
        scale_lr=args.scale_lr,
        engine=args.pipeline,
        verbose=args.verbose,
    )
    if args.export and summary["distribute"]["is_chief"]:  # only the chief exports
        _export(
            argparse.Namespace(
                checkpoint=str(Path(args.out) / "best.keras"),
                name=args.export,
                base="saved_models",
                version=None,
                overwrite=False,
                dtype="float32",
                tf_logs=args.tf_logs,
            )
        )
    return summary


def _evaluate(args):
    if args.checkpoint:
        _check_keras_file(args.checkpoint)
    elif not args.weights:
        raise ValueError(
            f"--model {args.model} needs --weights (e.g. --weights cifar10): "
            "an untrained model has nothing to evaluate."
        )
    if args.plot:  # before the evaluation, not after it
        folder = Path(args.plot).parent
        if not folder.is_dir():
            raise ValueError(
                f"--plot {args.plot}: the folder {folder} does not exist. "
                f"Received: --plot {args.plot}"
            )
    _start_keras(args)
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
    from keras_resnets.export import export

    model = _load_checkpoint(args.checkpoint)
    try:
        path = export(
            model,
            os.fspath(target),
            version=args.version,
            overwrite=args.overwrite,
            class_names=_class_names_for(args.checkpoint),
            dtype=args.dtype,
            format=getattr(args, "format", "saved_model"),
            quantize=getattr(args, "quantize", None),
        )
    except (RuntimeError, ImportError) as error:  # the backend, a missing extra: one line
        raise ValueError(str(error)) from None
    print(f"Exported {args.checkpoint} to {path}")
    return path


def _list(args):
    if not args.markdown and "keras" not in sys.modules:
        # Names only: the registry is the same on any backend, and Keras's NumPy backend
        # loads in a second where TensorFlow takes 10-25 s.
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

    print(model_table.markdown(names))
    return names


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "benchmark":
        try:
            from benchmarks.__main__ import main as benchmark_main
        except ImportError:
            print(
                "error: the benchmark harness lives in the repository's benchmarks/ folder; "
                "run this from the repository root.",
                file=sys.stderr,
            )
            return 2
        return benchmark_main(argv[1:])
    # Nothing above this line imports Keras or TensorFlow: --help and bad arguments are quick.
    args = _parser().parse_args(argv)
    commands = {"train": _train, "evaluate": _evaluate, "export": _export, "list": _list}
    try:
        commands[args.command](args)
    except (ValueError, FileNotFoundError) as e:  # the data module's DataSourceError too
        # Bad input gets one clear line, not a stack trace from deep inside TF.
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted: re-run the same command to resume from the last finished epoch.",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
