"""`python -m benchmarks`: speed and memory benchmarks, run from the repository root.

    python -m benchmarks run --quick --out /tmp/bench          # everything, small (~2 min)
    python -m benchmarks run --out docs                        # everything, the report's sizes
    python -m benchmarks throughput --model cifar_resnet20 --batch-size 128
    python -m benchmarks matmul --size 2048
    python -m benchmarks memory --model cifar_densenet_bc100 --batch-size 64
    python -m benchmarks bf16 --model cifar_resnet20 --batch-size 128
    python -m benchmarks time-to-accuracy --target 0.91 --run runs/r20
    python -m benchmarks time-to-accuracy --target 0.5 --train epochs=2 out=runs/tta
    python -m benchmarks report --out docs                     # re-render docs/benchmarks.*
    python -m benchmarks inference --out docs   # export formats' latency (benchmarks/inference.py)

Every measuring subcommand takes `--out DIR`: its result is merged into DIR/benchmarks.json
(replacing an earlier result of the same kind, model and sizes) and DIR/benchmarks.md and
DIR/benchmarks.png are rendered again, so groups can be run one at a time.
The harness is outside the package (the wheel ships `keras_resnets` alone) and calls only
its public API; `--train` passes `keras_resnets.training.train`'s arguments. See
benchmarks/README.md.
"""

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_resnets.cli import key_value  # noqa: E402  (light: no TensorFlow)

RESULT_PREFIX = "BENCHMARK_RESULT "

# The report's sizes, for 2 cores: CIFAR nets at their training batch, ImageNet nets at
# batch 32 and 224x224, each in float32 and in bfloat16 (which pays off only on a CPU with
# AMX or a GPU; elsewhere the bfloat16 groups show how far it falls behind).
FULL = [
    {"kind": "matmul", "size": 2048, "repeats": 5},
    {
        "kind": "throughput",
        "model": "cifar_resnet20",
        "batch_size": 128,
        "modes": ["train", "inference"],
        "steps": 3,
        "repeats": 7,
        "warmup_steps": 3,
    },
    {
        "kind": "throughput",
        "model": "cifar_resnet20",
        "batch_size": 128,
        "modes": ["train"],
        "steps": 3,
        "repeats": 7,
        "warmup_steps": 3,
        "precision": "bfloat16",
    },
    {
        "kind": "bf16",
        "model": "cifar_resnet20",
        "batch_size": 128,
        "steps": 3,
        "repeats": 5,
        "matmul_size": 2048,
        "timeout": 1500,
    },
    {
        "kind": "throughput",
        "model": "resnet50",
        "batch_size": 32,
        "input_size": 224,
        "modes": ["train"],
        "steps": 1,
        "repeats": 5,
        "warmup_steps": 2,
    },
    {
        "kind": "throughput",
        "model": "resnet50",
        "batch_size": 32,
        "input_size": 224,
        "modes": ["train"],
        "steps": 1,
        "repeats": 5,
        "warmup_steps": 2,
        "precision": "bfloat16",
    },
    {
        "kind": "throughput",
        "model": "densenet121",
        "batch_size": 32,
        "input_size": 224,
        "modes": ["train"],
        "steps": 1,
        "repeats": 5,
        "warmup_steps": 2,
    },
    {
        "kind": "throughput",
        "model": "densenet121",
        "batch_size": 32,
        "input_size": 224,
        "modes": ["train"],
        "steps": 1,
        "repeats": 5,
        "warmup_steps": 2,
        "precision": "bfloat16",
    },
    # The article's HighwayNet beside itself with the gate's mix unfused (peer "unfused").
    *(
        {
            "kind": "throughput",
            "model": "highway25",
            "batch_size": 128,
            "modes": ["train"],
            "steps": 2,
            "repeats": 5,
            "warmup_steps": 2,
            **precision,
        }
        for precision in ({}, {"precision": "bfloat16"})
    ),
    {
        "kind": "memory",
        "model": "cifar_densenet_bc100",
        "batch_size": 64,
        "steps": 3,
        "variants": ["plain", "memory_efficient"],
    },
    {
        "kind": "throughput",
        "model": "cifar_densenet_bc100",
        "peers": ["memory_efficient"],
        "batch_size": 64,
        "modes": ["train"],
        "steps": 2,
        "repeats": 5,
        "warmup_steps": 2,
    },
    {
        "kind": "memory",
        "model": "densenet121",
        "batch_size": 16,
        "input_size": 224,
        "steps": 2,
        "variants": ["plain", "memory_efficient", "keras_app"],
    },
]
# CI's smoke test: every piece, tiny sizes, about two minutes on two cores.
QUICK = [
    {"kind": "matmul", "size": 512, "repeats": 3},
    {
        "kind": "throughput",
        "model": "cifar_resnet20",
        "batch_size": 32,
        "steps": 1,
        "repeats": 2,
        "warmup_steps": 1,
    },
    {
        "kind": "throughput",
        "model": "highway5",
        "batch_size": 8,
        "modes": ["train"],
        "steps": 1,
        "repeats": 2,
        "warmup_steps": 1,
    },
    {
        "kind": "memory",
        "model": "cifar_densenet40",
        "batch_size": 8,
        "steps": 1,
        "variants": ["plain", "memory_efficient"],
    },
    {
        "kind": "bf16",
        "model": "cifar_resnet20",
        "batch_size": 8,
        "steps": 1,
        "repeats": 1,
        "matmul_size": 256,
        "timeout": 300,
    },
]


