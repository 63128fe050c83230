"""He et al. 2015, section 4.2 (Table 6, Fig. 6): plain nets against ResNets on CIFAR-10.

    python examples/paper_cifar.py --data ../shared/cifar10               # the paper's schedule
    python examples/paper_cifar.py --data ../shared/cifar10 --short       # the `fast` recipe
    python examples/paper_cifar.py --depths 20 56 --short --epochs 3      # a quick look

For each depth (default 20, 32, 44, 56, 110) it trains `cifar_plain` and `cifar_resnet`
(shortcut A) with the paper's recipe (64k iterations; `--short` uses the `fast` recipe), then
prints the table of test errors beside the paper's (with the last epoch's training error,
minutes and images/s) and draws Fig. 6 style plots: both families in `<out>/paper_cifar.png`,
then the plain nets and the ResNets apart in `<out>/cifar_plain.png` and `<out>/cifar_resnet.png`.
"""

import sys
from pathlib import Path

from keras_resnets import cli, machine, plotting

# He et al. 2015, Table 6: test error (%) of the CIFAR-10 ResNets. The paper gives the plain
# nets' errors only as curves (Fig. 6, left), so no figure is quoted for them.
PAPER_ERROR = {"cifar_resnet": {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}}


def main():
    parser = cli.Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--out", default="runs/paper_cifar")
    parser.add_argument("--depths", type=cli.positive_int, nargs="+", default=[20, 32, 44, 56, 110])
    parser.add_argument("--short", action="store_true", help="use the `fast` recipe")
    parser.add_argument("--epochs", type=cli.positive_int)
    parser.add_argument("--steps-per-epoch", type=cli.positive_int)
    parser.add_argument("--train-limit", type=cli.positive_int)
    parser.add_argument("--test-limit", type=cli.positive_int)
    parser.add_argument("--seed", type=cli.non_negative_int, default=0)
    parser.add_argument(
        "--mixed-precision",
        default="auto",
        choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"],
        help="auto (bfloat16 where the hardware has it), float32, mixed_float16 or mixed_bfloat16",
    )
    args = parser.parse_args()
    # Keras starts after the arguments, quietly and with oneDNN on, as in examples/article.py.
    machine.start_keras()
    from keras_resnets.models.resnet import cifar_stages
    from keras_resnets.train import train

    for depth in args.depths:  # a bad depth fails now, not after hours of the good ones
        cifar_stages(depth, family="cifar_resnet (and cifar_plain)")

    out = Path(args.out)
    recipe = "fast" if args.short else "paper"
    results = {}
    for family in ("cifar_plain", "cifar_resnet"):
        for depth in args.depths:
            run = out / f"{family}{depth}"
            print(f"== {family} depth {depth}, recipe {recipe}")
            results[family, depth] = train(
                family,
                model_kwargs={"depth": depth},
                recipe=recipe,
                epochs=args.epochs,
                steps_per_epoch=args.steps_per_epoch,
                data=args.data,
                out=run,
                seed=args.seed,
                train_limit=args.train_limit,
                test_limit=args.test_limit,
                mixed_precision=args.mixed_precision,
                verbose=2,
            )
    # Each run's history, read once for the table and the three plots.
    histories = {
        (family, depth): plotting.read_history(out / f"{family}{depth}" / "history.csv")
        for family, depth in results
    }
    print(
        f"\n{'network':22} {'params':>10} {'test error %':>13} {'paper %':>8} "
        f"{'train error %':>14} {'minutes':>8} {'img/s':>6}"
    )
    for (family, depth), s in results.items():
        paper = PAPER_ERROR.get(family, {}).get(depth)
        # The last epoch's training error (augmented images, BN in training mode), as Fig. 6.
        last = histories[family, depth][-1]
        print(
            f"{family + str(depth):22} {s['params']:>10,} "
            f"{100 * (1 - s['final_test_accuracy']):>13.2f} "
            f"{'' if paper is None else f'{paper:.2f}':>8} "
            f"{100 * (1 - last['accuracy']):>14.2f} {s['wall_time_seconds'] / 60:>8.1f} "
            f"{s['train_images_per_second_median'] or 0:>6.0f}"
        )
    for family in ("cifar_plain", "cifar_resnet"):
        plotting.plot_runs(
            {f"{f}{d}": rows for (f, d), rows in histories.items() if f == family},
            out / f"{family}.png",
            title=f"{family}, recipe {recipe!r}",
        )
    # Both families on one figure: the degradation problem at a glance (README's plot).
    plotting.plot_runs(
        {f"{f}{d}": rows for (f, d), rows in histories.items()},
        out / "paper_cifar.png",
        title=f"He et al. 2015 Fig. 6, {max(s['epochs'] for s in results.values())} epochs of "
        f"recipe {recipe!r}: plain vs ResNet",
    )
    print(
        f"\nPlots: {out}/paper_cifar.png (both), {out}/cifar_plain.png, {out}/cifar_resnet.png; "
        f"runs under {out}/"
    )


if __name__ == "__main__":
    sys.exit(cli.run(main))
