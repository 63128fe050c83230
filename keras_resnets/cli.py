"""The `keras-resnets` command line: train, evaluate, export, list, benchmark.

    keras-resnets train --model cifar_resnet --depth 20 --recipe fast --epochs 30 \\
        --data ../shared/cifar10 --out runs/r20
    keras-resnets evaluate --checkpoint runs/r20/best.keras --data ../shared/cifar10
    keras-resnets export --checkpoint runs/r20/best.keras --name cifar_resnet20
    keras-resnets list --markdown
"""

import argparse
import json
import os
import sys
from pathlib import Path


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
    parser = argparse.ArgumentParser(
        prog="keras-resnets",
        description="ResNets, HighwayNets and DenseNets for Keras 3: train, evaluate, export.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a registered model on CIFAR-10")
    p.add_argument("--model", default="cifar_resnet", help="a name from `keras-resnets list`")
    p.add_argument("--depth", type=int, help="the family's depth (e.g. 20, 110, 25)")
    p.add_argument("--shortcut", choices=["A", "B", "C", "none"], help="ResNet shortcut option")
    p.add_argument("--growth-rate", type=int, help="DenseNet growth rate k")
    p.add_argument("--model-arg", type=_model_arg, action="append", default=[],
                   metavar="KEY=VALUE", help="any other builder argument (repeatable)")
    p.add_argument("--recipe", default="fast", help="paper, densenet, article or fast")
    p.add_argument("--epochs", type=int, help="default: the recipe's")
    p.add_argument("--steps-per-epoch", type=int, help="cap the steps of an epoch (short runs)")
    p.add_argument("--batch-size", type=int, help="default: the recipe's")
    p.add_argument("--data", help="CIFAR-10 source: a folder or archive, 'tfds' or 'keras' "
                                  "(default: $KERAS_RESNETS_DATA, else a search)")
    p.add_argument("--out", default="runs/run", help="the run folder (re-use it to resume)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mixed-precision",
                   choices=["float32", "mixed_float16", "mixed_bfloat16", "auto"],
                   help="auto: mixed_bfloat16 on hardware with native bfloat16 (AMX CPUs, "
                        "Ampere+ GPUs), float32 elsewhere. Default: float32")
    p.add_argument("--jit-compile", nargs="?", const="on", default="auto",
                   choices=["auto", "on", "off"],
                   help="compile the step with XLA. auto (default): on for JAX and for "
                        "TensorFlow on a GPU, off for TensorFlow on a CPU; --jit-compile alone: on")
    p.add_argument("--train-limit", type=int, help="use only this many training images")
    p.add_argument("--test-limit", type=int, help="use only this many test images")
    p.add_argument("--distribute", default="none", choices=["none", "mirrored", "multi_worker"],
                   help="mirrored: the GPUs of this host; multi_worker: the hosts in TF_CONFIG "
                        "(see docs/distributed.md). --batch-size is the global batch")
    p.add_argument("--scale-lr", action="store_true",
                   help="linear scaling rule: lr x batch size / the recipe's, with a warm-up")
    p.add_argument("--pipeline", default="auto", choices=["auto", "tf.data", "numpy"],
                   help="the input pipeline. auto (default): tf.data where TensorFlow is "
                        "installed, else NumPy (JAX or PyTorch backend without TensorFlow)")
    p.add_argument("--export", metavar="NAME",
                   help="after training, export best.keras to saved_models/NAME/<version>")
    p.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])

    p = sub.add_parser("evaluate", help="test accuracy and confusion matrix of a checkpoint")
    p.add_argument("--checkpoint", required=True, help="a .keras file")
    p.add_argument("--data", help="CIFAR-10 source, as for train")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--test-limit", type=int)
    p.add_argument("--plot", help="also draw the confusion matrix into this PNG")

    p = sub.add_parser("export", help="export a checkpoint for TF Serving, ONNX Runtime or LiteRT")
    p.add_argument("--checkpoint", required=True, help="a .keras file")
    p.add_argument("--name", required=True, help="the model name: saved_models/NAME/<version>")
    p.add_argument("--base", default="saved_models", help="the base folder (default saved_models)")
    p.add_argument("--version", type=int, help="default: one more than the highest existing")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version")
    p.add_argument("--dtype", default="float32", choices=["float32", "keep"],
                   help="float32 (default): serve a mixed-precision model in float32, fast on "
                        "any server; keep: serve in the training precision")
    p.add_argument("--format", default="saved_model", choices=["saved_model", "onnx", "litert"],
                   help="saved_model (default): TF Serving; onnx: ONNX Runtime; litert: TFLite")
    p.add_argument("--quantize", choices=["int8"],
                   help="litert only: dynamic-range int8 weights (see docs/serving.md)")

    p = sub.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", help="a glob, e.g. 'cifar_*'")
    p.add_argument("--markdown", action="store_true",
                   help="a markdown table with parameters and multiply-adds (slow: builds each)")

    sub.add_parser("benchmark", help="speed and memory benchmarks (see benchmarks/README)",
                   add_help=False)
    return parser