def run_group(spec):
    """Run one group in this process; returns its JSON-ready result."""
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind != "memory":  # memory.run limits each variant's process itself
        spec.pop("timeout", None)
    if kind == "matmul":
        from benchmarks import machine

        result = machine.matmul_gflops(**spec)
        result["kind"] = "matmul"
        return result
    if kind == "throughput":
        from benchmarks import throughput

        model = spec.pop("model")
        return throughput.run(model, **spec)
    if kind == "memory":
        from benchmarks import memory

        model = spec.pop("model")
        return memory.run(model, **spec)
    if kind == "onednn":
        from benchmarks import onednn

        return onednn.run(**spec)
    if kind == "pipeline":
        from benchmarks import pipeline

        return pipeline.run(**spec)
    if kind == "bf16":
        from benchmarks import bf16

        return bf16.run(**spec)
    if kind == "time_to_accuracy":
        from benchmarks import time_to_accuracy

        if spec.get("train_kwargs") is not None:
            return time_to_accuracy.train_and_measure(spec["train_kwargs"], spec["target"])
        return time_to_accuracy.from_history(spec["run"], spec["target"])
    raise ValueError(f"Unknown benchmark kind {kind!r}.")


def run_group_subprocess(spec, *, timeout):
    """Run one group in a fresh interpreter (isolated memory, a hard time limit)."""
    command = [sys.executable, "-m", "benchmarks", "_group", json.dumps(spec)]
    repo_root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=repo_root
        )
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timed out after {timeout} s"}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return {**spec, "error": (done.stderr or done.stdout)[-2000:]}


def _same_group(a, b):
    keys = ("kind", "model", "batch_size", "input_size", "size", "run", "target")
    same = all(a.get(k) == b.get(k) for k in keys)
    return (
        same
        and a.get("precision", "float32") == b.get("precision", "float32")
        and _xla(a.get("jit_compile")) == _xla(b.get("jit_compile"))
    )


def _xla(value):
    # Results hold what "auto" became (a bool); an errored group keeps its spec's "on"/"off".
    return value is True or value == "on"


SOFTWARE = ("python", "keras", "backend", "tensorflow", "torch", "torchvision")


def _software(desc):
    return {key: desc.get(key) for key in SOFTWARE}


def _header(results, command, *, quick=False):
    from benchmarks import machine

    desc = machine.describe()
    previous = results.get("machine")
    # Groups merged into one file may have run with other packages installed (the header
    # shows the last run's): keep the earlier sets so the report can name them.
    if previous and _software(previous) != _software(desc):
        earlier = results.setdefault("earlier_software", [])
        if _software(previous) not in earlier:
            earlier.append(_software(previous))
    results.setdefault("groups", [])
    results["date"] = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    results["machine"] = desc
    results["quick"] = quick
    results["theoretical_fp32_gflops"] = machine.theoretical_fp32_gflops(desc["cpu"])
    commands = results.setdefault("commands", [])
    if command not in commands:
        commands.append(command)
    results["command"] = "; ".join(commands)
    return results


def _add(results, group, command):
    group["command"] = command
    if group.get("kind") == "matmul":
        results["matmul"] = group
    else:
        results["groups"] = [g for g in results["groups"] if not _same_group(g, group)]
        results["groups"].append(group)
    _apply_peaks(results)
    return results


