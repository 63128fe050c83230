"""Wall-clock time to a target test accuracy on CIFAR-10, from a training run's history.

A run folder written by `keras-resnets train` (or `keras_resnets.training.train`) holds
`history.csv`, one row per epoch with `wall_time` (seconds since the run first started,
across resumes) and `val_accuracy`. The time to accuracy is the `wall_time` of the first
epoch whose `val_accuracy` reaches the target.
"""

import csv
import json
from pathlib import Path


def from_history(run_dir, target):
    """The first epoch of `run_dir/history.csv` reaching `target`, as a JSON-ready dict."""
    run_dir = Path(run_dir)
    history = run_dir / "history.csv"
    if not history.exists():
        raise FileNotFoundError(f"No history.csv in {run_dir}: is it a training run folder?")
    with history.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"epoch", "val_accuracy", "wall_time"} - set(rows[0] if rows else ())
    if missing:
        raise ValueError(f"{history} lacks the column(s) {', '.join(sorted(missing))}.")
    result = {
        "kind": "time_to_accuracy",
        "run": str(run_dir),
        "target": target,
        "epochs_run": len(rows),
        "best_val_accuracy": max(float(r["val_accuracy"]) for r in rows),
        "reached": False,
        "epoch": None,
        "wall_time_seconds": None,
        "total_wall_time_seconds": float(rows[-1]["wall_time"]),
    }
    for row in rows:
        if float(row["val_accuracy"]) >= target:
            # CSVLogger's epochs count from 0; people count from 1.
            result.update(
                reached=True, epoch=int(row["epoch"]) + 1, wall_time_seconds=float(row["wall_time"])
            )
            break
    for name in ("run.json", "summary.json"):
        path = run_dir / name
        if path.exists():
            info = json.loads(path.read_text())
            for key in ("model", "model_kwargs", "recipe", "batch_size", "mixed_precision"):
                if key in info and key not in result:
                    result[key] = info[key]
            if "machine" in info:
                result["machine"] = info["machine"]
    return result


def train_and_measure(train_kwargs, target):
    """Train with `keras_resnets.training.train(**train_kwargs)`, then read its run folder."""
    from keras_resnets import training

    config = training.TrainConfig(**train_kwargs)
    training.run(config)
    result = from_history(config.out, target)
    result["train_kwargs"] = {k: v if _jsonable(v) else repr(v) for k, v in train_kwargs.items()}
    return result


def _jsonable(value):
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True
