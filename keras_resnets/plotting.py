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
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            parsed = {k: float(v) for k, v in row.items() if v not in ("", None)}
            parsed["epoch"] = int(parsed["epoch"])
            rows[parsed["epoch"]] = parsed  # a re-trained epoch replaces the earlier row
    return [rows[e] for e in sorted(rows)]


def plot_history(history, path, *, title=None):
    """Draw train (thin) and test (bold) error in % against epoch into a PNG.

    Args:
        history: a CSVLogger file path, or a list of row dicts from `read_history`.
        path: where to write the PNG (written atomically).
        title: plot title.
    """
    return plot_runs({title or "": history}, path, title=title)


def plot_runs(runs, path, *, title=None):
    """Several runs on one plot, one colour each: {label: history path or rows}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, history) in enumerate(runs.items()):
        rows = read_history(history) if isinstance(history, (str, os.PathLike)) else history
        if not rows:
            continue
        color = colors[i % len(colors)]
        epochs = [r["epoch"] + 1 for r in rows]
        if "accuracy" in rows[0]:
            ax.plot(
                epochs,
                [100 * (1 - r["accuracy"]) for r in rows],
                color=color,
                linewidth=0.8,
                linestyle="--",
                label=f"{label} train".strip(),
            )
        if "val_accuracy" in rows[0]:
            ax.plot(
                epochs,
                [100 * (1 - r["val_accuracy"]) for r in rows],
                color=color,
                linewidth=2.0,
                label=f"{label} test".strip(),
            )
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # no epoch 1.5
    ax.set_ylabel("error (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def save_figure(fig, path):
    """Write a matplotlib figure to PNG atomically (a temp file, then os.replace), so a kill
    mid-write never leaves a truncated plot; then close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path