def _apply_peaks(results):
    """The matmul peaks from the matmul group, and every throughput group's MFU from them."""
    matmul = results.get("matmul")
    if matmul and not matmul.get("error"):
        framework = next(iter(matmul["results"]))  # the Keras backend's own matmul
        results["fp32_peak_gflops"] = matmul["results"][framework]["float32"]["gflops"]
        results["bf16_peak_gflops"] = matmul["results"][framework].get("bfloat16", {}).get("gflops")
        _apply_mfu(results)


def _apply_mfu(results):
    """MFU against the measured matmul peak of the group's precision."""
    for g in results.get("groups", []):
        if g.get("kind") != "throughput":
            continue
        bf16 = g.get("precision") == "bfloat16"
        peak = results.get("bf16_peak_gflops" if bf16 else "fp32_peak_gflops")
        for by_label in g.get("results", {}).values():
            for s in by_label.values():
                s["mfu"] = s["achieved_gflops"] / peak if peak else None


def _load(out_dir, append):
    path = Path(out_dir) / "benchmarks.json"
    if append and path.exists():
        return json.loads(path.read_text())
    return {}


def _finish(results, out_dir):
    from benchmarks import report

    if out_dir:
        paths = report.write(results, out_dir)
        print(
            f"Wrote {paths['markdown']}, {paths['json']}"
            + (f", {paths['chart']}" if paths["chart"] else "")
        )
    else:
        print(report.markdown(results))
    return results


