"""The TensorFlow engine: `tf.distribute` strategies behind the `Distribution` interface.

`"mirrored"` is `tf.distribute.MirroredStrategy` over every GPU of this host (every logical
CPU device if there is no GPU); `"multi_worker"` is `multi_worker_strategy()`, a
`tf.distribute.MultiWorkerMirroredStrategy` that Keras 3's `fit` can run, configured by
`TF_CONFIG`. TensorFlow is imported only when a strategy is made.
"""

from keras_resnets.training.distribute import cluster
from keras_resnets.training.distribute.base import Distribution
from keras_resnets.training.distribute.replica_statistics import AverageReplicaStatistics


class StrategyDistribution(Distribution):
    """A `Distribution` running on the `tf.distribute.Strategy` `strategy`."""

    def __init__(self, strategy, *, name):
        num_workers, worker_index = cluster.workers_of(getattr(strategy, "cluster_resolver", None))
        super().__init__(
            name,
            num_replicas=strategy.num_replicas_in_sync,
            num_workers=num_workers,
            worker_index=worker_index,
            # should_checkpoint is TensorFlow's own "this worker is the chief".
            is_chief=bool(strategy.extended.should_checkpoint),
        )
        self.engine = self.strategy = strategy

    def scope(self):
        return self.strategy.scope()

    def distribute_datasets(self, *datasets):
        """Auto-shard policy DATA. The training stream is built from index tensors
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
        """
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return super().distribute_datasets(*(ds.with_options(options) for ds in datasets))

    def callbacks(self):
        """The averaging of per-replica statistics (see `AverageReplicaStatistics`)."""
        return [AverageReplicaStatistics(self.strategy)] if self.num_replicas > 1 else []

    def _all_gather(self, value):
        import tensorflow as tf

        per_replica = self.strategy.experimental_distribute_values_from_function(
            lambda context: tf.constant([value], tf.int64)
        )
        gathered = self.strategy.gather(per_replica, axis=0)
        # One entry per replica; the replicas of one worker hold the same value.
        return [int(v) for v in gathered.numpy()[:: self.num_replicas // self.num_workers]]


def from_strategy(strategy, *, name="custom"):
    """A `StrategyDistribution` of a caller's strategy; a plain MultiWorkerMirroredStrategy
    across workers is refused, as Keras 3's fit cannot run it."""
    import tensorflow as tf

    if (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and not isinstance(strategy, _multi_worker_class())
        and strategy.extended._in_multi_worker_mode()
    ):
        raise ValueError(
            "Keras 3's fit cannot run a plain tf.distribute.MultiWorkerMirroredStrategy "
            "across workers (keras-team/keras#20585): pass "
            "keras_resnets.training.distribute.multi_worker_strategy(...) or 'multi_worker'."
        )
    return StrategyDistribution(strategy, name=name)


def is_strategy(value):
    """Whether `value` is a `tf.distribute.Strategy` (False without TensorFlow)."""
    try:
        import tensorflow as tf
    except ImportError:
        return False
    return isinstance(value, tf.distribute.Strategy)


def mirrored_strategy():
    """`tf.distribute.MirroredStrategy` over the GPUs of this host, else its CPU devices."""
    import tensorflow as tf

    # MirroredStrategy() alone takes the GPUs, or else the one CPU device; the logical CPU
    # devices (tf.config.set_logical_device_configuration) make a CPU-only test of the same code.
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def multi_worker_strategy(**kwargs):
    """A `tf.distribute.MultiWorkerMirroredStrategy` that Keras 3's `fit` can run.

    Takes the arguments of `tf.distribute.MultiWorkerMirroredStrategy` (`cluster_resolver`,
    `communication_options`). Without a `cluster_resolver`, the cluster comes from `TF_CONFIG`,
    which must then be set. Create it at program start, before TensorFlow runs anything.

    Example:
    >>> strategy = keras_resnets.training.distribute.multi_worker_strategy()
    >>> keras_resnets.training.train("cifar_resnet", distribute=strategy)
    """
    if "cluster_resolver" not in kwargs:
        cluster.require_tf_config()
    try:
        return _multi_worker_class()(**kwargs)
    except RuntimeError as e:
        raise ValueError(
            "MultiWorkerMirroredStrategy must be created before TensorFlow runs anything: call "
            f"train(distribute='multi_worker') first in the process. ({e})"
        ) from e


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
