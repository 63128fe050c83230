"""bfloat16 against float32: the matmul rate and a training step, in the same process.

A CPU speeds up bfloat16 only with instructions that multiply it natively (AVX512_BF16,
AMX). Without them every bfloat16 operand is widened to float32 for the FMA and the result
narrowed again, so bfloat16 can at best halve the memory traffic. The evidence here: the
flags in /proc/cpuinfo, the matmul GFLOP/s of both dtypes, and the step time of the same
network under `mixed_bfloat16` (Keras) or `torch.autocast(bfloat16)` next to float32.
"""

from benchmarks import baselines, machine, throughput
from keras_resnets.models import get_info


def run(
    model="cifar_resnet20",
    *,
    batch_size=128,
    steps=1,
    repeats=3,
    warmup_steps=1,
    matmul_size=2048,
    matmul_repeats=3,
    time_budget=None,
    torch_too=True,
):
    """Interleaved fp32 / bf16 training steps of `model` plus matmul GFLOP/s per dtype."""
    spec = model
    name, _ = baselines.parse_model(spec)
    info = get_info(name)  # the registry's facts, not the name, say the dataset
    input_size, classes = info.input_shape[0], info.classes
    peers = ["torch"] if torch_too and "torch" in baselines.peers_for(spec) else []
    contenders = []
    for suffix, policy, autocast in (("", None, None), (" bf16", "mixed_bfloat16", "bfloat16")):
        contenders += throughput.build_contenders(
            spec,
            peers=peers,
            batch_size=batch_size,
            input_size=input_size,
            classes=classes,
            dtype_policy=policy,
            torch_autocast=autocast,
            label_suffix=suffix,
        )
    results = throughput.measure(
        contenders,
        batch_size=batch_size,
        modes=("train",),
        steps=steps,
        repeats=repeats,
        warmup_steps=warmup_steps,
        time_budget=time_budget,
    )["train"]
    speedups = {}
    for framework in ["keras_resnets"] + peers:
        fp32, bf16 = results.get(framework), results.get(framework + " bf16")
        if fp32 and bf16:
            # > 1 would mean bfloat16 trains faster.
            speedups[framework] = fp32["step_seconds_median"] / bf16["step_seconds_median"]
    matmul = machine.matmul_gflops(size=matmul_size, repeats=matmul_repeats)
    matmul_speedups = {
        framework: by_dtype["bfloat16"]["gflops"] / by_dtype["float32"]["gflops"]
        for framework, by_dtype in matmul["results"].items()
    }
    return {
        "kind": "bf16",
        "model": spec,
        "batch_size": batch_size,
        "steps": steps,
        "repeats": repeats,
        "cpu": machine.cpu_info(),
        "results": results,
        "train_step_bf16_speedup": speedups,
        "matmul": matmul,
        "matmul_bf16_speedup": matmul_speedups,
    }