def _command(argv):
    return "python -m benchmarks " + " ".join(shlex.quote(a) for a in argv)


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="keras_resnets speed and memory benchmarks"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_out(p):
        p.add_argument("--out", help="write DIR/benchmarks.{json,md,png}")
        p.add_argument(
            "--no-append",
            action="store_true",
            help="start DIR/benchmarks.json afresh instead of merging into it",
        )
        return p

    p = with_out(sub.add_parser("run", help="every benchmark, each group in a subprocess"))
    p.add_argument("--quick", action="store_true", help="tiny sizes (~2 minutes): a smoke test")
    p.add_argument(
        "--only", nargs="+", choices=["matmul", "throughput", "memory", "bf16", "time_to_accuracy"]
    )
    p.add_argument("--timeout", type=int, default=1800, help="seconds per group")
    p.add_argument("--tta-run", help="a training run folder to read time to accuracy from")
    p.add_argument("--tta-target", type=float, default=0.91)
    p.add_argument(
        "--data",
        help="CIFAR-10 source for the pipeline group (as for train); "
        "without it and $KERAS_RESNETS_DATA that group is skipped",
    )

    p = with_out(sub.add_parser("throughput", help="images/s of a model beside its peers"))
    p.add_argument("--model", required=True, help="e.g. cifar_resnet20, resnet50, densenet121")
    p.add_argument(
        "--peers",
        nargs="*",
        help="keras_plain, keras_app, torch, memory_efficient, unfused "
        "(default: those of keras_plain, keras_app, torch and unfused that exist)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input-size", type=int, help="default 32 for CIFAR nets, else 224")
    p.add_argument("--classes", type=int)
    p.add_argument(
        "--modes", nargs="+", default=["train", "inference"], choices=["train", "inference"]
    )
    p.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument(
        "--shortcut",
        default="B",
        choices=["A", "B"],
        help="CIFAR ResNets: the shortcut all sides use (default B, projections)",
    )
    p.add_argument(
        "--jit-compile",
        nargs="?",
        const="on",
        default="auto",
        choices=["auto", "on", "off"],
        help="XLA for the Keras models. auto (default): on for JAX and for TF on a "
        "GPU, off for TF on a CPU",
    )
    p.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "bfloat16"],
        help="bfloat16: Keras models under mixed_bfloat16, torch under autocast",
    )
    p.add_argument("--time-budget", type=float, help="stop repeating after this many seconds")

    p = with_out(sub.add_parser("matmul", help="the machine's matmul GFLOP/s"))
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=5)

    p = with_out(sub.add_parser("memory", help="peak training RSS, each variant in a process"))
    p.add_argument("--model", required=True, help="e.g. cifar_densenet_bc100, densenet121")
    p.add_argument(
        "--variants",
        nargs="+",
        default=["plain", "memory_efficient"],
        choices=["plain", "memory_efficient", "keras_app"],
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--input-size", type=int)
    p.add_argument("--classes", type=int)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--timeout", type=int, default=1800, help="seconds per variant")

    p = with_out(sub.add_parser("onednn", help="a CPU training step's time by oneDNN primitive"))
    p.add_argument("--model", default="cifar_resnet20")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--steps", type=int, default=10)

    p = with_out(sub.add_parser("pipeline", help="what the CIFAR-10 input pipeline costs fit"))
    p.add_argument("--model", default="cifar_resnet20")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--data", help="CIFAR-10 source, as for keras-resnets train")
    p.add_argument("--steps", type=int, default=20, help="training steps per timed fit")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])

    p = with_out(sub.add_parser("bf16", help="bfloat16 vs float32 training step and matmul"))
    p.add_argument("--model", default="cifar_resnet20")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--matmul-size", type=int, default=2048)
    p.add_argument("--timeout", type=int, default=900, help="seconds for the whole comparison")

    p = with_out(sub.add_parser("time-to-accuracy", help="wall-clock to a CIFAR-10 test accuracy"))
    p.add_argument("--target", type=float, required=True, help="e.g. 0.91")
    p.add_argument("--run", help="an existing run folder (history.csv)")
    p.add_argument(
        "--train",
        nargs="+",
        type=key_value,
        metavar="KEY=VALUE",
        help="train first, with these keras_resnets.training.train arguments "
        "(values as JSON where they parse: epochs=2 out=runs/tta 'model_kwargs={\"depth\": 20}')",
    )

    p = sub.add_parser(
        "inference",
        help="batch 1 latency and batch 32 throughput per export "
        "format (SavedModel, ONNX Runtime, LiteRT)",
    )
    p.add_argument("--out", help="write DIR/inference.json and its section of DIR/benchmarks.md")
    p.add_argument("--models", nargs="+", default=["cifar_resnet20", "resnet", "resnet50"])
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per model")
    p.add_argument("--threads", type=int, help="threads of every runtime (default: all cores)")
    p.add_argument(
        "--accuracy",
        metavar="CHECKPOINT",
        help="also: CIFAR-10 test accuracy of this .keras through each format",
    )
    p.add_argument("--data", help="CIFAR-10 source for --accuracy, as for keras-resnets train")
    p.add_argument("--limit", type=int, help="--accuracy on the first N test images only")

    p = sub.add_parser("report", help="render DIR/benchmarks.json again")
    p.add_argument("--out", required=True)

    p = sub.add_parser("_onednn-worker")  # internal: the logged training steps
    p.add_argument("spec")
    p = sub.add_parser("_group")  # internal: one group in a subprocess
    p.add_argument("spec")
    p = sub.add_parser("_memory-worker")  # internal: one memory variant in a subprocess
    p.add_argument("--model", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--input-size", type=int, required=True)
    p.add_argument("--classes", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    return parser


def _spec_from_args(args):
    """The group spec of a measuring subcommand's arguments."""
    c = args.command
    if c == "throughput":
        return {
            "kind": "throughput",
            "model": args.model,
            "peers": args.peers,
            "batch_size": args.batch_size,
            "input_size": args.input_size,
            "classes": args.classes,
            "modes": args.modes,
            "steps": args.steps,
            "repeats": args.repeats,
            "warmup_steps": args.warmup_steps,
            "shortcut": args.shortcut,
            "jit_compile": {"on": True, "off": False}.get(args.jit_compile, "auto"),
            "time_budget": args.time_budget,
            "precision": args.precision,
        }
    if c == "matmul":
        return {"kind": "matmul", "size": args.size, "repeats": args.repeats}
    if c == "memory":
        return {
            "kind": "memory",
            "model": args.model,
            "variants": args.variants,
            "batch_size": args.batch_size,
            "input_size": args.input_size,
            "classes": args.classes,
            "steps": args.steps,
            "timeout": args.timeout,
        }
    if c == "onednn":
        return {
            "kind": "onednn",
            "model": args.model,
            "batch_size": args.batch_size,
            "precision": args.precision,
            "steps": args.steps,
        }
    if c == "pipeline":
        return {
            "kind": "pipeline",
            "model": args.model,
            "batch_size": args.batch_size,
            "data": args.data,
            "steps": args.steps,
            "repeats": args.repeats,
            "precision": args.precision,
        }
    if c == "bf16":
        return {
            "kind": "bf16",
            "model": args.model,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "repeats": args.repeats,
            "matmul_size": args.matmul_size,
            "timeout": args.timeout,
        }
    if c == "time-to-accuracy":
        if (args.run is None) == (args.train is None):
            raise ValueError("time-to-accuracy needs exactly one of --run DIR and --train ARGS.")
        return {
            "kind": "time_to_accuracy",
            "target": args.target,
            "run": args.run,
            "train_kwargs": dict(args.train) if args.train is not None else None,
        }
    raise ValueError(c)


def _run_all(args, argv):
    preset = QUICK if args.quick else FULL
    specs = [s for s in preset if not args.only or s["kind"] in args.only]
    data = args.data or os.environ.get("KERAS_RESNETS_DATA")
    if data and not args.quick and (not args.only or "pipeline" in args.only):
        from keras_resnets.machine import has_native_bfloat16

        # The precision the training CLI's `--mixed-precision auto` would pick here.
        specs.append(
            {
                "kind": "pipeline",
                "model": "cifar_resnet20",
                "batch_size": 128,
                "data": data,
                "precision": "bfloat16" if has_native_bfloat16() else "float32",
            }
        )
    if args.tta_run and (not args.only or "time_to_accuracy" in args.only):
        specs.append({"kind": "time_to_accuracy", "run": args.tta_run, "target": args.tta_target})
    command = _command(argv)
    results = _header(
        _load(args.out, args.out and not args.no_append) if args.out else {},
        command,
        quick=args.quick,
    )
    for spec in specs:
        start = time.monotonic()
        timeout = min(spec.get("timeout", args.timeout), args.timeout)
        if spec["kind"] == "memory":
            # The memory group starts a process per variant, each with this limit.
            spec = {**spec, "timeout": timeout}
            timeout *= len(spec["variants"])
        group = run_group_subprocess(spec, timeout=timeout)
        group["seconds"] = time.monotonic() - start
        print(
            f"{spec['kind']} {spec.get('model', '')}: {group['seconds']:.0f} s"
            + (f" ERROR {group['error'][-300:]}" if group.get("error") else ""),
            flush=True,
        )
        _add(results, group, command)
    return _finish(results, args.out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    if args.command == "_onednn-worker":
        from benchmarks import onednn

        onednn.worker(**json.loads(args.spec))
        return 0
    if args.command == "_group":
        result = run_group(json.loads(args.spec))
        from keras_resnets import machine

        # What this group ran on, so that figures from two CPU kinds are never mixed.
        result["cpu_kind"] = machine.cpu_kind()
        result["onednn"] = machine.tensorflow_onednn() if "tensorflow" in sys.modules else None
        print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)
        return 0
    if args.command == "_memory-worker":
        from benchmarks import memory

        memory.worker(
            args.model,
            variant=args.variant,
            batch_size=args.batch_size,
            input_size=args.input_size,
            classes=args.classes,
            steps=args.steps,
        )
        return 0
    if args.command == "inference":  # its own JSON and section: benchmarks/inference.py
        from benchmarks import inference

        result = inference.run(
            args.models,
            rounds=args.rounds,
            threads=args.threads,
            checkpoint=args.accuracy,
            data=args.data,
            limit=args.limit,
        )
        result["command"] = _command(argv)
        print(inference.markdown(result))
        if args.out:
            print(f"Wrote {inference.write(result, args.out)}")
        return 0
    if args.command == "report":
        results = _load(args.out, True)
        _apply_peaks(results)
        return 0 if _finish(results, args.out) else 1
    try:
        if args.command == "run":
            _run_all(args, argv)
            return 0
        spec = _spec_from_args(args)
        command = _command(argv)
        results = _header(_load(args.out, not args.no_append) if args.out else {}, command)
        start = time.monotonic()
        if spec["kind"] == "bf16":
            # bfloat16 convolutions can be very slow without hardware support: hard limit.
            group = run_group_subprocess(spec, timeout=spec["timeout"])
        else:
            group = run_group(spec)
        group["seconds"] = time.monotonic() - start
        if group.get("error"):
            print(f"error: {group['error']}", file=sys.stderr)
        _add(results, group, command)
        _finish(results, args.out)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
