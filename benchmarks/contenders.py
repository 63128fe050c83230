"""Training speed on a CPU, each contender in a fresh process: oneDNN, import order, engines.

    python -m benchmarks.contenders --model cifar_resnet20 --batch-size 128 --out docs
    python -m benchmarks.contenders --model resnet50 --batch-size 32 --input-size 224 \\
        --steps 1 --repeats 2 --torch-python /tmp/keras_resnets_torchvision_venv/bin/python

Why a process per contender: TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, when it is
imported, so "oneDNN on" and "oneDNN off" cannot share a process, and neither can a
TensorFlow and a JAX Keras. Each round starts every contender once, in a rotated order; the
table keeps each contender's best round (the machine is shared: a slow spell hurts one
round, not the best of three). Every child records what it actually ran with: the backend,
whether TensorFlow's oneDNN was on (`keras_resnets.machine.tensorflow_onednn`), whether
`keras_resnets.train.train` would have printed its oneDNN notice, and its own framework's
float32 matmul rate, the peak its MFU is measured against.

Contenders (those that apply to the model):
    ours_onednn      keras_resnets on TensorFlow with oneDNN on: the CLI (`--onednn auto`),
                     or TF_ENABLE_ONEDNN_OPTS=1 / `keras_resnets.machine.enable_onednn()`
                     before the first `import keras`.
    ours_tf_first    keras_resnets after a plain `import tensorflow` with nothing set:
                     TensorFlow's default (oneDNN off on AVX2-only CPUs).
    ours_jax         keras_resnets on the JAX backend (XLA, jit-compiled step).
    keras_plain[_onednn]  the same CIFAR ResNet written with `keras.layers`, TF default / oneDNN.
    keras_app[_onednn]    keras.applications, TF default / oneDNN.
    torch            PyTorch eager, channels_last: the CIFAR ResNet of baselines.py, or
                     torchvision's model (`--torch-python`: an interpreter where it imports).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULT = "CONTENDER_RESULT "
ROOT = Path(__file__).resolve().parent.parent

# name: (description, environment changes (None removes), framework)
CONTENDERS = {
    "ours_onednn": ("keras_resnets, oneDNN on (CLI default)", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
    "ours_tf_first": (
        "keras_resnets, `import tensorflow` first, nothing set",
        {"TF_ENABLE_ONEDNN_OPTS": None},
    ),
    "ours_jax": ("keras_resnets, JAX backend", {"KERAS_BACKEND": "jax"}),
    "keras_plain": ("plain keras.layers, TF default", {"TF_ENABLE_ONEDNN_OPTS": None}),
    "keras_plain_onednn": ("plain keras.layers, oneDNN on", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
    "keras_app": ("keras.applications, TF default", {"TF_ENABLE_ONEDNN_OPTS": None}),
    "keras_app_onednn": ("keras.applications, oneDNN on", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
    "torch": ("PyTorch eager, channels_last", {}),
}


def applicable(model, *, jax=True):
    """The contenders that exist for `model`, in report order."""
    from benchmarks import baselines

    names = ["ours_onednn", "ours_tf_first"] + (["ours_jax"] if jax else [])
    if baselines.cifar_depth(model) is not None:
        names += ["keras_plain", "keras_plain_onednn"]
    name, _ = baselines.parse_model(model)
    if name in baselines.KERAS_APPLICATIONS:
        names += ["keras_app", "keras_app_onednn"]
    if baselines.cifar_depth(model) is not None or name in baselines.TORCHVISION:
        names.append("torch")
    return names


def _matmul_gflops(framework, size=2048, repeats=3):
    from benchmarks import machine

    result = machine.matmul_gflops(
        size=size, dtypes=("float32",), repeats=repeats, frameworks=[framework]
    )
    return result["results"][framework]["float32"]["gflops"]


def worker(spec):
    """In the child: build one contender, warm it up, time it; returns a JSON-ready dict."""
    name = spec["contender"]
    if name == "torch":
        from benchmarks import baselines

        baselines.configure_torch_threads()
        import torch

        model = baselines.torch_model(spec["model"], shortcut="B", classes=spec["classes"])
        size = spec["input_size"]
        contender = baselines.TorchContender(
            "torch",
            model,
            batch_size=spec["batch_size"],
            input_shape=(size, size, 3),
            classes=spec["classes"],
        )
        framework, facts = "torch", {"torch": torch.__version__}
    else:
        if name == "ours_tf_first":
            import tensorflow  # noqa: F401  # the usual order: TensorFlow (or keras) first

        import keras

        from benchmarks import baselines
        from keras_resnets import machine

        size = spec["input_size"]
        shape = (size, size, 3)
        if name.startswith("keras_plain"):
            model = baselines.plain_keras_cifar_resnet(
                baselines.cifar_depth(spec["model"]),
                shortcut="B",
                input_shape=shape,
                classes=spec["classes"],
            )
        elif name.startswith("keras_app"):
            model = baselines.keras_application(
                spec["model"], input_shape=shape, classes=spec["classes"]
            )
        else:
            model = baselines.ours(
                spec["model"], input_shape=shape, classes=spec["classes"], shortcut="B"
            )
        contender = baselines.KerasContender(name, model, batch_size=spec["batch_size"])
        framework = keras.backend.backend()
        facts = {
            "backend": framework,
            "onednn": machine.tensorflow_onednn() if framework == "tensorflow" else None,
            "notice": machine.onednn_notice() is not None,
        }
    from benchmarks import timing

    first, _ = timing.warm_up(contender.train_step, spec["warmup_steps"])
    seconds = [
        timing.time_steps(contender.train_step, spec["steps"]) for _ in range(spec["repeats"])
    ]
    return {
        **facts,
        "first_step_seconds": first,
        "step_seconds": seconds,
        "images_per_second": spec["batch_size"] / statistics.median(seconds),
        "matmul_fp32_gflops": _matmul_gflops(framework),
    }


def _environment(changes):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)  # every contender says what it runs with
    env.setdefault("KERAS_BACKEND", "tensorflow")
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_one(name, spec, *, torch_python=None, timeout=1200):
    _, changes = CONTENDERS[name]
    python = torch_python if name == "torch" and torch_python else sys.executable
    command = [python, "-m", "benchmarks.contenders", "--worker", json.dumps(spec)]
    if name == "torch":
        changes = {**changes, "KERAS_BACKEND": "jax"}  # torchvision next to TF can crash
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=_environment(changes),
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    return {"error": (done.stderr or done.stdout)[-1500:]}


def run(
    model="cifar_resnet20",
    *,
    batch_size=128,
    input_size=None,
    steps=3,
    repeats=3,
    warmup_steps=3,
    rounds=3,
    contenders=None,
    torch_python=None,
    jax=True,
    progress=print,
):
    """Every contender once per round, rotated; returns the JSON-ready group."""
    from benchmarks import baselines
    from keras_resnets import machine
    from keras_resnets.models import get_info
    from keras_resnets.utils import count_macs

    name, _ = baselines.parse_model(model)
    info = get_info(name)
    input_size = input_size or info.input_shape[0]
    names = contenders or applicable(model, jax=jax)
    spec = {
        "model": model,
        "batch_size": batch_size,
        "input_size": input_size,
        "classes": info.classes,
        "steps": steps,
        "repeats": repeats,
        "warmup_steps": warmup_steps,
    }
    import keras

    ours = baselines.ours(model, input_shape=(input_size, input_size, 3), classes=info.classes)
    macs = count_macs(ours)
    del ours
    keras.backend.clear_session()
    samples = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for n in order:
            start = time.monotonic()
            result = run_one(n, {**spec, "contender": n}, torch_python=torch_python)
            samples[n].append(result)
            shown = result.get("error", "").strip().splitlines()[-1:] or [
                f"{result['images_per_second']:.1f} img/s"
            ]
            progress(f"round {r + 1}/{rounds} {n}: {shown[0]} ({time.monotonic() - start:.0f} s)")
    summary = {}
    gflops_per_step = 2 * 3 * macs * batch_size / 1e9  # training: about three forward passes
    for n, results in samples.items():
        good = [s for s in results if "error" not in s]
        if not good:
            summary[n] = {"error": results[-1]["error"]}
            continue
        best = max(good, key=lambda s: s["images_per_second"])
        achieved = gflops_per_step * best["images_per_second"] / batch_size
        summary[n] = {
            "description": CONTENDERS[n][0],
            "images_per_second_best": best["images_per_second"],
            "images_per_second_rounds": [s["images_per_second"] for s in good],
            "matmul_fp32_gflops": max(s["matmul_fp32_gflops"] for s in good),
            "achieved_gflops": achieved,
            **{k: best.get(k) for k in ("backend", "onednn", "notice", "torch")},
        }
        summary[n]["mfu"] = achieved / summary[n]["matmul_fp32_gflops"]
    torch_rate = summary.get("torch", {}).get("images_per_second_best")
    for s in summary.values():
        if torch_rate and "images_per_second_best" in s:
            s["vs_torch"] = s["images_per_second_best"] / torch_rate
    return {
        "kind": "contenders",
        **spec,
        "rounds": rounds,
        "macs_per_image": macs,
        "machine": machine.describe(),
        "results": summary,
    }


def _rate(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def markdown(group):
    """The group as a markdown table."""
    cpu = group["machine"]["cpu"]
    lines = [
        f"### {group['model']}, training, batch {group['batch_size']}, "
        f"{group['input_size']}x{group['input_size']} ({cpu['model']}, {cpu['kind']}, "
        f"{group['machine']['cpu_count']} cores)",
        "",
        "| contender | oneDNN | img/s (best of rounds) | rounds | vs PyTorch "
        "| matmul GFLOP/s | MFU |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in group["results"].items():
        if "error" in s:
            lines.append(f"| {name} | | failed: {s['error'].strip().splitlines()[-1][:80]} |||||")
            continue
        onednn = {True: "on", False: "off", None: "n/a"}[s.get("onednn")]
        rounds = ", ".join(_rate(x) for x in s["images_per_second_rounds"])
        vs = f"{s['vs_torch']:.2f}x" if s.get("vs_torch") else ""
        lines.append(
            f"| {s['description']} | {onednn} | {_rate(s['images_per_second_best'])} | {rounds} | "
            f"{vs} | {s['matmul_fp32_gflops']:.0f} | {100 * s['mfu']:.0f}% |"
        )
    results = group["results"]
    ours, first = results.get("ours_onednn", {}), results.get("ours_tf_first", {})
    if ours.get("vs_torch"):
        goal = "met" if ours["vs_torch"] >= 1.0 else "missed"
        line = (
            f"Goal, keras_resnets >= 1.0x PyTorch eager: {goal} ({ours['vs_torch']:.2f}x with "
            "oneDNN on"
        )
        if first.get("vs_torch"):
            line += f"; {first['vs_torch']:.2f}x after a plain `import tensorflow`"
            if first.get("notice"):
                line += ", where `train()` prints the one-line oneDNN notice with the fix"
        app = results.get("keras_app_onednn") or results.get("keras_plain_onednn")
        if app and app.get("images_per_second_best"):
            ratio = ours["images_per_second_best"] / app["images_per_second_best"]
            line += f"; {ratio:.2f}x {app['description']}"
        lines += ["", line + ")."]
    if group.get("note"):
        lines += ["", group["note"]]
    return "\n".join(lines)


def section(groups):
    """The report's section: every group, CPU kind by CPU kind."""
    lines = [
        "## Training on each CPU kind: a fresh process per contender",
        "",
        "Written by `python -m benchmarks.contenders` (benchmarks/contenders.py): each "
        "contender trains in its own process (oneDNN on and off cannot share one), every "
        "round starts them in a rotated order, and the table keeps each one's best round. "
        "MFU is against the contender's own framework's float32 matmul rate, measured in "
        "the same process. The oneDNN column is what TensorFlow reported in that process.",
    ]
    for group in sorted(groups, key=lambda g: (g["machine"]["cpu"]["kind"], g["model"])):
        lines += ["", markdown(group), "", f"Command: `{group.get('command', '?')}`."]
    return "\n".join(lines)


