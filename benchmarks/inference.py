"""Inference speed of each export format, as its runtime serves it: TensorFlow (the SavedModel's
`serving_default` signature), ONNX Runtime, and LiteRT in float32 and dynamic-range int8.

    python -m benchmarks inference                       # cifar_resnet20, resnet, resnet50
    python -m benchmarks inference --models cifar_resnet20 --rounds 3 --out docs
    python -m benchmarks inference --accuracy runs/r20/best.keras --data ../shared/cifar10

Batch 1 latency (median and p99 of single calls) and batch 32 throughput. The formats are
interleaved: each round times every format in turn (in a rotating order), so a slow spell on
a shared machine falls on all of them. Every runtime gets the same thread count.

`--accuracy CHECKPOINT` also exports a trained checkpoint to each format and measures its
CIFAR-10 test accuracy through each runtime (the int8 model's accuracy loss).

With `--out DIR` the results go to DIR/inference.json and a section of DIR/benchmarks.md
(between the markers below, replaced on each run).
"""

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

FORMATS = ("saved_model", "onnx", "litert", "litert_int8")
LABELS = {
    "saved_model": "TF SavedModel",
    "onnx": "ONNX Runtime",
    "litert": "LiteRT float32",
    "litert_int8": "LiteRT int8",
}
# name: (registry name, builder kwargs, batch 1 calls per round, batch 32 calls per round)
MODELS = {
    "cifar_resnet20": ("cifar_resnet", {"depth": 20}, 50, 3),
    "resnet": ("resnet", {}, 50, 3),  # the article's 25-layer ResNet
    "resnet50": ("resnet50", {}, 8, 1),  # 224x224: fewer calls, it is slow on 2 cores
}
EXPORTS = {
    "saved_model": ("saved_model", None),
    "onnx": ("onnx", None),
    "litert": ("litert", None),
    "litert_int8": ("litert", "int8"),
}
BEGIN = "<!-- inference benchmark: written by `python -m benchmarks inference --out` -->"
END = "<!-- end of inference benchmark -->"
GOAL = 1.5


def export_all(model, folder, *, class_names=None):
    """Export `model` in every format under `folder`; `{format: version folder}`."""
    from keras_resnets.export import export

    return {
        key: export(
            model, Path(folder) / key, format=fmt, quantize=quantize, class_names=class_names
        )
        for key, (fmt, quantize) in EXPORTS.items()
    }


def runner(key, path, *, batch_size, threads):
    """A function `images -> probabilities` (NumPy arrays) on the format's own runtime."""
    if key == "saved_model":
        import tensorflow as tf

        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        return lambda images: signature(images=tf.constant(images))["probabilities"].numpy()
    if key == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(path / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        return lambda images: session.run(["probabilities"], {"images": images})[0]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path / "model.tflite"), num_threads=threads)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(
        index, [batch_size] + list(interpreter.get_input_details()[0]["shape"][1:]), strict=True
    )
    interpreter.allocate_tensors()
    output = interpreter.get_signature_runner().get_output_details()["probabilities"]["index"]

    def run(images):
        interpreter.set_tensor(index, images)
        interpreter.invoke()
        return interpreter.get_tensor(output)

    return run


