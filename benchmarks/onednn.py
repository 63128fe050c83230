"""Where a CPU training step's time goes: oneDNN's own timing of each primitive.

    python -m benchmarks onednn --model cifar_resnet20 --batch-size 128 --precision bfloat16

TensorFlow runs convolutions, batch normalisation, inner products and layout reorders as
oneDNN primitives. With ONEDNN_VERBOSE=1 oneDNN logs every execution with its time, and with
ONEDNN_VERBOSE_TIMESTAMP=1 with a wall-clock stamp too. A child process trains our model for
some warm-up steps, then times `steps` more and prints the window's start and end; this sums
the log lines inside the window by primitive and direction, per step, beside the step's wall
time. TensorFlow runs independent ops at once on the cores, so the sum can exceed the wall
time. Comparing float32 with bfloat16 shows which parts AMX speeds up.
"""

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

WINDOW = "ONEDNN_WINDOW "


def worker(model, *, batch_size, precision, steps, warmup_steps):
    """In the child: warm up, then time `steps` training steps; print the window (ms)."""
    import keras

    from benchmarks import baselines

    if precision == "bfloat16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    name, _ = baselines.parse_model(model)
    from keras_resnets.models import get_info

    info = get_info(name)  # the registry's facts, not the name, say the dataset
    net = baselines.ours(model, input_shape=info.input_shape, classes=info.classes)
    contender = baselines.KerasContender("ours", net, batch_size=batch_size)
    for _ in range(warmup_steps):
        contender.train_step()
    start = time.time()
    for _ in range(steps):
        contender.train_step()
    end = time.time()
    print(WINDOW + json.dumps({"start_ms": start * 1e3, "end_ms": end * 1e3}), flush=True)


def parse(log, start_ms, end_ms):
    """`{(primitive, direction): total ms}` of the executions stamped inside the window."""
    totals = defaultdict(float)
    for line in log.splitlines():
        fields = line.split(",")
        # onednn_verbose,v1,<timestamp>,primitive,exec,cpu,<primitive>,<impl>,<direction>,...,<ms>
        if len(fields) < 10 or fields[3:5] != ["primitive", "exec"]:
            continue
        try:
            stamp, ms = float(fields[2]), float(fields[-1])
        except ValueError:
            continue
        if start_ms <= stamp <= end_ms:
            totals[fields[6], fields[8]] += ms
    return totals


def run(
    model="cifar_resnet20",
    *,
    batch_size=128,
    precision="float32",
    steps=10,
    warmup_steps=5,
    timeout=900,
):
    """Returns a JSON-ready dict: step wall time and oneDNN ms per step by primitive."""
    env = dict(
        os.environ, ONEDNN_VERBOSE="1", ONEDNN_VERBOSE_TIMESTAMP="1", TF_CPP_MIN_LOG_LEVEL="3"
    )
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as `import keras_resnets` sets it
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "_onednn-worker",
        json.dumps(
            {
                "model": model,
                "batch_size": batch_size,
                "precision": precision,
                "steps": steps,
                "warmup_steps": warmup_steps,
            }
        ),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=Path(__file__).resolve().parent.parent,
    )
    window = next(
        (
            json.loads(line[len(WINDOW) :])
            for line in done.stdout.splitlines()
            if line.startswith(WINDOW)
        ),
        None,
    )
    if window is None:
        raise RuntimeError(f"the oneDNN worker failed: {(done.stderr or done.stdout)[-2000:]}")
    totals = parse(done.stdout, window["start_ms"], window["end_ms"])
    step_ms = (window["end_ms"] - window["start_ms"]) / steps
    primitives = {
        f"{p} {d}": ms / steps for (p, d), ms in sorted(totals.items(), key=lambda item: -item[1])
    }
    onednn_ms = sum(primitives.values())
    return {
        "kind": "onednn",
        "model": model,
        "batch_size": batch_size,
        "precision": precision,
        "steps": steps,
        "step_ms": step_ms,
        "primitive_ms_per_step": primitives,
        "onednn_ms_per_step": onednn_ms,
        "note": "times logged with ONEDNN_VERBOSE on, which itself slows the step a little; "
        "concurrent ops make the primitives' sum exceed the step's wall time",
    }
