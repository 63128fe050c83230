"""The callbacks of a training run: Keras's own, and three Keras has no equivalent of.

`run_callbacks` assembles the list `train` passes to `fit`, in the order that matters:
the pipeline's epoch, the distribution's (statistics averaged before anything is saved),
the wall clock (before CSVLogger, which records its columns), the backup, the logs and
the checkpoints.
"""

import os
import time
from pathlib import Path

import keras
import numpy as np

from keras_resnets import plotting


class WallClock(keras.callbacks.Callback):
    """Adds `wall_time` (seconds since the run first started, across resumes) and
    `train_images_per_second` (training steps only, evaluation excluded) to the epoch logs,
    so CSVLogger records them. Keras has no callback for either."""

    def __init__(self, *, images_per_epoch, elapsed_before=0.0):
        super().__init__()
        self.images_per_epoch = images_per_epoch
        self.elapsed_before = elapsed_before

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._train_seconds = time.perf_counter() - self._epoch_start

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        train_seconds = getattr(self, "_train_seconds", time.perf_counter() - self._epoch_start)
        logs["wall_time"] = self.elapsed_before + time.perf_counter() - self._start
        logs["train_images_per_second"] = self.images_per_epoch / max(train_seconds, 1e-9)


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Saves `last.keras` every epoch and `best.keras` on a new best `monitor`, atomically.

    Keras's ModelCheckpoint writes in place, so a kill during the write leaves a truncated
    file where the previous good one was; here the write goes to a temporary file that then
    replaces the target in one `os.replace`.
    """

    def __init__(self, directory, *, monitor="val_accuracy", best=-np.inf):
        super().__init__()
        self.directory = Path(directory)
        self.monitor = monitor
        self.best = best

    def _save(self, name):
        target = self.directory / name
        tmp = self.directory / f".{name}.tmp.keras"
        self.model.save(tmp)
        os.replace(tmp, target)

    def on_epoch_end(self, epoch, logs=None):
        self._save("last.keras")
        value = (logs or {}).get(self.monitor)
        if value is not None and value > self.best:
            self.best = value
            self._save("best.keras")


class PlotErrors(keras.callbacks.Callback):
    """Redraws `errors.png` from `history.csv` after each epoch."""

    def __init__(self, history_path, plot_path, title):
        super().__init__()
        self.history_path, self.plot_path, self.title = history_path, plot_path, title

    def on_epoch_end(self, epoch, logs=None):
        plotting.plot_history(self.history_path, self.plot_path, title=self.title)


def _tensorflow_installed():
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def run_callbacks(
    folder, *, title, images_per_epoch, elapsed_before, best_before, first=(), verbose=1
):
    """The callbacks of a run writing into the `RunFolder` `folder`.

    Args:
        folder: the `keras_resnets.training.run_folder.RunFolder` of this process.
        title: the title of `errors.png` (the network's name).
        images_per_epoch: training images of an epoch, for `WallClock`.
        elapsed_before, best_before: the wall time and best test accuracy of the epochs
            trained before a resume (`RunFolder.trim_history`).
        first: callbacks to run before all others (the pipeline's epoch, the distribution's).
        verbose: 0 prints nothing; otherwise a missing TensorBoard is said in one line.
    """
    callbacks = list(first) + [
        WallClock(images_per_epoch=images_per_epoch, elapsed_before=elapsed_before),
        # delete_checkpoint=False: re-running a finished run re-reports it instead of retraining.
        keras.callbacks.BackupAndRestore(
            str(folder.backup), double_checkpoint=True, delete_checkpoint=False
        ),
        keras.callbacks.CSVLogger(str(folder.history), append=True),
        AtomicModelCheckpoint(folder.path, best=best_before),
        PlotErrors(folder.history, folder.path / "errors.png", title=title),
    ]
    if _tensorflow_installed():  # Keras's TensorBoard writes through tf.summary
        callbacks.insert(-2, keras.callbacks.TensorBoard(str(folder.path / "tensorboard")))
    elif verbose:
        print(
            "TensorBoard logs skipped: Keras writes them through TensorFlow, which is not "
            "installed here. history.csv and errors.png hold the curves."
        )
    return callbacks
