"""Training curves in the style of the papers' figures (He et al. 2015, Fig. 1 and 6)."""

import csv
import os
from pathlib import Path


def read_history(path):
    """Rows of a CSVLogger history as dicts of floats (epoch as int), one per epoch."""
    path = Path(path)
    if not path.exists():
        return []
    rows = {}
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            # A file with a header but no rows yet is a run before its first epoch; one
            # without an epoch column is not a history at all (it once read as the former).
            if reader.fieldnames is not None and "epoch" not in reader.fieldnames:
                raise KeyError("epoch")
            for row in reader:
                parsed = {k: float(v) for k, v in row.items() if v not in ("", None)}
                parsed["epoch"] = int(parsed["epoch"])
                rows[parsed["epoch"]] = parsed  # a re-trained epoch replaces the earlier row
    except (ValueError, KeyError, TypeError) as error:  # UnicodeDecodeError is a ValueError
        what = f"no {error} column" if isinstance(error, KeyError) else error
        raise ValueError(
            f"{path} is not a training history (the history.csv of `train --out`): {what}"
        ) from None
    return [rows[e] for e in sorted(rows)]


def plot_history(history, path, *, title=None):
    """Draw train (thin) and test (bold) error in % against epoch into a PNG.

    Args:
        history: a CSVLogger file path, or a list of row dicts from `read_history`.
        path: where to write the PNG (written atomically).
        title: plot title.
    """
    return plot_runs({title or "": history}, path, title=title)


# The most legend entries a panel keeps inside its axes; more go beside it.
LEGEND_INSIDE = 4


def plot_runs(runs, path, *, title=None, against=("epoch",), target=None, deadline=None, ymax=None):
    """Several runs on one plot, one colour each: {label: history path or rows}.

    Args:
        runs: {label: CSVLogger path or `read_history` rows}.
        path: where to write the PNG (written atomically).
        title: the figure's title.
        against: the x axes, one panel each: "epoch" and/or "minutes" (the history's
            `wall_time`, in minutes). Train error (thin, dashed) is drawn against epochs only.
        target: a test error in % to mark with a horizontal line (e.g. 10 for "90%").
        deadline: minutes to mark with a vertical line on the "minutes" panel (e.g. 60 for
            "within the hour"), labelled in its legend.
        ymax: the top of the error axis in % (e.g. 30 to look at the ends of the curves);
            by default, what the curves need.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    unknown = set(against) - {"epoch", "minutes"}
    if unknown or not against:
        raise ValueError(f"against must name 'epoch' and/or 'minutes'. Received: {against!r}")
    fig, axes = plt.subplots(
        1, len(against), figsize=(6.4 * len(against), 4.2), dpi=110, squeeze=False
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    histories = {
        label: read_history(h) if isinstance(h, (str, os.PathLike)) else h
        for label, h in runs.items()
    }
    for ax, axis in zip(axes[0], against):
        for i, (label, rows) in enumerate(histories.items()):
            if not rows:
                continue
            color = colors[i % len(colors)]
            # A run of one epoch is one point, which a line without markers does not show.
            dot = "." if len(rows) == 1 else None
            if axis == "epoch":
                xs = [r["epoch"] + 1 for r in rows]
            else:
                xs = [r.get("wall_time", float("nan")) / 60 for r in rows]
            if axis == "epoch" and "accuracy" in rows[0]:
                ax.plot(
                    xs,
                    [100 * (1 - r["accuracy"]) for r in rows],
                    color=color,
                    linewidth=0.8,
                    linestyle="--",
                    marker=dot,
                    label=f"{label} train".strip(),
                )
            if "val_accuracy" in rows[0]:
                ax.plot(
                    xs,
                    [100 * (1 - r["val_accuracy"]) for r in rows],
                    color=color,
                    linewidth=2.0,
                    marker="." if axis == "minutes" else dot,
                    label=f"{label} test".strip(),
                )
        if target is not None:
            ax.axhline(target, color="grey", linewidth=0.8, linestyle=":")
        if deadline is not None and axis == "minutes":
            ax.axvline(
                deadline, color="grey", linewidth=0.8, linestyle="--", label=f"{deadline:g} min"
            )
        if axis == "epoch":
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # no 1.5
        else:
            ax.set_xlabel("wall time (minutes)")
        ax.set_ylabel("error (%)")
        ax.set_ylim(bottom=0, top=ymax)
        ax.grid(alpha=0.3)
        if len(ax.get_legend_handles_labels()[1]) > LEGEND_INSIDE:
            # Beside the panel: inside, a long legend hides the ends of the curves.
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        else:
            ax.legend(fontsize=8)
    if title and len(against) > 1:
        fig.suptitle(title)
    elif title:
        axes[0][0].set_title(title)
    return save_figure(fig, path)


def save_figure(fig, path):
    """Write a matplotlib figure to PNG atomically (a temp file, then os.replace), so a kill
    mid-write never leaves a truncated plot; then close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)  # left only where the write or the rename failed
    return path