def measure(name, *, rounds=5, threads=None, formats=FORMATS, calls=None, folder=None):
    """Interleaved batch 1 latency and batch 32 throughput of `name` in each format."""
    import keras
    import numpy as np

    import keras_resnets

    registry_name, kwargs, calls_1, calls_32 = MODELS[name]
    if calls is not None:
        calls_1, calls_32 = calls
    threads = threads or os.cpu_count()
    keras.utils.set_random_seed(0)
    model = keras_resnets.build(registry_name, **kwargs)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        start = time.monotonic()
        paths = export_all(model, tmp)
        export_seconds = time.monotonic() - start
        sizes = {key: _size(paths[key]) for key in formats}
        shape = tuple(model.input_shape[1:])
        rng = np.random.default_rng(0)
        inputs = {b: rng.integers(0, 256, (b,) + shape).astype("float32") for b in (1, 32)}
        runners = {
            (key, b): runner(key, paths[key], batch_size=b, threads=threads)
            for key in formats
            for b in (1, 32)
        }
        reference = model.predict(inputs[1], verbose=0)
        agreement = {
            key: float(np.abs(runners[key, 1](inputs[1]) - reference).max()) for key in formats
        }
        for (key, b), run in runners.items():  # warm-up: first-call costs out of the timing
            run(inputs[b])
        times = {(key, b): [] for key in formats for b in (1, 32)}
        for r in range(rounds):
            order = list(formats[r % len(formats) :]) + list(formats[: r % len(formats)])
            for key in order:
                for b, count in ((1, calls_1), (32, calls_32)):
                    run = runners[key, b]
                    for _ in range(count):
                        t = time.perf_counter()
                        run(inputs[b])
                        times[key, b].append(time.perf_counter() - t)
    results = {}
    for key in formats:
        one, many = sorted(times[key, 1]), times[key, 32]
        results[key] = {
            "batch1_median_ms": 1000 * statistics.median(one),
            "batch1_p99_ms": 1000 * one[min(len(one) - 1, int(0.99 * len(one)))],
            "batch1_calls": len(one),
            "batch32_images_per_second": 32 / statistics.median(many),
            "batch32_calls": len(many),
            "size_mb": sizes[key] / 1e6,
            "max_abs_diff_vs_keras": agreement[key],
        }
    tf_median = results["saved_model"]["batch1_median_ms"]
    fastest = min(formats, key=lambda k: results[k]["batch1_median_ms"])
    return {
        "model": name,
        "input_shape": list(shape),
        "threads": threads,
        "rounds": rounds,
        "export_seconds": export_seconds,
        "results": results,
        "fastest_batch1": fastest,
        "speedup_vs_saved_model": tf_median / results[fastest]["batch1_median_ms"],
    }


def accuracy(checkpoint, *, data=None, limit=None, batch_size=100, threads=None):
    """CIFAR-10 test accuracy of a trained checkpoint through each format's runtime."""
    import keras
    import numpy as np

    from keras_resnets import data as data_lib

    threads = threads or os.cpu_count()
    model = keras.saving.load_model(checkpoint, compile=False)
    arrays = data_lib.load_arrays(data)
    x, y = arrays.x_test, arrays.y_test
    if limit:
        x, y = x[:limit], y[:limit]
    x = x.astype("float32")
    keras_predictions = model.predict(x, batch_size=batch_size, verbose=0).argmax(-1)
    results = {"keras": {"accuracy": float(np.mean(keras_predictions == y))}}
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_all(model, tmp, class_names=arrays.class_names)
        singles = {}
        for key, path in paths.items():
            run = runner(key, path, batch_size=batch_size, threads=threads)
            predicted = np.concatenate(
                [run(x[i : i + batch_size]).argmax(-1) for i in range(0, len(x), batch_size)]
            )
            results[key] = {
                "accuracy": float(np.mean(predicted == y)),
                "agreement_with_keras": float(np.mean(predicted == keras_predictions)),
                "size_mb": _size(path) / 1e6,
            }
            singles[key] = runner(key, path, batch_size=1, threads=threads)
            singles[key](x[:1])  # first-call costs out of the timing
        # The trained weights' batch 1 latency, interleaved as in `measure`.
        times = {key: [] for key in singles}
        for r in range(5):
            for key in FORMATS[r % len(FORMATS) :] + FORMATS[: r % len(FORMATS)]:
                for i in range(40):
                    t = time.perf_counter()
                    singles[key](x[i : i + 1])
                    times[key].append(time.perf_counter() - t)
        for key in singles:
            results[key]["batch1_median_ms"] = 1000 * statistics.median(times[key])
    return {
        "checkpoint": str(checkpoint),
        "images": int(len(y)),
        "source": arrays.source,
        "results": results,
    }


