"""keras_resnets.machine: CPU kinds, and TensorFlow's oneDNN made explicit, never a side effect."""

import os
import subprocess
import sys

import pytest

from keras_resnets import machine


def test_cpu_kind_from_flags():
    # Flag sets as /proc/cpuinfo lists them on the machines this project runs on.
    assert machine.cpu_kind({"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}) == "AMX"
    assert machine.cpu_kind({"avx2", "avx512f", "avx512_bf16"}) == "AVX-512 BF16"
    assert machine.cpu_kind({"avx2", "avx512f"}) == "AVX-512"
    assert machine.cpu_kind({"avx2", "fma"}) == "AVX2"
    assert machine.onednn_helps({"avx2", "fma"})
    assert not machine.onednn_helps({"avx2", "avx512f"})  # TensorFlow turns it on itself
    assert not machine.onednn_helps(set())


def test_cpu_info_matches_proc_cpuinfo():
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split(":")[1].split())
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags here")
    info = machine.cpu_info()
    assert set(info["flags"]) == flags & set(machine.NOTABLE_FLAGS)
    assert info["kind"] == machine.cpu_kind(flags)


# /proc/cpuinfo's first block on the EPYC Zen 4 that trained the article's HighwayNet (cut).
ZEN4_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
cpu MHz\t\t: 2596.136
flags\t\t: fpu avx2 fma avx512f avx512bw avx512_vnni avx512_bf16

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
"""


def test_cpu_generation_from_cpuid_family_and_model():
    # The CPUs of this project's runs (closing notes of 2026-12-01/02), as lscpu named them,
    # and AMD's and Intel's published family/model numbers.
    assert machine.cpu_generation("AuthenticAMD", 25, 1) == "Zen 3"  # EPYC 7003 (Milan)
    assert machine.cpu_generation("AuthenticAMD", 25, 17) == "Zen 4"  # EPYC 9004 (Genoa)
    assert machine.cpu_generation("AuthenticAMD", 26, 2) == "Zen 5"  # EPYC 9005 (Turin)
    assert machine.cpu_generation("GenuineIntel", 6, 143) == "Sapphire Rapids"
    assert machine.cpu_generation("GenuineIntel", 6, 1) is None
    assert machine.cpu_generation(None, None, None) is None


def test_cpu_info_reads_the_first_processor(monkeypatch):
    monkeypatch.setattr(machine, "_cpuinfo", lambda: ZEN4_CPUINFO)
    info = machine.cpu_info()
    assert (info["vendor"], info["family"], info["model_number"]) == ("AuthenticAMD", 25, 17)
    assert info["generation"] == "Zen 4" and info["kind"] == "AVX-512 BF16"
    assert machine.cpu_name(info) == "AMD EPYC (Zen 4, family 25 model 17)"
    monkeypatch.setattr(machine, "_cpuinfo", lambda: "")  # not Linux: the bare model name
    assert machine.cpu_name() == machine.cpu_info()["model"]


def test_machine_words_name_the_gpu_or_the_cpu_with_its_cores_and_kind(monkeypatch):
    monkeypatch.setattr(machine, "_cpuinfo", lambda: ZEN4_CPUINFO)
    cpu = machine.cpu_info()
    zen4 = "AMD EPYC (Zen 4, family 25 model 17)"
    desc = {"cpu_count": 2, "gpus": [], "cpu": cpu}
    assert machine.words(desc) == f"{zen4}, 2 cores, AVX-512 with BF16, no AMX"
    h100 = "cuda:0 NVIDIA H100 80GB HBM3"
    gpu = {**desc, "gpus": [h100], "backend": "jax"}
    assert machine.words(gpu) == f"{h100}, jax backend"
    assert machine.words({**gpu, "gpus": [h100] * 8}) == f"8x {h100}, jax backend"
    # Whatever a summary lacks is said so, never filled in with this machine's.
    assert machine.words({"cpu_count": 2}) == "unknown CPU, 2 cores"
    assert machine.words({"cpu": {**cpu, "kind": None}}) == f"{zen4}, ? cores"


def _child(code, **env_changes):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


ORDER = """
import tensorflow
import keras_resnets, os
from keras_resnets import machine
print(os.environ.get("TF_ENABLE_ONEDNN_OPTS"), machine.tensorflow_onednn(),
      machine.enable_onednn(), machine.onednn_notice() is not None)
"""


@pytest.mark.slow  # four fresh TensorFlow processes; the default run must stay about 10 min
@pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow", reason="TensorFlow's setting"
)
def test_onednn_is_explicit_and_the_notice_names_the_fix():
    # TensorFlow first, nothing set: importing keras_resnets sets nothing, enabling is too
    # late, and the notice fires exactly where oneDNN is off on a CPU where it helps.
    env, onednn, enabled, notice = _child(ORDER).split()
    assert env == "None"
    assert enabled == onednn
    assert notice == str(onednn == "False" and machine.onednn_helps())
    # Set before the import: on, and no notice.
    assert _child(ORDER, TF_ENABLE_ONEDNN_OPTS="1").split() == ["1", "True", "True", "False"]
    # Turned off on purpose: off, and no notice either (the user's choice).
    assert _child(ORDER, TF_ENABLE_ONEDNN_OPTS="0").split() == ["0", "False", "False", "False"]
    # enable_onednn() before TensorFlow's import turns it on.
    code = (
        "from keras_resnets import machine; machine.enable_onednn(); import tensorflow; "
        "print(machine.tensorflow_onednn())"
    )
    assert _child(code) == "True"


def test_cli_onednn_option_sets_the_environment_before_tensorflow(monkeypatch):
    from keras_resnets import machine

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    machine.set_onednn("auto")
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    machine.set_onednn("auto")  # the user's explicit setting wins
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    machine.set_onednn("on")
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    machine.set_onednn("off")
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    machine.set_onednn(None)  # TensorFlow's default: what is set stays, nothing is added
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    machine.set_onednn(None)
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
