"""Training beyond one device or one host, with the engines TensorFlow and Keras already have.

`train(..., distribute=...)` and `keras-resnets train --distribute ...` take one of:

- `"none"`: one device (the default).
- `"mirrored"`: synchronous data parallelism over the devices of this host. TensorFlow
  backend: `tf.distribute.MirroredStrategy` over every GPU (every logical CPU device if there
  is no GPU). JAX backend: `keras.distribution.DataParallel` over `keras.distribution.
  list_devices()`.
- `"multi_worker"`: the same across hosts. TensorFlow backend:
  `tf.distribute.MultiWorkerMirroredStrategy`, configured by `TF_CONFIG`. JAX backend:
  `keras.distribution.initialize()` (configured by `KERAS_DISTRIBUTION_JOB_ADDRESSES`,
  `KERAS_DISTRIBUTION_NUM_PROCESSES`, `KERAS_DISTRIBUTION_PROCESS_ID`, or else derived from
  the same `TF_CONFIG`) and `DataParallel` over every device of every process.
- A `tf.distribute.Strategy`, or a `keras.distribution.DataParallel` or `ModelParallel`, built
  by the caller (ModelParallel for a layout that also splits the weights: CIFAR ResNets fit on
  one device, so data parallelism is what they need).

Nothing here reduces gradients or holds parameters itself: the strategies do. What this module
adds is what `train` needs around them: which worker writes the run folder (the chief; the
others write into a temporary folder that is deleted, as in TensorFlow's multi-worker Keras
tutorial), how the datasets are sharded, a check that every worker resumes from the same
backup, and the linear learning-rate scaling rule (Goyal et al. 2017).

The batch size is global: `batch_size=512` on 4 replicas is 128 images per replica per step,
so the optimisation is the same as on one device, up to BatchNormalization, whose statistics
are per replica (as in Goyal et al. 2017, section 5.1); see docs/distributed.md.
"""

import atexit
import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

import keras

CHOICES = ("none", "mirrored", "multi_worker")
# keras.distribution exports no common base class of its distributions.
KERAS_DISTRIBUTIONS = (keras.distribution.DataParallel, keras.distribution.ModelParallel)
# Goyal et al. 2017, section 2.2: 5 epochs of warm-up for the linear scaling rule.
WARMUP_EPOCHS = 5
# The run folder's entries that BackupAndRestore reads back on a restart: a non-chief worker
# starts from a copy of the chief's, so that every worker restores the same state.
BACKUP_DIR = "backup"

__all__ = [
    "CHOICES",
    "WARMUP_EPOCHS",
    "AverageReplicaStatistics",
    "Distribution",
    "multi_worker_strategy",
    "resolve",
    "scale_learning_rate",
]


