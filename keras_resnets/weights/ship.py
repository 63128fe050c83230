"""Maintainers' tool: ship a finished CIFAR-10 run's weights with the package.

    python -m keras_resnets.weights.ship RUN_DIR --data ../shared/cifar10 [--commit SHA]
    python -m keras_resnets.weights.ship --restore resnet25 --data ../shared/cifar10
    (--tf-logs: show TensorFlow's load-time log lines, hidden by default)

Takes the run's final weights (`last.keras`, or `last.weights.h5` from a GPU run: the last
epoch, not the best on the test set, which would be chosen on the test set), scores them on
the full test set and on the fixed 2,000-image slice the tests replay (`x_test[::5]`, every
class), and writes
`keras_resnets/weights/cifar10/<model><depth>.weights.h5` with its entry in `manifest.json`:
accuracy, the exact count of correct slice images, the file's SHA-256, its storage (float16
where that gets at least as many test images right as float32, else float32 losslessly
compressed; `--storage`), and the run's
recipe, epochs, seed, precision, wall time, the git commit of the code that trained it and the
machine it trained on (each machine with its epochs, for a run resumed on another).
The registry reads the manifest (`registry.shipped_weights`).
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "cifar10"
MANIFEST = HERE / "manifest.json"
SLICE = slice(None, None, 5)  # 2,000 of the 10,000 test images, 200 of each class


def predictions(model, images, batch_size=500):
    return np.concatenate(
        [
            np.argmax(model.predict(images[i : i + batch_size], verbose=0), axis=-1)
            for i in range(0, len(images), batch_size)
        ]
    )


def percent(predicted, labels):
    """Accuracy in percent, as the manifest records it (two decimals)."""
    return round(float((predicted == labels).mean()) * 100, 2)


def file_figures(path, storage, full, y_test):
    """The manifest's figures of the file `path` as stored: its hash, storage, and its
    full-test-set and slice scores from `full`, its test-set predictions."""
    sliced = full[SLICE]
    return {
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "storage": storage,
        "test_accuracy": percent(full, y_test),
        "test_images": int(len(full)),
        "slice": "x_test[::5]",
        "slice_correct": int((sliced == y_test[SLICE]).sum()),
        "slice_images": int(len(sliced)),
    }


PNG = "cifar10 (../shared/cifar10: near-lossless PNG copy, original split)"
JPEG_TRAINED = (
    "cifar10 (trained on the JPEG q75 copy of the training images, ../shared/cifar10-jpeg; "
    "scored on the near-lossless PNG test set, ../shared/cifar10)"
)
PARTLY_JPEG = (
    "cifar10 (trained partly on the JPEG q75 copy of the training images, partly on the "
    "PNG copy: see the run's starts; scored on the near-lossless PNG test set)"
)


def dataset_words(sources):
    """The manifest's `dataset`, from the data sources a run trained on (run.json's `data`,
    or each start's): the GPU runs of benchmarks/gpu/train.sh train on the JPEG copy's
    training archive, runs here on the PNG copy's. Every figure in the manifest is on the
    PNG test set. Another source is named as it is."""
    kinds = set()
    for source in sources:
        if "cifar10-jpeg-train" in (source or ""):
            kinds.add(JPEG_TRAINED)
        elif "cifar10-train.tar" in (source or ""):
            kinds.add(PNG)
        else:
            kinds.add(f"cifar10 ({source})")
    if kinds == {JPEG_TRAINED, PNG}:
        return PARTLY_JPEG
    return "; ".join(sorted(kinds))


def spans(starts, epochs):
    """[(machine, first epoch, last epoch)], 1-based, of the starts that trained epochs: a
    start that finished none (killed in its first epoch, or resumed after the last) is
    dropped, a start at an earlier epoch than the last one's replaces what it retrains, and
    consecutive starts on one machine merge."""
    kept = []  # [machine, first epoch (0-based)]
    for start in starts:
        kept = [span for span in kept if span[1] < start["epoch"]]
        if not kept or kept[-1][0] != start.get("machine"):
            kept.append([start.get("machine"), start["epoch"]])
    kept = [span for span in kept if span[1] < epochs]
    ends = [first for _, first in kept[1:]] + [epochs]
    return [(name, first + 1, end) for (name, first), end in zip(kept, ends)]


def trained_on(summary, starts=()):
    """The machine a run trained on, as `machine.words` words it: from its `summary.json`
    (`machine.describe()` there), or, for a run resumed on other machines, each machine with
    its epochs, from run.json's `starts`. None for a summary written before the CPU's family
    and model were recorded."""
    from keras_resnets import machine

    parts = spans(starts, summary["epochs"]) if starts else []
    if len(parts) > 1:
        return "; ".join(
            f"{name or 'an unrecorded machine'} (epochs {first}-{last})"
            for name, first, last in parts
        )
    desc = summary.get("machine") or {}
    if not desc.get("gpus") and (desc.get("cpu") or {}).get("family") is None:
        return None
    return machine.words(desc)


def rewrite(source, target, *, float16):
    """Copy the `.weights.h5` file `source` to `target`: with `float16`, its float32 arrays in
    float16, at about half the bytes (Keras casts each array back to its float32 variable on
    load); without, its float32 arrays compressed losslessly (HDF5's byte shuffle and gzip,
    which h5py reads back transparently: 2-9% smaller for our float32 files, bit for bit the
    same values). Float16 arrays stay uncompressed: gzip makes them larger.

    h5py by hand: Keras writes a weights file from a model's variables, in their dtype,
    uncompressed, and has no option to store them narrower or compressed."""
    import h5py

    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        dst.attrs.update(src.attrs)

        def copy(name, item):
            if isinstance(item, h5py.Group):
                dst.require_group(name).attrs.update(item.attrs)
                return
            values = item[()]
            options = {}
            if values.dtype == np.float32 and float16:
                values = values.astype(np.float16)
            elif values.dtype == np.float32 and values.size >= 1024:  # small: headers cost more
                options = dict(compression="gzip", compression_opts=9, shuffle=True)
            dst.create_dataset(name, data=values, **options).attrs.update(item.attrs)

        src.visititems(copy)


def store(model, path, storage, x_test, y_test, full32=None):
    """Save `model`'s weights at `path`, in float16 where `storage` says so, or for "auto"
    where the float16 file gets at least as many test images right as float32 (the issue's
    "float16 storage is fine if the measured accuracy is unchanged"), else in float32,
    losslessly compressed. Returns the storage chosen and the test-set predictions of the
    file as saved, and of float32."""
    if full32 is None:  # `model`'s test-set predictions, where the caller has them
        full32 = predictions(model, x_test)
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / f"plain.{path.name}"
        model.save_weights(plain)
        if storage != "float32":
            half = Path(folder) / f"half.{path.name}"
            rewrite(plain, half, float16=True)
            model.load_weights(half)
            full16 = predictions(model, x_test)
            model.load_weights(plain)
            if storage == "float16" or (full16 == y_test).sum() >= (full32 == y_test).sum():
                shutil.move(half, path)
                return "float16", full16, full32
        rewrite(plain, path, float16=False)
    return "float32", full32, full32


def restore(key, data_dir, storage):
    """Store the shipped file `key` again as `storage` says (float16 for the files shipped
    before float16 storage existed, whose run folders are gone), keeping its provenance.

    Nothing is written unless the file still matches its SHA-256 and still scores its
    manifest figure on the full test set (else the file, the network or the preprocessing
    changed since it shipped). A float16 file cannot become float32 again: its float32
    weights are gone."""
    import keras_resnets
    from keras_resnets import data

    manifest = json.loads(MANIFEST.read_text())
    if key not in manifest:
        raise SystemExit(f"No shipped weights {key!r}: the manifest has {', '.join(manifest)}.")
    entry = manifest[key]
    path = HERE / entry["file"]
    stored = entry.get("storage", "float32")
    if stored == "float16" and storage == "float32":
        raise SystemExit(f"{path.name} is stored in float16: its float32 weights are gone.")
    if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
        raise SystemExit(f"{path} does not match its manifest's SHA-256. Nothing written.")
    model = keras_resnets.build(entry["model"], **entry["model_kwargs"])
    model.load_weights(path)
    arrays = data.load_arrays(data_dir)
    as_stored = predictions(model, arrays.x_test)
    accuracy = percent(as_stored, arrays.y_test)
    if accuracy != entry["test_accuracy"]:
        raise SystemExit(
            f"{path.name} scores {accuracy}% where its manifest says {entry['test_accuracy']}%: "
            "the network or the data changed since it shipped. Nothing written."
        )
    # A float32 file's figure is its float32 figure; a float16 file keeps the one recorded.
    recorded = entry.get("float32_test_accuracy", accuracy)
    with tempfile.TemporaryDirectory() as folder:
        candidate = Path(folder) / path.name
        chosen, full, _ = store(
            model, candidate, storage, arrays.x_test, arrays.y_test, full32=as_stored
        )
        shutil.move(candidate, path)
    entry.update(file_figures(path, chosen, full, arrays.y_test), float32_test_accuracy=recorded)
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(
        f"{path} ({os.path.getsize(path):,} bytes, {chosen}): {entry['test_accuracy']}% on the "
        f"test set (float32: {recorded}%), {entry['slice_correct']}/{entry['slice_images']} "
        "on the slice"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?", help="the finished run folder to ship")
    parser.add_argument(
        "--restore",
        metavar="KEY",
        help="store a shipped file again (e.g. resnet25) as --storage says, its provenance kept",
    )
    parser.add_argument("--data", required=True)
    parser.add_argument("--commit", help="the commit of the code that trained the run")
    parser.add_argument(
        "--machine", help="the machine that trained it (default: the run's summary's, else this)"
    )
    parser.add_argument(
        "--storage",
        choices=("auto", "float16", "float32"),
        default="auto",
        help="the file's dtype; auto: float16 where it gets at least as many test images right",
    )
    parser.add_argument("--tf-logs", action="store_true", help="show TensorFlow's log lines")
    args = parser.parse_args(argv)
    if args.restore and (args.run or args.commit or args.machine):
        parser.error(
            "--restore KEY keeps the file's provenance: give no run, --commit or --machine"
        )
    if not args.restore and args.run is None:
        parser.error("give the run folder to ship, or --restore KEY")
    from keras_resnets import machine

    machine.start_keras(tf_logs=args.tf_logs)  # Keras and TensorFlow as the CLI starts them
    if args.restore:
        return restore(args.restore, args.data, args.storage)

    import keras

    import keras_resnets
    from keras_resnets import data

    run = json.loads((args.run / "run.json").read_text())
    summary = json.loads((args.run / "summary.json").read_text())
    depth = run["model_kwargs"].get("depth")
    key = f"{run['model']}{depth or ''}"
    model = keras_resnets.build(run["model"], **run["model_kwargs"])  # float32, as served
    if (args.run / "last.keras").exists():
        trained = keras.saving.load_model(args.run / "last.keras", compile=False)
        model.set_weights(trained.get_weights())
    else:  # a GPU run brings back its weights alone (benchmarks/gpu/train.sh)
        model.load_weights(args.run / "last.weights.h5")

    arrays = data.load_arrays(args.data)
    HERE.mkdir(parents=True, exist_ok=True)
    path = HERE / f"{key}.weights.h5"
    storage, full, full32 = store(model, path, args.storage, arrays.x_test, arrays.y_test)
    commit = (
        args.commit
        or subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    )
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    manifest[key] = {
        "model": run["model"],
        "model_kwargs": run["model_kwargs"],
        "file": path.name,
        **file_figures(path, storage, full, arrays.y_test),
        "float32_test_accuracy": percent(full32, arrays.y_test),
        "dataset": dataset_words(
            [start["data"] for start in run.get("starts", ()) if "data" in start]
            or [run.get("data")]
        ),
        "recipe": run["recipe"],
        "epochs": summary["epochs"],
        "seed": summary.get("seed", run.get("seed")),
        "precision": summary.get("mixed_precision") or summary.get("precision"),
        "machine": args.machine
        or trained_on(summary, run.get("starts", ()))
        or machine.words(machine.describe()),
        "software": summary.get("machine"),
        "wall_time_minutes": round(float(summary.get("wall_time_seconds", 0)) / 60, 1),
        "commit": commit,
        "argv": run.get("argv"),
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(
        f"{path} ({os.path.getsize(path):,} bytes): {manifest[key]['test_accuracy']}% on the "
        f"test set, {manifest[key]['slice_correct']}/{manifest[key]['slice_images']} on the slice"
    )


if __name__ == "__main__":
    main()
