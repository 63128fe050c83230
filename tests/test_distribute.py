"""Distributed training: tf.distribute and keras.distribution, with real processes.

Every multi-device run happens in a subprocess: logical CPU devices and
MultiWorkerMirroredStrategy must be set up before TensorFlow initialises, and a worker must be
killable. Workers talk over 127.0.0.1 on free ports picked at run time, and every process a
test starts is killed when the test ends, passed or not.

The model is a tiny one without BatchNormalization, registered by the worker script: with BN,
each replica normalises with its own slice's statistics, so a distributed run is not the
one-device computation and no tolerance would be principled (docs/distributed.md). Without
BN, a distributed step is the one-device step up to the order of float additions, so the loss
curves must agree to float tolerance; that also shows the data sharding is right, since two
workers that saw the same half of each batch (or all of it) would follow another curve.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from keras_resnets import cli, distribute, recipes
from keras_resnets.training.distribute import cluster

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 6
STEPS = 2
BATCH = 32
# Float32 gradients summed in another order (two half-batches, then an all-reduce) drift
# apart by a few ulps a step; 1e-4 relative is far above that and far below a real difference
# (a wrongly sharded batch changes the first loss in the second or third digit).
RTOL = 1e-4
# Bound on one worker process, only there to stop a hang: a worker takes under a minute on an
# idle 2-core machine, but several under nice 15 beside a training run.
TIMEOUT = 900

WORKER = r"""
import json, os, sys
import numpy as np

args = json.loads(sys.argv[1])
if args.get("logical_cpus"):
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * args["logical_cpus"])

import keras
from keras_resnets.models.registry import register
from keras_resnets.train import train

built = []


@register("test_tiny_convnet")
def tiny_convnet(*, input_shape, classes, batch_norm=False, name="tiny_convnet"):
    inputs = keras.Input(input_shape)
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=not batch_norm, name="conv")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    built.append(keras.Model(inputs, outputs, name=name))
    return built[-1]


def replica_spread(model):
    # Largest difference between two replicas' copies of a variable (0 without tf.distribute).
    spread = 0.0
    for v in model.variables:
        copies = getattr(v.value, "values", None)
        if copies and len(copies) > 1:
            first = copies[0].numpy()
            spread = max(spread, *(float(np.abs(c.numpy() - first).max()) for c in copies))
    return spread


for run in args["runs"]:
    train("test_tiny_convnet", verbose=2, **run["train"])
    np.savez(run["name"] + ".npz", *built[-1].get_weights())
    with open(run["name"] + ".json", "w") as f:
        json.dump({"replica_spread": replica_spread(built[-1])}, f)
    print("FINISHED", run["name"], flush=True)
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_data(path):
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (256, 8, 8, 3), dtype=np.uint8),
        y_train=rng.integers(0, 10, 256).astype(np.int32),
        x_test=rng.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8),
        y_test=rng.integers(0, 10, 64).astype(np.int32),
    )
    return path


def _run(name, data, out, distribute, *, batch_norm=False, epochs=EPOCHS, engine=None):
    """One `train` call of the worker script, writing `name`.npz (weights) and `name`.json."""
    return {
        "name": name,
        "train": dict(
            data=str(data),
            out=str(out),
            distribute=distribute,
            epochs=epochs,
            steps_per_epoch=STEPS,
            batch_size=BATCH,
            recipe="fast",
            seed=3,
            model_kwargs={"batch_norm": batch_norm},
            engine=engine,
        ),
    }


