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
    """A fixed-width table: rows are true classes, columns predictions, with recall.

    Rows carry the class names in full; columns are numbered as the rows are, so the table
    stays narrow however long the names are.
    """
    names = [str(name) for name in class_names]
    number = len(str(len(names) - 1))
    label = number + 1 + max(len(name) for name in names)
    width = max(len(str(int(matrix.max()))), number, 4)
    header = f"{'predicted:':>{label}} " + " ".join(f"{i:>{width}}" for i in range(len(names)))
    lines = [
        "rows: true class, columns: predicted class (numbered as the rows)",
        header + "  recall",
    ]
    for i, (name, row) in enumerate(zip(names, matrix)):
        recall = row[i] / max(row.sum(), 1)
        cells = " ".join(f"{int(v):>{width}}" for v in row)
        lines.append(f"{f'{i:>{number}} {name}':<{label}} {cells}  {recall:6.1%}")
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
            ax.text(
                j,
                i,
                int(matrix[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if normalised[i, j] > 0.5 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046)
    colorbar.set_label("fraction of the true class (row)")
    return plotting.save_figure(fig, path)
