"""Training-step and inference throughput of one model beside its peers.

python -m benchmarks throughput --model cifar_resnet20 --batch-size 128
"""

import time

from benchmarks import baselines, timing
from keras_resnets.models import get_info
from keras_resnets.utils import count_macs


def build_contenders(
    spec,
    *,
    peers,
    batch_size,
    input_size,
    classes,
    shortcut="B",
    jit_compile="auto",
    dtype_policy=None,
    torch_autocast=None,
    label_suffix="",
):
    """`[(label, contender, macs_per_image)]` for our model and each requested peer.

    `jit_compile` is `model.compile`'s: "auto" is on for JAX (whose steps otherwise run op by
    op) and for TensorFlow on a GPU, and off for TensorFlow on a CPU.

    `dtype_policy` ("mixed_bfloat16") builds the Keras models under that policy;
    `torch_autocast` ("bfloat16") runs the torch model under CPU autocast.
    """
    import keras

    input_shape = (input_size, input_size, 3)
    contenders = []

    def keras_model(make):
        previous = keras.config.dtype_policy()
        if dtype_policy:
            keras.config.set_dtype_policy(dtype_policy)
        try:
            return make()
        finally:
            keras.config.set_dtype_policy(previous)

    def add_keras(label, make):
        model = keras_model(make)
        macs = count_macs(model)
        contenders.append(
            (
                label + label_suffix,
                baselines.KerasContender(
                    label + label_suffix, model, batch_size=batch_size, jit_compile=jit_compile
                ),
                macs,
            )
        )
        return macs

    ours_macs = add_keras(
        "keras_resnets",
        lambda: baselines.ours(spec, input_shape=input_shape, classes=classes, shortcut=shortcut),
    )
    for peer in peers:
        if peer == "keras_plain":
            add_keras(
                "keras_plain",
                lambda: baselines.plain_keras_cifar_resnet(
                    baselines.cifar_depth(spec),
                    shortcut=shortcut,
                    input_shape=input_shape,
                    classes=classes,
                ),
            )
        elif peer == "keras_app":
            add_keras(
                "keras_app",
                lambda: baselines.keras_application(spec, input_shape=input_shape, classes=classes),
            )
        elif peer == "memory_efficient":
            add_keras(
                "keras_resnets memory_efficient",
                lambda: baselines.ours(
                    spec, input_shape=input_shape, classes=classes, memory_efficient=True
                ),
            )
        elif peer == "unfused":
            add_keras(
                "keras_resnets unfused",
                lambda: baselines.unfused(
                    baselines.ours(spec, input_shape=input_shape, classes=classes)
                ),
            )
        elif peer == "torch":
            import torch

            baselines.configure_torch_threads()
            model = baselines.torch_model(spec, shortcut=shortcut, classes=classes)
            autocast = getattr(torch, torch_autocast) if torch_autocast else None
            # Same architecture as ours: the multiply-adds are ours (torch has no counter).
            contenders.append(
                (
                    "torch" + label_suffix,
                    baselines.TorchContender(
                        "torch" + label_suffix,
                        model,
                        batch_size=batch_size,
                        input_shape=input_shape,
                        classes=classes,
                        autocast_dtype=autocast,
                    ),
                    ours_macs,
                )
            )
        else:
            raise ValueError(
                f"Unknown peer {peer!r}. Valid peers: keras_plain, keras_app, "
                f"torch, memory_efficient, unfused. Received: peer={peer!r}"
            )
    return contenders