def _write(group, out_dir):
    """Merge `group` into DIR/contenders.json (replacing the same model, batch and CPU kind),
    and render DIR/benchmarks.md again where DIR/benchmarks.json exists."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "contenders.json"
    groups = json.loads(path.read_text()) if path.exists() else []
    same = ("model", "batch_size", "input_size")
    kind = group["machine"]["cpu"]["kind"]
    groups = [
        g
        for g in groups
        if not (all(g[k] == group[k] for k in same) and g["machine"]["cpu"]["kind"] == kind)
    ]
    groups.append(group)
    path.write_text(json.dumps(groups, indent=1) + "\n")
    results_path = out_dir / "benchmarks.json"
    if results_path.exists():
        from benchmarks import report

        report.write(json.loads(results_path.read_text()), out_dir)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.contenders", description=__doc__)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="cifar_resnet20")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--input-size", type=int)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--contenders", nargs="+", choices=sorted(CONTENDERS))
    parser.add_argument("--no-jax", action="store_true", help="leave out the JAX contender")
    parser.add_argument("--torch-python", help="the interpreter for the torch contender")
    parser.add_argument("--note", help="a line to print under the table (the machine's load)")
    parser.add_argument(
        "--out", help="merge the group into DIR/contenders.json; render DIR/benchmarks.md"
    )
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    group = run(
        args.model,
        batch_size=args.batch_size,
        input_size=args.input_size,
        steps=args.steps,
        repeats=args.repeats,
        warmup_steps=args.warmup_steps,
        rounds=args.rounds,
        contenders=args.contenders,
        torch_python=args.torch_python,
        jax=not args.no_jax,
    )
    group["command"] = "python -m benchmarks.contenders " + " ".join(argv or sys.argv[1:])
    if args.note:
        group["note"] = args.note
    if args.out:
        print(f"Wrote {_write(group, args.out)}")
    print(markdown(group))
    return 0


if __name__ == "__main__":
    sys.exit(main())
