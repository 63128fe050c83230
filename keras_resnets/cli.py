"""The `keras-resnets` command line: train, evaluate, export, plot, list.

    keras-resnets train --model cifar_resnet --depth 20 --recipe fast --epochs 30 \\
        --data ../shared/cifar10 --out runs/r20
    keras-resnets evaluate --checkpoint runs/r20/best.keras --data ../shared/cifar10
    keras-resnets export --checkpoint runs/r20/best.keras --name cifar_resnet20
    keras-resnets plot runs/r20 runs/r56 --out runs/errors.png --target 10
    keras-resnets list --markdown

This module holds the options (`_parser`) and `main`, which turns a bad input into one
`error:` line; keras_resnets/commands.py does the work of each command, calling the library.
Nothing imports Keras or TensorFlow before the arguments are checked, so `--help`, `list` and
argument errors answer at once. The benchmarks are not part of the package: run them from the
repository root as `python -m benchmarks ...` (benchmarks/README.md).
"""

import argparse
import ast
import json
import sys

from keras_resnets import commands


class Parser(argparse.ArgumentParser):
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


def positive_float(text):
    """An argparse type: a number above 0 (a `--ymax 0` is an error, never an empty plot)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number. Received: {text!r}") from None
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be above 0. Received: {text}")
    return value


positive_int = _int_at_least(1, "a positive integer")
non_negative_int = _int_at_least(0, "0 or more")


def key_value(text):
    """KEY=VALUE for an argparse option (`--model-arg`, and the benchmarks' `--train`): the
    key with dashes made underscores, and the value parsed as JSON (2, true, null, [32, 32,
    3], {"depth": 20}), else as a Python literal (True, None, (None, None, 3), and 32,32,3 as
    a tuple), else kept as the text ("A", "none")."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE. Received: {text!r}")
    key, value = text.split("=", 1)
    try:
        value = json.loads(value)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return key.replace("-", "_"), value


def _parser():
    parser = Parser(
        prog="keras-resnets",
        description="ResNets, HighwayNets and DenseNets for Keras 3: train, evaluate, export.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("train", help="train a registered model on CIFAR-10")
    p.add_argument("--model", default="cifar_resnet", help="a name from `keras-resnets list`")
    p.add_argument("--depth", type=positive_int, help="the family's depth (e.g. 20, 110, 25)")
    p.add_argument("--shortcut", choices=["A", "B", "C", "none"], help="ResNet shortcut option")
    p.add_argument("--growth-rate", type=positive_int, help="DenseNet growth rate k")
    p.add_argument(
        "--model-arg",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other builder argument (repeatable); VALUE is JSON or a Python literal, "
        "e.g. zero_init_residual=true, input_shape=64,64,3",
    )
    p.add_argument(
        "--recipe", default="fast", help="paper, densenet, article, article_fast or fast"
    )
    p.add_argument("--epochs", type=positive_int, help="default: the recipe's")
    p.add_argument(
        "--steps-per-epoch", type=positive_int, help="cap the steps of an epoch (short runs)"
    )
    p.add_argument("--batch-size", type=positive_int, help="default: the recipe's")
    p.add_argument(
        "--data",
        help="the data: a CIFAR-10 folder or archive, 'tfds', 'keras' or 'cifar100' "
        "(default: $KERAS_RESNETS_DATA, else a search)",
    )
    p.add_argument("--out", default="runs/run", help="the run folder (re-use it to resume)")
    p.add_argument(
        "--restart",
        action="store_true",
        help="clear the run folder's previous run first, instead of resuming it",
    )
    p.add_argument("--seed", type=non_negative_int, default=0)
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
    p.add_argument("--train-limit", type=positive_int, help="use only this many training images")
    p.add_argument("--test-limit", type=positive_int, help="use only this many test images")
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
    p.add_argument("--depth", type=positive_int, help="with --model: its depth")
    p.add_argument("--weights", help="with --model: 'cifar10' (shipped weights) or a weights file")
    p.add_argument("--data", help="CIFAR-10 source, as for train")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--test-limit", type=positive_int)
    p.add_argument("--plot", help="also draw the confusion matrix into this PNG")
    _add_tensorflow_options(p)

    p = sub.add_parser("export", help="export a checkpoint for TF Serving, ONNX Runtime or LiteRT")
    p.add_argument("--checkpoint", required=True, help="a .keras file")
    p.add_argument("--name", required=True, help="the model name: saved_models/NAME/<version>")
    p.add_argument(
        "--base", default=commands.EXPORT_BASE, help="the base folder (default saved_models)"
    )
    p.add_argument(
        "--version", type=positive_int, help="default: one more than the highest existing"
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

    p = sub.add_parser("plot", help="draw runs' train and test error curves into one PNG")
    p.add_argument("runs", nargs="+", help="run folders (`train --out`) or their history.csv files")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.add_argument("--label", nargs="+", help="one legend name per run (default: folder names)")
    p.add_argument(
        "--against",
        nargs="+",
        choices=["epoch", "minutes"],
        default=["epoch", "minutes"],
        help="x axes, one panel each (default: epoch minutes)",
    )
    p.add_argument("--title", help="the figure's title")
    p.add_argument(
        "--target", type=positive_float, help="a test error in %% to mark, e.g. 10 for 90%%"
    )
    p.add_argument("--deadline", type=positive_float, help="minutes to mark on the minutes panel")
    p.add_argument(
        "--ymax", type=positive_float, help="top of the error axis in %%, to zoom on the ends"
    )

    p = sub.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", help="a glob, e.g. 'cifar_*'")
    p.add_argument(
        "--markdown",
        action="store_true",
        help="a markdown table with parameters and multiply-adds (slow: builds each)",
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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    # Nothing above this line imports Keras or TensorFlow: --help and bad arguments are quick.
    args = _parser().parse_args(argv)
    return run(commands.COMMANDS[args.command], args, resumable=args.command == "train")


def run(command, *args, resumable=True):
    """Call `command(*args)` as the CLI calls its commands, for the CLI and the examples: a
    bad input is one `error:` line and exit status 2, Ctrl-C one line and 130 (for a
    `resumable` command, one on how to resume), success 0."""
    try:
        command(*args)
    except (ValueError, FileNotFoundError) as e:  # the data module's DataSourceError too
        # Bad input gets one clear line, not a stack trace from deep inside TF.
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if resumable:
            message = "re-run the same command to resume from the last finished epoch."
        else:
            message = "stopped; nothing was left half-written."
        print(f"\ninterrupted: {message}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