def measure(
    contenders,
    *,
    batch_size,
    modes=("train", "inference"),
    steps=3,
    repeats=5,
    warmup_steps=2,
    time_budget=None,
    fp32_peak_gflops=None,
):
    """Warm up each contender, then time them interleaved, per mode.

    Returns `{mode: {label: summary}}` where a summary has the median step time, images/s,
    the warm-up time (first call and the rest of the warm-up steps), the ratio to
    keras_resnets' throughput and, with `fp32_peak_gflops`, the model FLOP utilisation.
    """
    deadline = time.monotonic() + time_budget if time_budget else None
    results = {}
    for mode in modes:
        step_name = "train_step" if mode == "train" else "infer_step"
        steps_by_label, warm, macs = {}, {}, {}
        for label, contender, contender_macs in contenders:
            step = getattr(contender, step_name)
            first, total = timing.warm_up(step, warmup_steps)
            warm[label] = {
                "first_step_seconds": first,
                "warmup_seconds": total,
                "warmup_steps": warmup_steps,
            }
            steps_by_label[label] = step
            macs[label] = contender_macs
        samples = timing.interleaved(
            steps_by_label, steps=steps, repeats=repeats, deadline=deadline
        )
        mode_results = {}
        # A training step is about three forward passes (forward, input and weight grads).
        passes = 3 if mode == "train" else 1
        for label, seconds in samples.items():
            summary = timing.summarize(seconds, batch_size)
            summary.update(warm[label])
            summary["macs_per_image"] = macs[label]
            summary["gflops_per_step"] = 2 * passes * macs[label] * batch_size / 1e9
            summary["achieved_gflops"] = summary["gflops_per_step"] / summary["step_seconds_median"]
            if fp32_peak_gflops:
                summary["mfu"] = summary["achieved_gflops"] / fp32_peak_gflops
            mode_results[label] = summary
        ours = mode_results.get("keras_resnets") or next(iter(mode_results.values()))
        for summary in mode_results.values():
            # > 1: keras_resnets is faster than this contender.
            summary["ours_speedup"] = summary["step_seconds_median"] / ours["step_seconds_median"]
        results[mode] = mode_results
    return results


PRECISIONS = {
    # precision: (Keras dtype policy, torch CPU autocast dtype)
    "float32": (None, None),
    "bfloat16": ("mixed_bfloat16", "bfloat16"),
}


def run(
    spec,
    *,
    peers=None,
    batch_size=32,
    input_size=None,
    classes=None,
    modes=("train", "inference"),
    steps=3,
    repeats=5,
    warmup_steps=2,
    shortcut="B",
    jit_compile="auto",
    time_budget=None,
    fp32_peak_gflops=None,
    precision="float32",
):
    """One throughput group; returns a JSON-ready dict.

    `precision="bfloat16"` runs every Keras contender under `mixed_bfloat16` and torch under
    `autocast(bfloat16)`: the same comparison, in the precision a bf16 machine trains in.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}. Valid: {', '.join(PRECISIONS)}.")
    dtype_policy, torch_autocast = PRECISIONS[precision]
    name, _ = baselines.parse_model(spec)
    info = get_info(name)  # the registry's facts, not the name, say the dataset
    input_size = input_size or info.input_shape[0]
    classes = classes or info.classes
    peers = baselines.peers_for(spec) if peers is None else list(peers)
    contenders = build_contenders(
        spec,
        peers=peers,
        batch_size=batch_size,
        input_size=input_size,
        classes=classes,
        shortcut=shortcut,
        jit_compile=jit_compile,
        dtype_policy=dtype_policy,
        torch_autocast=torch_autocast,
    )
    results = measure(
        contenders,
        batch_size=batch_size,
        modes=modes,
        steps=steps,
        repeats=repeats,
        warmup_steps=warmup_steps,
        time_budget=time_budget,
        fp32_peak_gflops=fp32_peak_gflops,
    )
    return {
        "kind": "throughput",
        "model": spec,
        "peers": peers,
        "batch_size": batch_size,
        "input_size": input_size,
        "classes": classes,
        "shortcut": shortcut if baselines.cifar_depth(spec) is not None else None,
        # What "auto" became for our model (every Keras contender resolves it alike).
        "jit_compile": bool(contenders[0][1].model.jit_compile),
        "xla_default": jit_compile == "auto",
        "precision": precision,
        "steps": steps,
        "repeats": repeats,
        "warmup_steps": warmup_steps,
        "results": results,
    }