def run(models=tuple(MODELS), *, rounds=5, threads=None, checkpoint=None, data=None, limit=None):
    from benchmarks import machine

    result = {
        "kind": "inference",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine.describe(),
        "models": [],
    }
    for name in models:
        print(f"inference: {name} ...", flush=True)
        result["models"].append(measure(name, rounds=rounds, threads=threads))
    if checkpoint:
        print(f"inference: accuracy of {checkpoint} ...", flush=True)
        result["accuracy"] = accuracy(checkpoint, data=data, limit=limit, threads=threads)
    return result


def markdown(result):
    m = result["machine"]
    cpu = m.get("cpu") or {}
    cpu_name = cpu.get("model", "?") if isinstance(cpu, dict) else cpu
    flags = ", ".join(cpu.get("flags", [])) if isinstance(cpu, dict) else ""
    threads = result["models"][0]["threads"] if result["models"] else "?"
    lines = [
        BEGIN,
        "## Inference by export format",
        "",
        f"{cpu_name} ({flags}), {m.get('cpu_count')} cores, shared with other jobs while "
        f"measured (medians resist their noise; p99 does not); TensorFlow "
        f"{m.get('tensorflow', '?')}, {result['date']}. Every runtime on {threads} threads; "
        "formats interleaved round by round; untrained weights (speed does not depend on "
        f"them). Command: `{result.get('command', 'python -m benchmarks inference')}`.",
        "",
        "| model | format | size MB | batch 1 median ms | batch 1 p99 ms | batch 32 images/s "
        "| batch 1 vs SavedModel |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for g in result["models"]:
        tf_median = g["results"]["saved_model"]["batch1_median_ms"]
        for key, s in g["results"].items():
            lines.append(
                f"| {g['model']} {'x'.join(map(str, g['input_shape'][:2]))} | {LABELS[key]} | "
                f"{s['size_mb']:.2f} | {s['batch1_median_ms']:.2f} | {s['batch1_p99_ms']:.2f} | "
                f"{s['batch32_images_per_second']:,.0f} | "
                f"{tf_median / s['batch1_median_ms']:.2f}x |"
            )
    lines.append("")
    for g in result["models"]:
        r = g["results"]
        tf_median = r["saved_model"]["batch1_median_ms"]
        verdict = "met" if g["speedup_vs_saved_model"] >= GOAL else "NOT met"
        exact = min((k for k in r if k != "litert_int8"), key=lambda k: r[k]["batch1_median_ms"])
        exact_speedup = tf_median / r[exact]["batch1_median_ms"]
        lines.append(
            f"- {g['model']}: fastest at batch 1 is {LABELS[g['fastest_batch1']]}, "
            f"{g['speedup_vs_saved_model']:.2f}x the SavedModel (goal {GOAL}x: {verdict}); "
            f"fastest in float32: {LABELS[exact]}, {exact_speedup:.2f}x "
            f"({'met' if exact_speedup >= GOAL else 'NOT met'})."
        )
    if result.get("accuracy"):
        a = result["accuracy"]
        lines += [
            "",
            f"CIFAR-10 test accuracy of `{a['checkpoint']}` through each runtime "
            f"({a['images']:,} images):",
            "",
            "| format | size MB | accuracy | same class as Keras | batch 1 median ms |",
            "| --- | --- | --- | --- | --- |",
            f"| Keras (`model.predict`) | | {a['results']['keras']['accuracy']:.4f} | | |",
        ]
        for key in FORMATS:
            s = a["results"][key]
            lines.append(
                f"| {LABELS[key]} | {s['size_mb']:.2f} | {s['accuracy']:.4f} | "
                f"{s['agreement_with_keras']:.4f} | "
                f"{s.get('batch1_median_ms', float('nan')):.2f} |"
            )
    lines += ["", END]
    return "\n".join(lines)


def write(result, out_dir):
    """DIR/inference.json, and the section of DIR/benchmarks.md between BEGIN and END."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "inference.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    md = out_dir / "benchmarks.md"
    text = md.read_text() if md.exists() else ""
    section = markdown(result)
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    md.write_text(text)
    return md


def _size(path):
    return sum(
        f.stat().st_size
        for f in Path(path).rglob("*")
        if f.is_file() and "assets.extra" not in f.parts
    )
