"""Peak memory of a training step, each model in a fresh process.

A process's peak RSS only grows, and TensorFlow's allocator keeps what it has taken, so two
models in one process cannot be told apart: every variant runs in its own subprocess
(`python -m benchmarks _memory-worker ...`), which reports

    rss_before_mb     RSS once the model is built and compiled, before the first step
    peak_first_mb     peak RSS during the first step (tracing and graph optimisation)
    peak_steady_mb    peak RSS during the later steps: the training step itself
    maxrss_mb         the kernel's lifetime peak (getrusage), a cross-check of the sampler
    step_increase_mb  peak_steady_mb - rss_before_mb: activations, gradients, workspace

On a GPU the device's own peak is reported as well (`device_peak_mb`): JAX's
`memory_stats()["peak_bytes_in_use"]` or TensorFlow's `get_memory_info("GPU:0")["peak"]`.
"""

import json
import os
import resource
import subprocess
import sys
import threading
import time

VARIANTS = ("plain", "memory_efficient", "keras_app")


class PeakRss:
    """Samples the process's RSS every `interval` seconds in a thread; `take()` returns the
    peak since the last `take()`."""

    def __init__(self, interval=0.002):
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def current(self):
        return self.process.memory_info().rss

    def take(self):
        peak = max(self.peak, self.current())
        self.peak = 0
        return peak


def _device_peak_mb():
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform != "cpu":
                return device.memory_stats()["peak_bytes_in_use"] / 2**20
        elif backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    except Exception:  # a backend or device without memory statistics
        return None
    return None


def worker(spec, *, variant, batch_size, input_size, classes, steps):
    """Build one variant, train `steps` steps on one batch, print a JSON line of memory."""
    from benchmarks import baselines
    from keras_resnets.utils import count_params

    input_shape = (input_size, input_size, 3)
    if variant == "keras_app":
        model = baselines.keras_application(spec, input_shape=input_shape, classes=classes)
    elif variant in ("plain", "memory_efficient"):
        extra = {"memory_efficient": True} if variant == "memory_efficient" else {}
        model = baselines.ours(spec, input_shape=input_shape, classes=classes, **extra)
    else:
        raise ValueError(
            f"Unknown variant {variant!r}. Valid variants: {', '.join(VARIANTS)}. "
            f"Received: variant={variant!r}"
        )
    contender = baselines.KerasContender(variant, model, batch_size=batch_size)
    with PeakRss() as rss:
        before = rss.current()
        rss.take()
        start = time.perf_counter()
        contender.train_step()
        first_seconds = time.perf_counter() - start
        peak_first = rss.take()
        seconds = []
        for _ in range(steps):
            start = time.perf_counter()
            contender.train_step()
            seconds.append(time.perf_counter() - start)
        peak_steady = rss.take()
    mb = 2**20
    result = {
        "variant": variant,
        "model_name": model.name,
        "params": count_params(model),
        "rss_before_mb": before / mb,
        "peak_first_mb": peak_first / mb,
        "peak_steady_mb": peak_steady / mb,
        # ru_maxrss is in KiB on Linux.
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "step_increase_mb": (peak_steady - before) / mb,
        "first_step_seconds": first_seconds,
        "step_seconds": seconds,
        "step_seconds_median": sorted(seconds)[len(seconds) // 2],
        "device_peak_mb": _device_peak_mb(),
    }
    print("BENCHMARK_RESULT " + json.dumps(result), flush=True)
    return result


def run_variant(spec, *, variant, batch_size, input_size, classes, steps, timeout):
    """Run `worker` in a fresh interpreter; return its result or an error entry."""
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "_memory-worker",
        "--model",
        spec,
        "--variant",
        variant,
        "--batch-size",
        str(batch_size),
        "--input-size",
        str(input_size),
        "--classes",
        str(classes),
        "--steps",
        str(steps),
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=repo_root, env=env
        )
    except subprocess.TimeoutExpired:
        return {"variant": variant, "error": f"timed out after {timeout} s"}
    for line in done.stdout.splitlines():
        if line.startswith("BENCHMARK_RESULT "):
            return json.loads(line[len("BENCHMARK_RESULT ") :])
    return {"variant": variant, "error": (done.stderr or done.stdout)[-2000:]}


def run(
    spec,
    *,
    variants=("plain", "memory_efficient"),
    batch_size=64,
    input_size=None,
    classes=None,
    steps=3,
    timeout=900,
):
    """Peak training memory of each variant, each in its own process, one after another.

    Variants: "plain" and "memory_efficient" (our model with `memory_efficient=False/True`)
    and "keras_app" (keras.applications' model of the same name, where there is one).
    """
    from benchmarks import baselines

    name, _ = baselines.parse_model(spec)
    from keras_resnets.models import get_info

    info = get_info(name)  # the registry's facts, not the name, say the dataset
    input_size = input_size or info.input_shape[0]
    classes = classes or info.classes
    results = {}
    for variant in variants:
        results[variant] = run_variant(
            spec,
            variant=variant,
            batch_size=batch_size,
            input_size=input_size,
            classes=classes,
            steps=steps,
            timeout=timeout,
        )
    plain = results.get("plain", {})
    efficient = results.get("memory_efficient", {})
    ratios = {}
    if "step_increase_mb" in plain and "step_increase_mb" in efficient:
        ratios = {
            "peak_rss": efficient["peak_steady_mb"] / plain["peak_steady_mb"],
            "step_increase": efficient["step_increase_mb"] / max(plain["step_increase_mb"], 1e-9),
            # Sequential processes, not interleaved: a noisier ratio than throughput's.
            "step_time": efficient["step_seconds_median"] / plain["step_seconds_median"],
        }
    return {
        "kind": "memory",
        "model": spec,
        "batch_size": batch_size,
        "input_size": input_size,
        "classes": classes,
        "steps": steps,
        "results": results,
        "memory_efficient_vs_plain": ratios,
    }
