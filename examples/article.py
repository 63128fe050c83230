"""The article's comparison: its four 25-layer CIFAR-10 networks, one recipe, one plot.

    python examples/article.py --data ../shared/cifar10            # 51 to 60 min a network on AMX
    python examples/article.py --data ../shared/cifar10 --short    # the first 32,000 images

Trains `resnet`, `highway`, `densenet` and `plain` (A. Juliani 2016) with the same recipe,
one after the other, then draws their test error against epochs and against wall time on one
figure, `<out>/article.png`, and prints a table: parameters, multiply-adds, epochs, best and
final test accuracy, the first epoch and minute at >= 90%, and images/s. The default is the
`article_fast` recipe stretched to 14 epochs: on the 2 cores of an Intel Xeon with AMX in
bfloat16, 51 minutes for the ResNet (which passes 90% at epoch 13), 60 for the DenseNet, 57
for the HighwayNet and 53 for the plain net; 1.2 to 3 hours on the AMD EPYCs without AMX we
measured (their 9-epoch runs took 48 to 120 minutes). `--epochs 9` is the recipe's own
length, `--recipe article` the article's own Adam 1e-3. `--short` is the quick look: the
article's recipe for 4 x 125 steps, the test set after each 125.

Each network trains in its own run folder, `<out>/<network>/`, so running the same command
again resumes a killed run where its last finished epoch left it and skips finished ones.
"""

import os
import sys
from pathlib import Path

import keras_resnets
from keras_resnets import cli, machine, plotting

NETWORKS = ("resnet", "highway", "densenet", "plain")
# The article's hour on 2 CPU cores: 14 epochs of `article_fast` fit it for all four networks
# on an Intel Xeon with AMX, in 51 (ResNet) to 60 (DenseNet) minutes: README, "The article's
# comparison, to the end".
ARTICLE_FAST_EPOCHS = 14


def main():
    parser = cli.Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="CIFAR-10 source (default: $KERAS_RESNETS_DATA or search)")
    parser.add_argument("--out", help="default: runs/article (--short: runs/article_short)")
    parser.add_argument("--recipe", help="default: article_fast (--short: article)")
    parser.add_argument(
        "--short",
        action="store_true",
        help="the quick look: recipe article, 4 epochs of 125 steps (--out runs/article_short)",
    )
    parser.add_argument(
        "--depth", type=cli.positive_int, default=25, help="units per network (multiple of 5)"
    )
    parser.add_argument(
        "--epochs",
        type=cli.positive_int,
        help="default: 14 with article_fast, else the recipe's (--short: 4)",
    )
    parser.add_argument("--steps-per-epoch", type=cli.positive_int)
    parser.add_argument("--train-limit", type=cli.positive_int)
    parser.add_argument("--test-limit", type=cli.positive_int)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--seed", type=cli.non_negative_int, default=0)
    parser.add_argument(
        "--mixed-precision",
        default="auto",
        choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"],
        help="auto (bfloat16 where the hardware has it), float32, mixed_float16 or mixed_bfloat16",
    )
    args = parser.parse_args()
    # Keras starts only now, so that --help and argument errors come at once: with TensorFlow's
    # oneDNN kernels on (faster on AVX2-only CPUs, where TensorFlow leaves them off; an explicit
    # TF_ENABLE_ONEDNN_OPTS=0 is kept) and without its C++ log lines (keras_resnets/machine.py).
    machine.start_keras()
    from keras_resnets import accounting
    from keras_resnets.train import train

    if args.short:
        args.recipe = args.recipe or "article"
        args.epochs = args.epochs or 4
        args.steps_per_epoch = args.steps_per_epoch or 125
    args.recipe = args.recipe or "article_fast"
    out = Path(args.out or ("runs/article_short" if args.short else "runs/article"))
    summaries, macs = {}, {}
    for name in args.networks:
        model = keras_resnets.build(name, depth=args.depth)
        macs[name] = accounting.count_macs(model)
        params = accounting.count_params(model)  # as the table below and summary.json count
        print(f"== {name} ({params:,} params, {macs[name] / 1e6:.0f}M multiply-adds)")
        del model
        epochs = args.epochs
        # A run folder that exists keeps the epochs it was started with (train reads them).
        if epochs is None and args.recipe == "article_fast":
            epochs = None if (out / name / "run.json").exists() else ARTICLE_FAST_EPOCHS
        summaries[name] = train(
            name,
            model_kwargs={"depth": args.depth},
            recipe=args.recipe,
            epochs=epochs,
            steps_per_epoch=args.steps_per_epoch,
            data=args.data,
            out=out / name,
            seed=args.seed,
            train_limit=args.train_limit,
            test_limit=args.test_limit,
            mixed_precision=args.mixed_precision,
            verbose=2,
        )
    plot = plotting.plot_runs(
        {n: out / n / "history.csv" for n in summaries},
        out / "article.png",
        title=f"The article's networks, depth {args.depth}, recipe {args.recipe!r}",
        against=("epoch", "minutes"),
        target=10.0,
        # The article's hour; --short's 4-minute runs would shrink to a sliver beside it.
        deadline=None if args.short else 60,
    )
    print(
        f"\n{'network':9} {'params':>10} {'MACs':>6} {'epochs':>6} {'best':>7} {'final':>7} "
        f"{'>=90%':>16} {'img/s':>6} {'minutes':>7}"
    )
    for name, s in summaries.items():
        hit = first_at(out / name / "history.csv", 0.90)
        reached = f"ep {hit[0]}, {hit[1]:.1f} min" if hit else "not reached"
        print(
            f"{name:9} {s['params']:>10,} {macs[name] / 1e6:>5.0f}M {s['epochs']:>6} "
            f"{100 * s['best_test_accuracy']:>6.2f}% {100 * s['final_test_accuracy']:>6.2f}% "
            f"{reached:>16} {s['train_images_per_second_median'] or 0:>6.0f} "
            f"{s['wall_time_seconds'] / 60:>7.1f}"
        )
    print(f"\nPlot: {plot}\nRuns: {out}/<network>/ (history.csv, summary.json, best.keras)")
    print(f"Machine: {machine.cpu_name()} ({machine.cpu_kind()}), {os.cpu_count()} cores")


def first_at(history, accuracy):
    """(epoch, minutes) of the first epoch whose test accuracy reaches `accuracy`, or None."""
    for row in plotting.read_history(history):
        if row.get("val_accuracy", 0) >= accuracy:
            return row["epoch"] + 1, row["wall_time"] / 60
    return None


if __name__ == "__main__":
    sys.exit(cli.run(main))
