"""Confusion matrices: computed, printed and drawn."""

import numpy as np

from keras_resnets import plotting


def confusion_matrix(labels, predictions, num_classes):
    """Counts `[true, predicted]`, as `tf.math.confusion_matrix` but backend-free."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    return np.bincount(
        labels * num_classes + predictions, minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)


def format_confusion_matrix(matrix, class_names):
    """A fixed-width table: rows are true classes, columns predictions, with recall."""
    short = [name[:6] for name in class_names]
    width = max(6, len(str(int(matrix.max()))))
    header = " " * 11 + " ".join(f"{s:>{width}}" for s in short) + "  recall"
    lines = ["rows: true class, columns: predicted", header]
    for name, row in zip(class_names, matrix):
        recall = row[list(class_names).index(name)] / max(row.sum(), 1)
        cells = " ".join(f"{int(v):>{width}}" for v in row)
        lines.append(f"{name[:10]:>10} {cells}  {recall:6.1%}")
    return "\n".join(lines)


def plot_confusion_matrix(matrix, class_names, path, *, title=None):
    """Row-normalised confusion matrix as a heat map PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, class_names, fontsize=8)
    for i in ticks:
        for j in ticks:
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if normalised[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    return plotting.save_figure(fig, path)