class Distribution:
    """How `train` runs: the engine, the replicas, and whether this process is the chief.

    Built by `resolve`. Attributes:
        name: "none", "mirrored", "multi_worker" or "custom".
        strategy: the `tf.distribute.Strategy` (TensorFlow backend), else None.
        distribution: the `keras.distribution` DataParallel or ModelParallel (JAX), else None.
        num_replicas: replicas taking part in each step (each gets a slice of the batch).
        num_workers: processes taking part.
        worker_index: this process's index; the chief is 0.
        is_chief: whether this process writes the run folder.
    """

    def __init__(
        self,
        name="none",
        *,
        strategy=None,
        distribution=None,
        num_replicas=1,
        num_workers=1,
        worker_index=0,
        is_chief=True,
    ):
        self.name = name
        self.strategy = strategy
        self.distribution = distribution
        self.num_replicas = num_replicas
        self.num_workers = num_workers
        self.worker_index = worker_index
        self.is_chief = is_chief
        self._temp_dir = None

    def __repr__(self):
        return (
            f"Distribution({self.name!r}, num_replicas={self.num_replicas}, "
            f"num_workers={self.num_workers}, worker_index={self.worker_index})"
        )

    def scope(self):
        """The context to build, compile, fit and evaluate in."""
        if self.strategy is not None:
            return self.strategy.scope()
        if self.distribution is not None:
            return self.distribution.scope()
        return contextlib.nullcontext()

    def check_batch_size(self, batch_size):
        """The global batch must split evenly: Keras averages the per-replica losses with equal
        weights, which is the global mean only if the replicas' batches are equal."""
        if batch_size % self.num_replicas:
            raise ValueError(
                f"The global batch size must be a multiple of the number of replicas "
                f"({self.num_replicas}). Received: batch_size={batch_size}"
            )

    def distribute_datasets(self, *datasets):
        """The datasets, set up to be split between the workers.

        TensorFlow: auto-shard policy DATA. The training stream is built from index tensors
        (`Dataset.counter` over epochs, a permutation per epoch), with no files to split, so
        FILE sharding does not apply (AUTO would try it, warn and fall back to DATA). With
        DATA, each worker runs the same global pipeline and `experimental_distribute_dataset`
        splits every global batch into per-replica slices and keeps its own: the workers see
        disjoint parts of every epoch, and together exactly the batches a one-device run sees,
        so a distributed run and its resume are as reproducible as a single-device one. The
        cost is that each worker gathers and augments the whole global batch (in memory,
        vectorised: small next to a training step). `distribute_datasets_from_function` with
        per-worker index shards would avoid that cost but change the data order with the number
        of workers.

        JAX: the distribution splits each batch across the devices of a process. Across
        processes, each one keeps its own contiguous slice of every global batch (the rows
        `jax.make_array_from_process_local_data` expects from it): the same split as above.
        Keras's own `auto_shard_dataset` cannot do it here, as it needs a static batch size.
        """
        if self.strategy is not None:
            import tensorflow as tf

            options = tf.data.Options()
            policy = tf.data.experimental.AutoShardPolicy.DATA
            options.experimental_distribute.auto_shard_policy = policy
            datasets = tuple(ds.with_options(options) for ds in datasets)
        elif self.distribution is not None and self.num_workers > 1:
            self.distribution.auto_shard_dataset = False
            datasets = tuple(
                _process_slice(ds, self.num_workers, self.worker_index) for ds in datasets
            )
        return datasets if len(datasets) > 1 else datasets[0]

    def writable_run_folder(self, out):
        """The folder this process writes its run folder into.

        The chief writes `out` itself. Every other worker must still run the same saves (with
        MultiWorkerMirroredStrategy reading some variables is a collective op), so it writes into
        a fresh temporary folder, deleted by `close` (or at exit), holding a copy of the chief's
        `backup/`: every worker then restores the same epoch and weights on a restart. This needs
        `out` on a file system all workers see (NFS, GCS, ...), as TensorFlow's BackupAndRestore
        does; `check_same` catches a worker that does not see it.
        """
        out = Path(out)
        if self.is_chief:
            out.mkdir(parents=True, exist_ok=True)
            return out
        prefix = f"keras_resnets_worker{self.worker_index}_"
        self._temp_dir = Path(tempfile.mkdtemp(prefix=prefix))
        atexit.register(shutil.rmtree, self._temp_dir, ignore_errors=True)
        if (out / BACKUP_DIR).is_dir():
            shutil.copytree(out / BACKUP_DIR, self._temp_dir / BACKUP_DIR)
        return self._temp_dir

    def check_same(self, value, what):
        """Raise ValueError unless every worker passes the same integer `value`."""
        if self.num_workers == 1:
            return
        values = self._all_gather(int(value))
        if len(set(values)) > 1:
            raise ValueError(
                f"The workers disagree on {what}: {values} (worker 0 first). Every worker must "
                f"see the chief's run folder (a shared file system), so that all of them "
                f"resume from the same backup."
            )

    def _all_gather(self, value):
        if self.strategy is not None:
            import tensorflow as tf

            per_replica = self.strategy.experimental_distribute_values_from_function(
                lambda context: tf.constant([value], tf.int64)
            )
            gathered = self.strategy.gather(per_replica, axis=0)
            # One entry per replica; the replicas of one worker hold the same value.
            return [int(v) for v in gathered.numpy()[:: self.num_replicas // self.num_workers]]
        import numpy as np
        from jax.experimental import multihost_utils

        return [int(v) for v in multihost_utils.process_allgather(np.array([value])).ravel()]

    def callbacks(self):
        """Callbacks `fit` needs under this distribution: the averaging of per-replica
        statistics (see `AverageReplicaStatistics`), to be run before any checkpoint."""
        if self.strategy is not None and self.num_replicas > 1:
            return [AverageReplicaStatistics(self.strategy)]
        return []

    def close(self):
        """Delete a non-chief worker's temporary folder."""
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def describe(self):
        """A JSON-able summary for summary.json."""
        engine = self.strategy if self.strategy is not None else self.distribution
        return {
            "name": self.name,
            "engine": type(engine).__name__ if engine is not None else None,
            "num_replicas": self.num_replicas,
            "num_workers": self.num_workers,
            "worker_index": self.worker_index,
            "is_chief": self.is_chief,
        }


class AverageReplicaStatistics(keras.callbacks.Callback):
    """Averages across all replicas the statistics each replica updates on its own.

    Keras 3 creates BatchNormalization's moving mean and variance with aggregation "none", and
    under a tf.distribute strategy each replica then updates its own copy from its own slice of
    the batch: the copies drift apart, a checkpoint keeps replica 0's, and the workers of a
    multi-worker job end with different weights. tf.keras averaged them across replicas when
    read (ON_READ, MEAN); this does the same before every validation and at every epoch end, so
    evaluations, checkpoints and backups see one value, the same on every worker. Put it first
    in the callback list. (On JAX, DataParallel computes BN over the global batch and keeps one
    copy, so there is nothing to average.)
    """

    def __init__(self, strategy):
        super().__init__()
        self.strategy = strategy

    def _per_replica_variables(self):
        import tensorflow as tf

        return [
            v.value
            for v in self.model.non_trainable_variables
            if v.aggregation == "none"
            and "float" in str(v.dtype)
            and isinstance(v.value, tf.distribute.DistributedValues)
        ]

    def average(self):
        import tensorflow as tf

        variables = self._per_replica_variables()
        if not variables:
            return
        local = len(variables[0].values)

        def flat(context):
            # One all-reduce for all the statistics, not one per variable.
            i = context.replica_id_in_sync_group % local
            return tf.concat([tf.reshape(v.values[i], [-1]) for v in variables], axis=0)

        values = self.strategy.experimental_distribute_values_from_function(flat)
        mean = self.strategy.reduce("MEAN", values, axis=None)
        start = 0
        for v in variables:
            size = v.shape.num_elements()
            v.assign(tf.reshape(mean[start : start + size], v.shape))
            start += size

    def on_test_begin(self, logs=None):
        self.average()

    def on_epoch_end(self, epoch, logs=None):
        self.average()


def _process_slice(ds, count, index):
    """Rows `[index * n / count, (index + 1) * n / count)` of every batch of `n` rows."""
    from keras_resnets.data import ArrayBatches

    if isinstance(ds, ArrayBatches):
        return ds.process_slice(count, index)
    import tensorflow as tf

    def take(*batch):
        size = tf.shape(batch[0])[0] // count
        return tuple(t[index * size : (index + 1) * size] for t in batch)

    return ds.map(take)


def resolve(distribute):
    """A `Distribution` from "none", "mirrored", "multi_worker", a strategy or a distribution.

    Call it before TensorFlow runs anything: MultiWorkerMirroredStrategy must be created at
    program start-up.

    Args:
        distribute: one of `CHOICES`, a `tf.distribute.Strategy`, a
            `keras.distribution.DataParallel` or `ModelParallel`, a `Distribution`, or None.

    Returns:
        A `Distribution`.
    """
    if distribute is None or isinstance(distribute, Distribution):
        return distribute or Distribution()
    backend = keras.backend.backend()
    if isinstance(distribute, str):
        if distribute not in CHOICES:
            raise _invalid(distribute)
        if distribute == "none":
            return Distribution()
        if backend == "tensorflow":
            # One strategy per process, reused by later calls: a second MirroredStrategy
            # reuses the first one's collective-op keys (its all-reduces then fail on shape
            # mismatches), and MultiWorkerMirroredStrategy can only be made at start-up.
            if distribute not in _STRATEGIES:
                _STRATEGIES[distribute] = (
                    _mirrored_strategy() if distribute == "mirrored" else multi_worker_strategy()
                )
            return _from_strategy(_STRATEGIES[distribute], name=distribute)
        if backend == "jax":
            return _jax_data_parallel(multi_worker=distribute == "multi_worker")
        raise ValueError(
            f"distribute={distribute!r} needs the TensorFlow or JAX backend (tf.distribute or "
            f"keras.distribution). Received: KERAS_BACKEND={backend!r}"
        )
    if isinstance(distribute, KERAS_DISTRIBUTIONS):
        return _from_keras_distribution(distribute, name="custom")
    if backend == "tensorflow":
        import tensorflow as tf

        if isinstance(distribute, tf.distribute.Strategy):
            if (
                isinstance(distribute, tf.distribute.MultiWorkerMirroredStrategy)
                and not isinstance(distribute, _multi_worker_class())
                and distribute.extended._in_multi_worker_mode()
            ):
                raise ValueError(
                    "Keras 3's fit cannot run a plain tf.distribute.MultiWorkerMirroredStrategy "
                    "across workers (keras-team/keras#20585): pass "
                    "keras_resnets.distribute.multi_worker_strategy(...) or 'multi_worker'."
                )
            return _from_strategy(distribute, name="custom")
    raise _invalid(distribute)


_STRATEGIES = {}


def _invalid(distribute):
    return ValueError(
        f"`distribute` must be one of {list(CHOICES)}, a tf.distribute.Strategy (TensorFlow "
        f"backend), or a keras.distribution.DataParallel or ModelParallel. "
        f"Received: distribute={distribute!r}"
    )


def _mirrored_strategy():
    import tensorflow as tf

    # MirroredStrategy() alone takes the GPUs, or else the one CPU device; the logical CPU
    # devices (tf.config.set_logical_device_configuration) make a CPU-only test of the same code.
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def _tf_multi_worker_class():
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """`tf.distribute.MultiWorkerMirroredStrategy` whose `reduce` works as Keras 3 calls it.

        Keras 3's TensorFlow trainer reduces a whole `(x, y)` batch in one `reduce` call before
        the first step, and each step's scalar logs with `axis=0`. MirroredStrategy accepts both;
        MultiWorkerMirroredStrategy raises (keras-team/keras#20585). Reducing leaf by leaf, and
        scalars over replicas only, is what MirroredStrategy does.
        """

        def reduce(self, reduce_op, value, axis):
            def one(v):
                scalar = (
                    axis is not None and getattr(v, "shape", None) is not None and v.shape.rank == 0
                )
                return super(MultiWorkerMirroredStrategy, self).reduce(
                    reduce_op, v, None if scalar else axis
                )

            return tf.nest.map_structure(one, value)

    return MultiWorkerMirroredStrategy


_MULTI_WORKER_CLASS = []


def _multi_worker_class():
    """The subclass above, made once (it needs TensorFlow, imported only when used)."""
    if not _MULTI_WORKER_CLASS:
        _MULTI_WORKER_CLASS.append(_tf_multi_worker_class())
    return _MULTI_WORKER_CLASS[0]


def multi_worker_strategy(**kwargs):
    """A `tf.distribute.MultiWorkerMirroredStrategy` that Keras 3's `fit` can run.

    Takes the arguments of `tf.distribute.MultiWorkerMirroredStrategy` (`cluster_resolver`,
    `communication_options`). Without a `cluster_resolver`, the cluster comes from `TF_CONFIG`,
    which must then be set. Create it at program start, before TensorFlow runs anything.

    Example:
    >>> strategy = keras_resnets.distribute.multi_worker_strategy()
    >>> keras_resnets.train.train("cifar_resnet", distribute=strategy)
    """
    if "cluster_resolver" not in kwargs and not os.environ.get("TF_CONFIG"):
        raise ValueError(
            "distribute='multi_worker' needs the cluster in the TF_CONFIG environment variable "
            '(see docs/distributed.md), e.g. TF_CONFIG=\'{"cluster": {"worker": '
            '["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
            '"index": 0}}\'. Received: TF_CONFIG unset'
        )
    try:
        return _multi_worker_class()(**kwargs)
    except RuntimeError as e:
        raise ValueError(
            "MultiWorkerMirroredStrategy must be created before TensorFlow runs anything: call "
            f"train(distribute='multi_worker') first in the process. ({e})"
        ) from e


def _from_strategy(strategy, *, name):
    resolver = getattr(strategy, "cluster_resolver", None)
    num_workers, worker_index = 1, 0
    if resolver is not None and resolver.cluster_spec().jobs:
        spec = resolver.cluster_spec().as_dict()
        chiefs = len(spec.get("chief", []))
        num_workers = chiefs + len(spec.get("worker", []))
        if resolver.task_type == "worker":
            worker_index = chiefs + int(resolver.task_id)
    return Distribution(
        name,
        strategy=strategy,
        num_replicas=strategy.num_replicas_in_sync,
        num_workers=num_workers,
        worker_index=worker_index,
        # should_checkpoint is TensorFlow's own "this worker is the chief".
        is_chief=bool(strategy.extended.should_checkpoint),
    )


def _jax_data_parallel(*, multi_worker):
    if multi_worker:
        if not (os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or os.environ.get("TF_CONFIG")):
            raise ValueError(
                "distribute='multi_worker' on JAX needs the cluster in "
                "KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES and "
                "KERAS_DISTRIBUTION_PROCESS_ID, or in TF_CONFIG (see docs/distributed.md). "
                "Received: neither set"
            )
        keras.distribution.initialize(**_jax_cluster_from_env())
    return _from_keras_distribution(
        keras.distribution.DataParallel(devices=keras.distribution.list_devices()),
        name="multi_worker" if multi_worker else "mirrored",
    )


def _jax_cluster_from_env():
    """keras.distribution.initialize's arguments: from KERAS_DISTRIBUTION_* when set (Keras
    reads them itself), else from TF_CONFIG, so one launch script serves both backends."""
    if os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or not os.environ.get("TF_CONFIG"):
        return {}
    config = json.loads(os.environ["TF_CONFIG"])
    cluster, task = config["cluster"], config["task"]
    addresses = list(cluster.get("chief", [])) + list(cluster.get("worker", []))
    index = int(task.get("index", 0))
    if task["type"] == "worker":
        index += len(cluster.get("chief", []))
    return {
        "job_addresses": ",".join(addresses),
        "num_processes": len(addresses),
        "process_id": index,
    }


def _from_keras_distribution(distribution, *, name):
    import jax

    mesh = distribution.device_mesh
    # The replicas are the devices along the mesh's batch axis (all of them for DataParallel,
    # fewer for a ModelParallel layout that also splits the weights).
    axis = (
        mesh.axis_names.index(distribution.batch_dim_name)
        if distribution.batch_dim_name in mesh.axis_names
        else 0
    )
    return Distribution(
        name,
        distribution=distribution,
        num_replicas=int(mesh.shape[axis]),
        num_workers=jax.process_count(),
        worker_index=jax.process_index(),
        is_chief=jax.process_index() == 0,
    )


def scale_learning_rate(recipe, global_batch_size, *, steps_per_epoch, warmup_epochs=WARMUP_EPOCHS):
    """The linear scaling rule with warm-up (Goyal et al. 2017, sections 2.1-2.2).

    With a global batch `k` times the recipe's, the learning rate is multiplied by `k`, and
    the run keeps its number of epochs: iteration counts (the "paper" recipe's 64k iterations
    and 32k/48k boundaries) are divided by `k`. For `k > 1` the first `warmup_epochs` epochs
    warm up: a linear ramp from 0 for the "cosine" schedule (Goyal's gradual warm-up); for
    "piecewise", whose warm-up is a constant rate, the recipe's warm-up rate (else the
    unscaled rate), Goyal's constant warm-up, which they find enough for moderate `k`.

    Args:
        recipe: a `keras_resnets.recipes.Recipe`.
        global_batch_size: images per step, over all replicas.
        steps_per_epoch: steps of an epoch at `global_batch_size` (for warm-ups in iterations).
        warmup_epochs: Defaults to `WARMUP_EPOCHS` (5).

    Returns:
        A new `Recipe` (recipes are frozen dataclasses).

    Example:
    >>> recipe = scale_learning_rate(recipes.get("fast"), 512, steps_per_epoch=97)
    >>> recipe.learning_rate, recipe.warmup  # 0.8, 5
    """
    if recipe.optimizer != "sgd" or recipe.schedule == "constant":
        raise ValueError(
            "The linear scaling rule is for SGD with a learning-rate schedule (Goyal et al. "
            f"2017). Received: recipe={recipe.name!r} (optimizer={recipe.optimizer!r}, "
            f"schedule={recipe.schedule!r})"
        )
    k = global_batch_size / recipe.batch_size
    changes = {
        "batch_size": global_batch_size,
        "learning_rate": recipe.learning_rate * k,
        "description": f"{recipe.description} Linear scaling to batch {global_batch_size} "
        f"(x{k:g}, Goyal et al. 2017).",
        "boundaries": tuple(b if b < 1 else round(b / k) for b in recipe.boundaries),
    }
    if recipe.total_steps:
        changes["total_steps"] = max(1, round(recipe.total_steps / k))
    if k > 1 and recipe.schedule == "cosine":
        changes["warmup"] = max(recipe.warmup, warmup_epochs)
    elif k > 1 and recipe.schedule == "piecewise":
        changes["warmup"] = max(round(recipe.warmup / k), warmup_epochs * steps_per_epoch)
        changes["warmup_learning_rate"] = recipe.warmup_learning_rate or recipe.learning_rate
    elif recipe.schedule == "piecewise" and recipe.warmup:
        changes["warmup"] = round(recipe.warmup / k)
    return dataclasses.replace(recipe, **changes)
