"""What the machine is and what it can do: versions, CPU flags, matmul GFLOP/s.

The measured float32 matmul rate is the "peak" that model FLOP utilisation is reported
against: a large square matmul is the best case for the CPU's FMA units, so a network
that reaches it is limited by the hardware, not by the framework.
"""

import os
import statistics
import time

import numpy as np

from keras_resnets.machine import cpu_info


def describe():
    """The package's machine description (CPU kind, flags, oneDNN state, versions), with the
    PyTorch side of the comparison added."""
    from keras_resnets import machine

    desc = machine.describe()
    try:
        import torch

        desc["torch"] = torch.__version__
        desc["torch_threads"] = torch.get_num_threads()
    except ImportError:
        desc["torch"] = None
    try:
        import torchvision

        desc["torchvision"] = torchvision.__version__
    except Exception:
        desc["torchvision"] = None
    return desc


def _keras_matmul(size, dtype):
    import keras

    rng = np.random.default_rng(0)
    a = keras.ops.cast(
        keras.ops.convert_to_tensor(rng.standard_normal((size, size), dtype="float32")), dtype
    )
    b = keras.ops.cast(
        keras.ops.convert_to_tensor(rng.standard_normal((size, size), dtype="float32")), dtype
    )

    def run():
        c = keras.ops.matmul(a, b)
        # Reading one element back waits for the result (JAX dispatches asynchronously).
        keras.ops.convert_to_numpy(keras.ops.cast(c[0, 0], "float32"))

    return run


def _torch_matmul(size, dtype):
    import torch

    a = torch.randn(size, size).to(getattr(torch, dtype))
    b = torch.randn(size, size).to(getattr(torch, dtype))
    return lambda: torch.matmul(a, b)


def matmul_gflops(
    *, size=2048, dtypes=("float32", "bfloat16"), repeats=5, frameworks=None, max_seconds=20.0
):
    """GFLOP/s of a `size` x `size` matmul, median of `repeats`, per framework and dtype.

    A dtype stops repeating once its samples add up to `max_seconds` (bfloat16 emulated in
    software can be 100x slower than float32); the JSON keeps every sample.

    The dtypes of a framework are interleaved repeat by repeat, like the models.
    Returns `{framework: {dtype: {"gflops": ..., "seconds": [...]}}}`.
    """
    import keras

    if frameworks is None:
        frameworks = [keras.backend.backend()]
        try:
            import torch  # noqa: F401

            frameworks.append("torch")
        except ImportError:
            pass
    flops = 2.0 * size**3
    results = {}
    for framework in frameworks:
        make = _torch_matmul if framework == "torch" else _keras_matmul
        runs = {dtype: make(size, dtype) for dtype in dtypes}
        for run in runs.values():
            run()  # warm-up: kernel selection, thread pool start
        seconds = {dtype: [] for dtype in dtypes}
        for _ in range(repeats):
            for dtype, run in runs.items():
                if seconds[dtype] and sum(seconds[dtype]) > max_seconds:
                    continue  # a slow emulated dtype (bf16 without hardware): enough samples
                start = time.perf_counter()
                run()
                seconds[dtype].append(time.perf_counter() - start)
        results[framework] = {
            dtype: {"gflops": flops / statistics.median(s) / 1e9, "seconds": s, "repeats": len(s)}
            for dtype, s in seconds.items()
        }
    return {"size": size, "repeats": repeats, "results": results}


def theoretical_fp32_gflops(info=None, cores=None):
    """Cores x 2 FMA units x float32 lanes (16 with AVX-512, else 8) x 2 FLOPs x clock: the
    datasheet peak, at the base clock /proc/cpuinfo reports (turbo can exceed it)."""
    info = info or cpu_info()
    cores = cores or os.cpu_count()
    if not info.get("mhz") or "fma" not in info.get("flags", []):
        return None
    lanes = 16 if "avx512f" in info.get("flags", []) else 8
    return cores * 2 * lanes * 2 * info["mhz"] / 1e3
