"""The run folder: what a run writes, how a run is resumed, and the one-run-per-folder rule.

    history.csv        one row per epoch (Keras's CSVLogger), with wall-clock time
    tensorboard/       TensorBoard logs
    best.keras         the model with the best test accuracy so far
    last.keras         the model after the last finished epoch
    backup/            BackupAndRestore's state: a killed run resumes from it
    errors.png         train and test error against epoch, as in the papers' figures
    run.json           what the run trains (model, builder arguments, recipe, class names,
                       data source, command line), the settings it started with, and each
                       start's epoch, time and machine
    summary.json       model, parameters, recipe, epochs, wall time, accuracies, machine

A run folder holds one run: resuming it with another model, builder arguments or recipe is
refused (`check_run_folder`), and so is resuming it with other settings (`check_settings`: its
batch size, data order or precision would change midway); the counts a resumed run leaves to
their defaults are the run's own (`recorded_settings`). Re-running a finished run reports it
without training (`RunFolder.finished`); more epochs go on training it.
"""

import csv
import datetime
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from keras_resnets import machine

# What a run writes into its folder; `restart` removes these and nothing else.
RUN_FILES = (
    "backup",
    "tensorboard",
    "history.csv",
    "best.keras",
    "last.keras",
    "errors.png",
    "run.json",
    "summary.json",
)