class Processes:
    """Worker processes, each in its own session so a kill takes its children too."""

    def __init__(self, folder):
        self.folder = folder
        self.procs = []

    def start(self, name, worker_args, *, env=None):
        script = self.folder / "worker.py"
        script.write_text(WORKER)
        full_env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        full_env.update(
            PYTHONUNBUFFERED="1",
            TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="-1",
            KERAS_BACKEND="tensorflow",
            PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        )
        full_env.update(env or {})
        with open(self.folder / f"{name}.log", "w") as log:
            proc = subprocess.Popen(
                [sys.executable, str(script), json.dumps(worker_args)],
                cwd=self.folder,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc.log_path = self.folder / f"{name}.log"
        self.procs.append(proc)
        return proc

    def wait(self, proc, timeout):
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            pytest.fail(f"{proc.log_path.name} did not finish in {timeout} s:\n{_tail(proc)}")

    def kill(self, proc):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def kill_all(self):
        for proc in self.procs:
            try:
                self.kill(proc)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


def _tail(proc, lines=40):
    return "\n".join(proc.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.kill_all()


def _history(out):
    with open(Path(out) / "history.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _weights(path):
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


def _assert_same_curves(run, reference):
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            [r[key] for r in run], [r[key] for r in reference], rtol=RTOL, err_msg=key
        )


def _result(folder, name, out=None):
    """What run `name` left: its final weights, replica spread, and (given its run folder)
    its history and summary."""
    result = {
        "weights": _weights(folder / f"{name}.npz"),
        **json.loads((folder / f"{name}.json").read_text()),
    }
    if out is not None:
        result["history"] = _history(out)
        result["summary"] = json.loads((Path(out) / "summary.json").read_text())
    return result


def _run_one_host(tmp_path_factory, backend, runs):
    """`runs` (name, distribute, batch_norm[, engine]) one after the other in one subprocess."""
    folder = tmp_path_factory.mktemp(f"one_host_{backend}")
    data = _tiny_data(folder / "tiny.npz")
    procs = Processes(folder)
    env = {"KERAS_BACKEND": backend}
    if backend == "jax":
        env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    specs = [
        _run(name, data, folder / name, how, batch_norm=bn, engine=(engine or [None])[0])
        for name, how, bn, *engine in runs
    ]
    try:
        proc = procs.start(
            "one_host",
            {"logical_cpus": 2 if backend == "tensorflow" else 0, "runs": specs},
            env=env,
        )
        assert procs.wait(proc, timeout=TIMEOUT) == 0, _tail(proc)
    finally:
        procs.kill_all()
    return {name: _result(folder, name, folder / name) for name, *_ in runs}


@pytest.fixture(scope="module")
def tf_one_host(tmp_path_factory):
    return _run_one_host(
        tmp_path_factory,
        "tensorflow",
        [
            ("none", "none", False),
            ("mirrored", "mirrored", False),
            ("mirrored_bn", "mirrored", True),
        ],
    )


@pytest.fixture(scope="module")
def multi_worker_run(tmp_path_factory):
    """An uninterrupted two-worker job, then a short one of a model with BatchNormalization."""
    folder = tmp_path_factory.mktemp("multi_worker")
    procs = Processes(folder)
    try:
        workers = _start_cluster(
            procs, folder, _tiny_data(folder / "tiny.npz"), "run", with_batch_norm=True
        )
        for proc in workers:
            assert procs.wait(proc, timeout=TIMEOUT) == 0, _tail(proc)
    finally:
        procs.kill_all()
    return {
        "folder": folder,
        "out": folder / "run",
        "workers": workers,
        "run": [_result(folder, f"run_worker{i}") for i in range(2)],
        "bn": [_result(folder, f"bn_worker{i}") for i in range(2)],
    }


def _start_cluster(procs, folder, data, name, *, ports=None, with_batch_norm=False, attempt=""):
    """Two MultiWorkerMirroredStrategy workers on 127.0.0.1, training into `folder / name`."""
    ports = ports or [_free_port(), _free_port()]
    workers = []
    for index in range(2):
        tf_config = {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
        temp = folder / f"tmp_worker{index}"
        temp.mkdir(exist_ok=True)
        runs = [_run(f"{name}_worker{index}", data, folder / name, "multi_worker")]
        if with_batch_norm:
            runs.append(
                _run(
                    f"bn_worker{index}",
                    data,
                    folder / "bn",
                    "multi_worker",
                    batch_norm=True,
                    epochs=2,
                )
            )
        workers.append(
            procs.start(
                f"{name}_worker{index}{attempt}",
                {"runs": runs},
                env={"TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(temp)},
            )
        )
    return _Cluster(workers, ports)


class _Cluster(list):
    """The worker processes of one job, and the ports a restart reuses."""

    def __init__(self, workers, ports):
        super().__init__(workers)
        self.ports = ports


# --- quick tests: no training --------------------------------------------------------------


def test_resolve_rejects_unknown_values():
    assert distribute.resolve("none").num_replicas == 1
    assert distribute.resolve(None).is_chief
    with pytest.raises(ValueError, match=r"Received: distribute='horovod'"):
        distribute.resolve("horovod")
    with pytest.raises(ValueError, match="must be one of"):
        distribute.resolve(42)


def test_multi_worker_needs_a_cluster(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.resolve("multi_worker")


def test_global_batch_must_split_evenly():
    distribute.Distribution("mirrored", num_replicas=4).check_batch_size(128)
    with pytest.raises(ValueError, match="Received: batch_size=130"):
        distribute.Distribution("mirrored", num_replicas=4).check_batch_size(130)


def test_chief_writes_the_run_folder_others_a_deleted_copy(tmp_path):
    out = tmp_path / "run"
    chief = distribute.Distribution("multi_worker", num_workers=2)
    assert chief.writable_run_folder(out) == out and out.is_dir()
    (out / "backup").mkdir()
    (out / "backup" / "training_metadata.json").write_text('{"epoch": 3}')
    other = distribute.Distribution("multi_worker", num_workers=2, worker_index=1, is_chief=False)
    folder = other.writable_run_folder(out)
    assert folder != out and not folder.is_relative_to(out)
    # The other worker restores the chief's backup, from its own copy.
    assert (folder / "backup" / "training_metadata.json").read_text() == '{"epoch": 3}'
    other.close()
    assert not folder.exists()
    assert sorted(p.name for p in out.rglob("*")) == ["backup", "training_metadata.json"]


def test_linear_scaling_rule_on_an_epoch_schedule():
    base = recipes.get("fast")
    scaled = distribute.scale_learning_rate(base, 4 * base.batch_size, steps_per_epoch=97)
    assert scaled.learning_rate == pytest.approx(4 * base.learning_rate)
    assert scaled.batch_size == 4 * base.batch_size
    assert scaled.warmup == max(base.warmup, distribute.WARMUP_EPOCHS)
    assert scaled.epochs == base.epochs
    # A smaller batch scales the rate down and needs no extra warm-up.
    smaller = distribute.scale_learning_rate(base, base.batch_size // 2, steps_per_epoch=390)
    assert smaller.learning_rate == pytest.approx(base.learning_rate / 2)
    assert smaller.warmup == base.warmup


def test_linear_scaling_rule_keeps_the_epochs_of_an_iteration_schedule():
    base = recipes.for_model("paper", "cifar_resnet", 110)  # 400 warm-up iterations at 0.01
    steps = 50000 // (2 * base.batch_size)
    scaled = distribute.scale_learning_rate(base, 2 * base.batch_size, steps_per_epoch=steps)
    assert scaled.learning_rate == pytest.approx(2 * base.learning_rate)
    assert scaled.total_steps == base.total_steps // 2
    assert scaled.boundaries == tuple(b // 2 for b in base.boundaries)
    assert scaled.epochs_for(steps) == base.epochs_for(2 * steps)
    assert scaled.warmup == distribute.WARMUP_EPOCHS * steps
    assert scaled.warmup_learning_rate == base.warmup_learning_rate
    lr = scaled.make_optimizer(steps_per_epoch=steps, epochs=10)._learning_rate
    assert float(lr(scaled.warmup - 1)) == pytest.approx(base.warmup_learning_rate)
    assert float(lr(scaled.warmup + 1)) == pytest.approx(scaled.learning_rate)


def test_linear_scaling_rule_refuses_adam():
    with pytest.raises(ValueError, match="recipe='article'"):
        distribute.scale_learning_rate(recipes.get("article"), 256, steps_per_epoch=195)


def test_cli_takes_distribute_and_scale_lr():
    args = cli._parser().parse_args(["train", "--distribute", "multi_worker", "--scale-lr"])
    assert (args.distribute, args.scale_lr) == ("multi_worker", True)
    assert cli._parser().parse_args(["train"]).distribute == "none"
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["train", "--distribute", "horovod"])


def test_jax_cluster_comes_from_tf_config(monkeypatch):
    monkeypatch.delenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", raising=False)
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps(
            {
                "cluster": {"worker": ["host1:1234", "host2:1234"]},
                "task": {"type": "worker", "index": 1},
            }
        ),
    )
    assert cluster.jax_cluster_from_env() == {
        "job_addresses": "host1:1234,host2:1234",
        "num_processes": 2,
        "process_id": 1,
    }


# --- real runs -----------------------------------------------------------------------------
# Timeouts bound a hang; they include the module fixtures a test may be the first to need.


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_mirrored_matches_one_device(tf_one_host):
    """MirroredStrategy over two logical CPU devices follows the one-device loss curve."""
    none, mirrored = tf_one_host["none"], tf_one_host["mirrored"]
    assert mirrored["summary"]["distribute"]["num_replicas"] == 2
    assert mirrored["summary"]["distribute"]["engine"] == "MirroredStrategy"
    assert [r["epoch"] for r in mirrored["history"]] == list(range(EPOCHS))
    _assert_same_curves(mirrored["history"], none["history"])
    for a, b in zip(mirrored["weights"], none["weights"]):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-6)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_mirrored_batch_norm_statistics_are_one_value(tf_one_host):
    """Each replica updates its own BN moving statistics; AverageReplicaStatistics leaves all
    replicas with the same value for validation and checkpoints."""
    bn = tf_one_host["mirrored_bn"]
    assert any(w.ndim == 1 and w.shape[0] == 8 for w in bn["weights"])  # the model has BN
    assert bn["replica_spread"] == 0.0
    assert np.isfinite(bn["history"][-1]["val_loss"])


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_jax_data_parallel_matches_one_device(tmp_path_factory):
    """keras.distribution.DataParallel over two (forced host) devices, the JAX 'mirrored'.

    With BatchNormalization: XLA computes the statistics over the whole sharded batch, so on JAX
    even a BN model follows the one-device run. The same holds with the NumPy pipeline (the
    input path where TensorFlow is not installed), whose batches differ from tf.data's."""
    pytest.importorskip("jax")
    runs = _run_one_host(
        tmp_path_factory,
        "jax",
        [
            ("none", "none", True),
            ("mirrored", "mirrored", True),
            ("none_np", "none", True, "numpy"),
            ("mirrored_np", "mirrored", True, "numpy"),
        ],
    )
    for suffix, pipeline in (("", "tf.data"), ("_np", "numpy")):
        mirrored, one = runs["mirrored" + suffix], runs["none" + suffix]
        assert mirrored["summary"]["pipeline"] == pipeline
        assert mirrored["summary"]["distribute"]["engine"] == "DataParallel"
        assert mirrored["summary"]["distribute"]["num_replicas"] == 2
        _assert_same_curves(mirrored["history"], one["history"])
        for a, b in zip(mirrored["weights"], one["weights"]):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-6)
    # Other batches, so another curve: the NumPy run really used its own pipeline.
    assert runs["none_np"]["history"][0]["loss"] != runs["none"]["history"][0]["loss"]


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_multi_worker_trains_like_one_device_and_only_the_chief_writes(
    multi_worker_run, tf_one_host
):
    out = multi_worker_run["out"]
    chief = multi_worker_run["workers"][0]
    # Synchronous training: both workers end with the same weights, BN statistics included...
    for job in ("run", "bn"):
        for a, b in zip(*(worker["weights"] for worker in multi_worker_run[job])):
            np.testing.assert_array_equal(a, b, err_msg=job)
    # ...and, each having trained on its own half of every global batch, on the same curve as
    # one device on the whole batch.
    history = _history(out)
    assert [r["epoch"] for r in history] == list(range(EPOCHS))
    _assert_same_curves(history, tf_one_host["none"]["history"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["distribute"]["num_workers"] == 2
    assert summary["distribute"]["worker_index"] == 0
    # Only the chief wrote the run folder: one TensorBoard event file per folder, the chief's
    # (their names end in the writer's pid), and the other worker's temporary folder is gone.
    for sub in ("train", "validation"):
        events = list((out / "tensorboard" / sub).glob("events.out.tfevents.*"))
        assert len(events) == 1 and f".{chief.pid}." in events[0].name, events
    expected = {"history.csv", "summary.json", "last.keras", "best.keras", "backup", "run.json"}
    assert {p.name for p in out.iterdir()} >= expected
    leftovers = list((multi_worker_run["folder"] / "tmp_worker1").glob("keras_resnets_worker*"))
    assert not leftovers, leftovers


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_killed_worker_resumes_from_the_backup(tmp_path, processes, multi_worker_run):
    """Kill a worker after an epoch, restart the job as an orchestrator would: it resumes at
    the backed-up epoch, keeps the finished epochs, and ends where an uninterrupted run ends."""
    data = _tiny_data(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    workers = _start_cluster(processes, tmp_path, data, "run")
    metadata = out / "backup" / "training_metadata.json"
    deadline = time.monotonic() + TIMEOUT
    while not (metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", 0)):
        assert all(w.poll() is None for w in workers), _tail(workers[0])
        assert time.monotonic() < deadline, "no epoch finished in time:\n" + _tail(workers[0])
        time.sleep(0.05)
    processes.kill(workers[1])
    killed_at = time.monotonic()
    # The survivor's next collective op fails once the coordination service misses the dead
    # worker's heartbeats (about 10 s); an orchestrator then restarts the whole job.
    rc = processes.wait(workers[0], timeout=180)
    assert rc != 0, "the chief finished alone:\n" + _tail(workers[0])
    survivor_seconds = time.monotonic() - killed_at

    resume_epoch = json.loads(metadata.read_text())["epoch"]
    before = _history(out)
    assert 1 <= resume_epoch < EPOCHS, "the kill came too late to test a resume"
    assert not (out / "summary.json").exists()
    # Nothing finished is lost: every epoch logged before the kill is in the backup.
    assert [r["epoch"] for r in before] == list(range(resume_epoch))

    restarted = _start_cluster(
        processes, tmp_path, data, "run", ports=workers.ports, attempt="_restart"
    )
    for proc in restarted:
        assert processes.wait(proc, timeout=TIMEOUT) == 0, _tail(proc)
    chief_log = restarted[0].log_path.read_text()
    assert f"Resuming {out} at epoch {resume_epoch + 1} of {EPOCHS}" in chief_log
    after = _history(out)
    assert [r["epoch"] for r in after] == list(range(EPOCHS))
    # The epochs before the kill were not trained again: their rows are the first run's.
    assert after[:resume_epoch] == before
    # The resumed job ends where the uninterrupted one did (same batches, restored weights,
    # optimizer state and schedule step).
    _assert_same_curves(after, _history(multi_worker_run["out"]))
    resumed = [_result(tmp_path, f"run_worker{i}")["weights"] for i in range(2)]
    for a, b, c in zip(*resumed, multi_worker_run["run"][0]["weights"]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, c, rtol=RTOL, atol=1e-6)
    print(
        f"survivor exited {survivor_seconds:.0f} s after the kill; resumed at epoch "
        f"{resume_epoch + 1}"
    )