def _class_names_for(checkpoint):
    run = Path(checkpoint).with_name("run.json")
    if run.exists():
        return json.loads(run.read_text()).get("class_names")
    return None


def _train(args):
    from keras_resnets import train as train_lib

    model_kwargs = dict(args.model_arg)
    for key in ("depth", "shortcut", "growth_rate"):
        if getattr(args, key) is not None:
            model_kwargs[key] = getattr(args, key)
    summary = train_lib.train(
        args.model,
        model_kwargs=model_kwargs,
        recipe=args.recipe,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        data=args.data,
        out=args.out,
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
        _export(argparse.Namespace(checkpoint=str(Path(args.out) / "best.keras"),
                                   name=args.export, base="saved_models", version=None,
                                   overwrite=False, dtype="float32"))
    return summary


def _evaluate(args):
    import keras
    import numpy as np

    from keras_resnets import data as data_lib
    from keras_resnets import evaluation

    if not Path(args.checkpoint).exists():
        raise ValueError(f"No checkpoint at {args.checkpoint}.")
    # The optimizer and loss are not needed to predict or export.
    model = keras.saving.load_model(args.checkpoint, compile=False)
    arrays = data_lib.load_arrays(args.data)
    x, y = arrays.x_test, arrays.y_test
    if args.test_limit:
        x, y = data_lib.balanced_subset(x, y, args.test_limit)
    ds = data_lib.make_pipeline(x, y, batch_size=args.batch_size, training=False)
    probabilities = model.predict(ds, verbose=1)
    predicted = np.argmax(probabilities, axis=-1)
    names = _class_names_for(args.checkpoint) or arrays.class_names
    matrix = evaluation.confusion_matrix(y, predicted, len(names))
    accuracy = float(np.mean(predicted == y))
    print(f"Test accuracy: {accuracy:.4f} on {len(y)} images ({arrays.source})")
    print(evaluation.format_confusion_matrix(matrix, names))
    if args.plot:
        evaluation.plot_confusion_matrix(matrix, names, args.plot, title=model.name)
        print(f"Confusion matrix plot: {args.plot}")
    return {"accuracy": accuracy, "confusion_matrix": matrix.tolist()}


def _export(args):
    import keras

    from keras_resnets.export import export

    if not Path(args.checkpoint).exists():
        raise ValueError(f"No checkpoint at {args.checkpoint}.")
    model = keras.saving.load_model(args.checkpoint, compile=False)
    try:
        path = export(model, os.path.join(args.base, args.name), version=args.version,
                      overwrite=args.overwrite, class_names=_class_names_for(args.checkpoint),
                      dtype=args.dtype, format=getattr(args, "format", "saved_model"),
                      quantize=getattr(args, "quantize", None))
    except (RuntimeError, ImportError) as error:  # the backend, a missing extra: one line
        raise ValueError(str(error)) from None
    print(f"Exported {args.checkpoint} to {path}")
    return path


def _list(args):
    from keras_resnets import models

    names = models.list_models(args.pattern)
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
            print("error: the benchmark harness lives in the repository's benchmarks/ folder; "
                  "run this from the repository root.", file=sys.stderr)
            return 2
        return benchmark_main(argv[1:])
    args = _parser().parse_args(argv)
    from keras_resnets.data import DataSourceError

    commands = {"train": _train, "evaluate": _evaluate, "export": _export, "list": _list}
    try:
        commands[args.command](args)
    except (ValueError, DataSourceError, FileNotFoundError) as e:
        # Bad input gets one clear line, not a stack trace from deep inside TF.
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: re-run the same command to resume from the last finished epoch.",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
