"""What the machine is: CPU kind and flags, native bfloat16, TensorFlow's oneDNN state.

The one place that probes hardware; training (`summary.json`), the shipped weights' metadata
and the benchmarks all describe the machine through it, so that figures from different CPU
kinds carry the facts that tell them apart.

    >>> from keras_resnets import machine
    >>> machine.cpu_kind()
    'AVX2'
    >>> machine.tensorflow_onednn()  # imports TensorFlow
    False

**oneDNN.** TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it is imported, and turns its
oneDNN kernels on by default only on CPUs with AVX-512-class features. On an AVX2-only CPU
they train our CIFAR ResNets faster than the default Eigen kernels (docs/benchmarks.md,
"oneDNN on an AVX2 CPU"), but the setting can no longer change once TensorFlow is imported.
keras_resnets does not set it behind your back: `keras-resnets train|evaluate|export` (and
the maintainers' `python -m keras_resnets.weights.ship` and `.model_table`) turn it
on before they import TensorFlow (`--onednn off` to keep TensorFlow's default), and
`keras_resnets.train.train()` prints one line with the fix when it is off where it would
help (`onednn_notice`). From Python, set it yourself before the first `import tensorflow` or
`import keras`:

    import os
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"   # or keras_resnets.machine.enable_onednn()
    import keras
"""

import contextlib
import os
import platform
import sys

ONEDNN_ENV_VAR = "TF_ENABLE_ONEDNN_OPTS"

# x86 flags that decide whether bfloat16 arithmetic and oneDNN can be fast.
NOTABLE_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
)


def _cpuinfo():
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:  # not Linux: nothing known
        return ""


def cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    line = next((line for line in _cpuinfo().splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


# Microarchitectures by (vendor, family, models), from AMD's and Intel's CPUID tables, for the
# server CPUs this project's figures come from. Cloud machines often report only "AMD EPYC" as
# the model name, which hides a Zen 3 from a Zen 5 (2x apart in training speed here).
GENERATIONS = (
    ("AuthenticAMD", 23, range(0x00, 0x30), "Zen"),
    ("AuthenticAMD", 23, range(0x30, 0x100), "Zen 2"),
    ("AuthenticAMD", 25, range(0x00, 0x10), "Zen 3"),
    ("AuthenticAMD", 25, range(0x10, 0x20), "Zen 4"),
    ("AuthenticAMD", 25, range(0x20, 0x60), "Zen 3"),
    ("AuthenticAMD", 25, range(0x60, 0x80), "Zen 4"),
    ("AuthenticAMD", 25, range(0xA0, 0xB0), "Zen 4"),
    ("AuthenticAMD", 26, range(0x00, 0x100), "Zen 5"),
    ("GenuineIntel", 6, (0x55,), "Skylake/Cascade Lake"),
    ("GenuineIntel", 6, (0x6A, 0x6C), "Ice Lake"),
    ("GenuineIntel", 6, (0x8F,), "Sapphire Rapids"),
    ("GenuineIntel", 6, (0xCF,), "Emerald Rapids"),
    ("GenuineIntel", 6, (0xAD, 0xAE), "Granite Rapids"),
)


def cpu_generation(vendor, family, model):
    """The microarchitecture's name ("Zen 4", "Sapphire Rapids") for a CPUID vendor, family
    and model, or None where `GENERATIONS` does not list it."""
    for known_vendor, known_family, models, name in GENERATIONS:
        if (vendor, family) == (known_vendor, known_family) and model in models:
            return name
    return None


def cpu_info():
    """Model name, vendor, family, model number, generation, kind, base clock and the notable
    flags, from /proc/cpuinfo where it exists."""
    info = {
        "model": platform.processor() or platform.machine(),
        "vendor": None,
        "family": None,
        "model_number": None,
        "mhz": None,
    }
    for line in _cpuinfo().splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not key:
            break  # the first processor's block ends; the others repeat it
        if key == "model name":
            info["model"] = value
        elif key == "vendor_id":
            info["vendor"] = value
        elif key == "cpu family" and value.isdigit():
            info["family"] = int(value)
        elif key == "model" and value.isdigit():
            info["model_number"] = int(value)
        elif key == "cpu MHz" and info["mhz"] is None:
            info["mhz"] = float(value)
    info["generation"] = cpu_generation(info["vendor"], info["family"], info["model_number"])
    flags = cpu_flags()
    info["flags"] = sorted(f for f in flags if f in NOTABLE_FLAGS)
    info["kind"] = cpu_kind(flags)
    info["bf16_hardware"] = "avx512_bf16" in flags or "amx_bf16" in flags
    return info


def cpu_name(info=None):
    """e.g. "AMD EPYC (Zen 4, family 25 model 17)": the model name, with the generation and
    CPUID family and model where /proc/cpuinfo gives them."""
    info = info or cpu_info()
    if info.get("family") is None:
        return info["model"]
    detail = f"family {info['family']} model {info['model_number']}"
    if info.get("generation"):
        detail = f"{info['generation']}, {detail}"
    return f"{info['model']} ({detail})"


def cpu_kind(flags=None):
    """A short label for the CPU's vector units: 'AMX', 'AVX-512 BF16', 'AVX-512', 'AVX2',
    or the machine's architecture elsewhere. The two CPU kinds this project's figures come
    from are 'AMX' (Intel Sapphire Rapids) and 'AVX2' (AMD EPYC without AVX-512)."""
    flags = cpu_flags() if flags is None else set(flags)
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX-512 BF16"
    if "avx512f" in flags:
        return "AVX-512"
    if "avx2" in flags:
        return "AVX2"
    return platform.machine() or "unknown"


def cpu_has_native_bf16(backend):
    """AMX-BF16 (Intel Sapphire Rapids and later), or, for TensorFlow, whose oneDNN
    convolutions use it, AVX512_BF16 (AMD Zen 4/5, Intel Cooper Lake). Other backends' CPU
    kernels are unmeasured there (`python -m benchmarks bf16` measures it)."""
    flags = cpu_flags()
    return "amx_bf16" in flags or (backend == "tensorflow" and "avx512_bf16" in flags)


def has_native_bfloat16():
    """Whether this machine multiplies bfloat16 in hardware: an NVIDIA GPU of compute
    capability 8.0 or later (Ampere, Hopper), a TPU, or a CPU where `cpu_has_native_bf16`.
    Elsewhere bfloat16 is emulated and trains several times slower than float32."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
            if capability and tuple(capability) >= (8, 0):
                return True
        if gpus:
            return False
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "tpu":
            return True
        if device.platform == "gpu":
            capability = getattr(device, "compute_capability", None)
            return capability is not None and float(capability) >= 8.0
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_capability() >= (8, 0)
    return cpu_has_native_bf16(backend)


def tensorflow_onednn():
    """Whether TensorFlow runs its oneDNN kernels in this process (None: no TensorFlow).

    Imports TensorFlow if it is not imported yet, which fixes the setting for the process."""
    try:
        import tensorflow  # noqa: F401
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    # The public API has no reader for it; this is what tf.test's own checks call.
    return bool(_pywrap_util_port.IsMklEnabled())


def onednn_helps(flags=None):
    """Whether oneDNN is measured faster than TensorFlow's default kernels on this CPU while
    TensorFlow leaves it off by default: an x86 CPU with AVX2 and no AVX-512 (on AVX-512
    CPUs TensorFlow turns it on itself)."""
    flags = cpu_flags() if flags is None else set(flags)
    return "avx2" in flags and "avx512f" not in flags


def enable_onednn():
    """Turn TensorFlow's oneDNN kernels on for this process: sets TF_ENABLE_ONEDNN_OPTS=1,
    which works only before TensorFlow is imported. Returns True when oneDNN will be (or
    already is) on; False, with the environment unchanged, when TensorFlow is already
    imported with it off (restart Python and call this first)."""
    if "tensorflow" in sys.modules:
        return bool(tensorflow_onednn())
    os.environ[ONEDNN_ENV_VAR] = "1"
    return True


def onednn_notice(backend=None):
    """One line telling how to turn oneDNN on, when TensorFlow trains on a CPU where it is off
    and `onednn_helps`; None otherwise (other backends, a GPU, oneDNN already on, or the user
    turned it off explicitly with TF_ENABLE_ONEDNN_OPTS=0)."""
    import keras

    backend = backend or keras.backend.backend()
    if backend != "tensorflow" or not onednn_helps():
        return None
    if os.environ.get(ONEDNN_ENV_VAR, "").strip().lower() in ("0", "false"):
        return None  # the user's explicit choice
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU") or tensorflow_onednn():
        return None
    return (
        "Note: TensorFlow's oneDNN kernels are off (TensorFlow was imported without "
        f"{ONEDNN_ENV_VAR}=1); on this AVX2 CPU they train about twice as fast. Set "
        f"{ONEDNN_ENV_VAR}=1 in the environment, or call keras_resnets.machine.enable_onednn() "
        "before importing keras or tensorflow."
    )


@contextlib.contextmanager
def _stderr_fd_silenced():
    """Point file descriptor 2 at /dev/null: TF 2.21's libraries log while they load, before
    they read TF_CPP_MIN_LOG_LEVEL ("WARNING: All log messages before absl::InitializeLog()",
    the oneDNN and CUDA lines), straight to the descriptor, past `sys.stderr`."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def set_onednn(choice):
    """TF_ENABLE_ONEDNN_OPTS for `--onednn`, before TensorFlow reads it (on import); None
    leaves it to TensorFlow (oneDNN off on AVX2-only CPUs, on where AVX-512 VNNI or AMX)."""
    if choice is None:
        return
    if choice == "auto":
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    else:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if choice == "on" else "0"


def start_keras(onednn="auto", tf_logs=False, numpy_only=False):
    """Import Keras, and TensorFlow unless `numpy_only` on another backend, with oneDNN as
    `onednn` ("auto", "on", "off", or None for TensorFlow's default) says and without
    TensorFlow's log lines: what the CLI, the maintainers' tools and the tests call before
    anything imports Keras. With `tf_logs`, or once Keras
    is imported, it only sets oneDNN (where TensorFlow is not yet imported), and Keras loads
    later as usual, logs and all."""
    if "tensorflow" not in sys.modules:
        set_onednn(onednn)
    if tf_logs or "keras" in sys.modules:
        return
    # 3 hides the lines TF logs after it has loaded, `failed call to cuInit` among them.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with _stderr_fd_silenced():
        import keras

        if keras.backend.backend() == "tensorflow" or not numpy_only:
            try:  # TensorFlow is optional on the JAX and PyTorch backends
                import tensorflow as tf
            except ImportError:
                pass
            else:
                tf.get_logger().setLevel("ERROR")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


# How a machine line words each of `cpu_kind()`'s labels.
KIND_WORDS = {
    "AMX": "AMX",
    "AVX-512 BF16": "AVX-512 with BF16, no AMX",
    "AVX-512": "AVX-512, no BF16",
    "AVX2": "AVX2 only",
}


def words(desc):
    """One line naming the machine of a `describe()` dict: its first GPU and backend where it
    had one, else e.g. "AMD EPYC (Zen 4, family 25 model 17), 2 cores, AVX-512 with BF16, no
    AMX". Run folders record it at each start of a run, the weights manifest per file."""
    gpus = desc.get("gpus")
    if gpus:
        count = f"{len(gpus)}x " if len(gpus) > 1 else ""
        return f"{count}{gpus[0]}, {desc.get('backend', '?')} backend"
    cpu = desc.get("cpu") or {}
    name = cpu_name(cpu) if cpu.get("model") else "unknown CPU"
    kind = cpu.get("kind")
    words = [name, f"{desc.get('cpu_count') or '?'} cores"]
    return ", ".join(words + ([KIND_WORDS.get(kind, kind)] if kind else []))


def describe():
    """Versions and hardware, for run summaries, weights metadata and benchmark reports."""
    import keras

    backend = keras.backend.backend()
    desc = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_info(),
        "keras": keras.__version__,
        "backend": backend,
        "tensorflow": None,
        "onednn": None,
        "gpus": [],
    }
    if "tensorflow" in sys.modules or backend == "tensorflow":
        try:
            import tensorflow as tf

            desc["tensorflow"] = tf.__version__
            desc["onednn"] = tensorflow_onednn()
            details = tf.config.experimental.get_device_details
            desc["gpus"] = [  # e.g. "/physical_device:GPU:0 NVIDIA H100 80GB HBM3"
                f"{d.name} {details(d).get('device_name', '')}".strip()
                for d in tf.config.list_physical_devices("GPU")
            ]
        except ImportError:
            pass
    if backend == "jax":
        import jax

        desc["jax"] = jax.__version__
        # e.g. "cuda:0 NVIDIA H100 80GB HBM3": JAX's str(device) has no model name.
        desc["gpus"] = [f"{d} {d.device_kind}" for d in jax.devices() if d.platform != "cpu"]
    try:
        import psutil

        desc["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
        desc["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except (ImportError, OSError):
        pass
    return desc
