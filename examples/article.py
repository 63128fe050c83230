"""The article's comparison: its four 25-layer CIFAR-10 networks, one recipe, one plot.

    python examples/article.py --data ../shared/cifar10 --epochs 30
    python examples/article.py --data ../shared/cifar10 --epochs 2 --steps-per-epoch 50  # quick

Trains `resnet`, `highway`, `densenet` and `plain` (A. Juliani 2016) with the same recipe
(default: the article's Adam 1e-3, batch 64), then draws their train and test error curves on
one plot, `<out>/article.png`, and prints a table of test accuracies.
"""

import argparse
from pathlib import Path

import keras_resnets
from keras_resnets import machine, plotting

# TensorFlow's oneDNN kernels, on before Keras imports TensorFlow (faster on AVX2-only CPUs,
# where TensorFlow leaves them off; see keras_resnets/machine.py).
machine.enable_onednn()
from keras_resnets.train import train  # noqa: E402

NETWORKS = ("resnet", "highway", "densenet", "plain")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="CIFAR-10 source (default: $KERAS_RESNETS_DATA or search)")
    parser.add_argument("--out", default="runs/article")
    parser.add_argument("--recipe", default="article")
    parser.add_argument("--depth", type=int, default=25, help="units per network (multiple of 5)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument("--train-limit", type=int)
    parser.add_argument("--test-limit", type=int)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mixed-precision",
        default="auto",
        help="auto (bfloat16 where the hardware has it), float32, mixed_float16 or mixed_bfloat16",
    )
    args = parser.parse_args()

    out = Path(args.out)
    summaries = {}
    for name in args.networks:
        print(f"== {name} ({keras_resnets.build(name, depth=args.depth).count_params():,} params)")
        summaries[name] = train(
            name,
            model_kwargs={"depth": args.depth},
            recipe=args.recipe,
            epochs=args.epochs,
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
    )
    print(f"\n{'network':10} {'params':>10} {'test acc':>9} {'best':>7} {'minutes':>8}")
    for name, s in summaries.items():
        print(
            f"{name:10} {s['params']:>10,} {s['final_test_accuracy']:>9.4f} "
            f"{s['best_test_accuracy']:>7.4f} {s['wall_time_seconds'] / 60:>8.1f}"
        )
    print(f"\nPlot: {plot}\nRuns: {out}/<network>/ (history.csv, summary.json, best.keras)")


if __name__ == "__main__":
    main()
