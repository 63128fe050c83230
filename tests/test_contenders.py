"""benchmarks/contenders.py: a fresh process per contender records what it really ran with."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) does not add the cwd
    sys.path.insert(0, str(ROOT))

from benchmarks import contenders  # noqa: E402
from keras_resnets import machine  # noqa: E402


def test_applicable_contenders_follow_the_model():
    cifar = contenders.applicable("cifar_resnet20")
    assert cifar[:3] == ["ours_onednn", "ours_tf_first", "ours_jax"]
    assert "keras_plain" in cifar and "keras_app" not in cifar and cifar[-1] == "torch"
    imagenet = contenders.applicable("resnet50", jax=False)
    assert "ours_jax" not in imagenet and "keras_plain" not in imagenet
    assert {"keras_app", "keras_app_onednn", "torch"} <= set(imagenet)


def test_the_report_keeps_both_cpu_kinds_apart():
    def group(kind, rate):
        return {
            "model": "cifar_resnet20",
            "batch_size": 128,
            "input_size": 32,
            "machine": {"cpu": {"model": "x", "kind": kind}, "cpu_count": 2},
            "results": {
                "ours_onednn": {
                    "description": "ours",
                    "onednn": True,
                    "images_per_second_best": rate,
                    "images_per_second_rounds": [rate],
                    "vs_torch": rate / 100,
                    "matmul_fp32_gflops": 100.0,
                    "mfu": 0.5,
                }
            },
        }

    text = contenders.section([group("AVX2", 234.0), group("AMX", 1100.0)])
    assert text.index("AMX, 2 cores") < text.index("AVX2, 2 cores")
    assert "| ours | on | 234 | 234 | 2.34x | 100 | 50% |" in text
    assert "| ours | on | 1100 | 1100 | 11.00x | 100 | 50% |" in text


@pytest.mark.slow
def test_each_contender_runs_with_its_own_onednn_setting():
    group = contenders.run(
        "cifar_resnet20",
        batch_size=8,
        steps=1,
        repeats=1,
        warmup_steps=1,
        rounds=1,
        contenders=["ours_onednn", "ours_tf_first"],
        progress=lambda line: None,
    )
    on, first = group["results"]["ours_onednn"], group["results"]["ours_tf_first"]
    assert on["onednn"] is True and on["notice"] is False
    assert on["images_per_second_best"] > 0 and on["matmul_fp32_gflops"] > 0
    if machine.onednn_helps():  # AVX2 only: TensorFlow's default is off, and we say so
        assert first["onednn"] is False and first["notice"] is True
    assert group["machine"]["cpu"]["kind"] == machine.cpu_kind()