def restart(out):
    """Remove a previous run's files (`RUN_FILES`) from the folder `out`, and nothing else."""
    for name in RUN_FILES:
        path = Path(out) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def read_json(path):
    """The JSON in `path`, or None where it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def check_run_folder(
    out, model, model_kwargs, recipe, *, remedy="pass another `out`, or restart=True to replace it"
):
    """Raise ValueError if the run folder `out` holds a run of another model, other builder
    arguments or another recipe: resuming it, Keras would fail deep in the restore ("A total
    of 45 objects could not be loaded")."""
    previous = read_json(Path(out) / "run.json")
    if previous is None:
        return
    current = {"model": model, "model_kwargs": _jsonable(model_kwargs), "recipe": recipe}
    before = {key: previous.get(key) for key in current}
    if before == current:
        return
    network = previous.get("network") or _describe(before["model"], before["model_kwargs"])
    raise ValueError(
        f"{out} holds a {network} run ({_describe(before['model'], before['model_kwargs'])}, "
        f"recipe {before['recipe']!r}); {remedy}. Received: "
        f"{_describe(model, current['model_kwargs'])}, recipe {recipe!r}"
    )


# What a run keeps from start to end (run.json's `settings`): changing one midway would make the
# rest of it another run (other batches, data order or precision). `epochs` may grow: a
# finished run goes on training with more (`RunFolder.finished`).
SETTINGS = (
    "epochs",
    "batch_size",
    "steps_per_epoch",
    "seed",
    "mixed_precision",
    "train_limit",
    "test_limit",
    "scale_lr",
)


def recorded_settings(out):
    """The settings the run in the folder `out` started with ({} where it records none: no
    run, or one written before settings were recorded)."""
    previous = read_json(Path(out) / "run.json") or {}
    return {k: v for k, v in (previous.get("settings") or {}).items() if k in SETTINGS}


def check_settings(out, settings):
    """Raise ValueError if the run in `out` started with other `settings` (a dict of some of
    `SETTINGS`; `epochs` is never compared): resumed, it would silently become another run,
    e.g. `--mixed-precision auto` resolved on a machine without native bfloat16, or a seed
    that reorders the data."""
    before = recorded_settings(out)
    changed = [k for k in settings if k != "epochs" and k in before and before[k] != settings[k]]
    if not changed:
        return
    was = ", ".join(f"{k}={before[k]!r}" for k in changed)
    flags = ", ".join(_flag(k, before[k]) for k in changed)
    now = ", ".join(f"{k}={settings[k]!r}" for k in changed)
    raise ValueError(
        f"{out} holds a run started with {was}; resuming it with other values would change "
        f"it midway: pass the ones it started with ({flags}), or restart it (--restart). "
        f"Received: {now}"
    )


def _flag(name, value):
    flag = "--" + name.replace("_", "-")
    if value is None or value is False:
        return f"no {flag}"
    return flag if value is True else f"{flag} {value}"


def _jsonable(value):
    return json.loads(json.dumps(value))


def _describe(model, model_kwargs):
    arguments = ", ".join(f"{k}={v!r}" for k, v in (model_kwargs or {}).items())
    return f"{model}({arguments})"


class RunFolder:
    """The folder one process writes its run into (the chief's `out`, or a worker's own
    temporary folder; see `keras_resnets.training.distribute`).

    Attributes:
        path: the folder.
        backup: BackupAndRestore's folder in it.
        history: its history.csv.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.backup = self.path / "backup"
        self.history = self.path / "history.csv"

    def resume_epoch(self):
        """The epoch BackupAndRestore will resume at: it records it in training_metadata.json."""
        path = self.backup / "training_metadata.json"
        if not path.exists():
            return 0
        try:
            return int(json.loads(path.read_text())["epoch"])
        except (ValueError, KeyError):
            return 0

    def finished(self, initial_epoch, epochs):
        """The summary of a run that has already trained its `epochs` (printed in one line), or
        None where there is training left; ValueError where more epochs were trained than
        asked for."""
        done = read_json(self.path / "summary.json") if initial_epoch >= epochs else None
        if done is not None and done.get("epochs") == epochs:
            print(
                f"{self.path} is already complete: {done.get('model')} trained {epochs} of "
                f"{epochs} epochs, test accuracy {done.get('final_test_accuracy', 0):.4f} "
                f"(best {done.get('best_test_accuracy', 0):.4f}). Pass more epochs (--epochs) "
                "to go on, or restart (--restart) to train it again."
            )
            return done
        if initial_epoch > epochs:
            raise ValueError(
                f"{self.path} has trained {initial_epoch} epochs already, more than the "
                f"{epochs} asked for: pass at least {initial_epoch} epochs (--epochs), or "
                f"restart (--restart). Received: epochs={epochs}"
            )
        return None

    def trim_history(self, initial_epoch):
        """Drop rows of epochs that will be trained again (a kill after CSVLogger wrote a row
        but before the backup saved), so the resumed history has each epoch once. Returns the
        wall time and the best test accuracy of the epochs kept."""
        if not self.history.exists():
            return 0.0, -np.inf
        with self.history.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < initial_epoch]
        if not rows:
            self.history.unlink()
            return 0.0, -np.inf
        with self.history.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        best = max(float(r.get("val_accuracy") or -np.inf) for r in rows)
        return float(rows[-1].get("wall_time") or 0.0), best

    def write_run(
        self, *, model, model_kwargs, recipe, network, class_names, data, epoch=0, settings=None
    ):
        """run.json: what the run trains, written at each start, before its first epoch.

        `settings`: the run's `SETTINGS` (batch size, seed, precision, ...), checked against
        those it started with (`check_settings`); `epochs` is the latest start's.

        Its `starts` lists each start of the run: the epoch it began at (0-based), the UTC
        time, the machine (`machine.words`) and the data source, so that a run resumed on
        another machine says which epochs each trained, and its wall time is read knowing
        that. A multi-worker run records its chief's machine."""
        previous = read_json(self.path / "run.json") or {}
        starts = list(previous.get("starts", []))
        if epoch and not starts:  # resumed from a run written before starts were recorded
            starts.append({"epoch": 0, "time": None, "machine": None, "data": previous.get("data")})
        starts.append(
            {
                "epoch": int(epoch),
                "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "machine": machine.words(machine.describe()),
                "data": data,
            }
        )
        run = {
            "model": model,
            "model_kwargs": model_kwargs,
            "recipe": recipe,
            "network": network,
            "class_names": list(class_names),
            "data": data,
            "settings": {**previous.get("settings", {}), **(settings or {})},
            "argv": sys.argv,
            "starts": starts,
        }
        (self.path / "run.json").write_text(json.dumps(run, indent=2))

    def write_summary(self, summary):
        """summary.json, from the dict `summary`; returns it."""
        (self.path / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        return summary
