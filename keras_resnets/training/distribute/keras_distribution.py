"""The Keras engine: `keras.distribution` (JAX) behind the `Distribution` interface.

`"mirrored"` is `keras.distribution.DataParallel` over `keras.distribution.list_devices()`;
`"multi_worker"` is the same after `keras.distribution.initialize()`, over every device of
every process (the cluster from `KERAS_DISTRIBUTION_*`, or else from `TF_CONFIG`).
A caller's DataParallel or ModelParallel runs as it is.
"""

import keras

from keras_resnets.training.distribute import cluster
from keras_resnets.training.distribute.base import Distribution

# keras.distribution exports no common base class of its distributions.
KERAS_DISTRIBUTIONS = (keras.distribution.DataParallel, keras.distribution.ModelParallel)


class KerasDistribution(Distribution):
    """A `Distribution` running on the `keras.distribution` `distribution`."""

    def __init__(self, distribution, *, name):
        import jax

        mesh = distribution.device_mesh
        # The replicas are the devices along the mesh's batch axis (all of them for
        # DataParallel, fewer for a ModelParallel layout that also splits the weights).
        axis = (
            mesh.axis_names.index(distribution.batch_dim_name)
            if distribution.batch_dim_name in mesh.axis_names
            else 0
        )
        super().__init__(
            name,
            num_replicas=int(mesh.shape[axis]),
            num_workers=jax.process_count(),
            worker_index=jax.process_index(),
            is_chief=jax.process_index() == 0,
        )
        self.engine = self.distribution = distribution

    def scope(self):
        # keras.distribution lays out each batch within its scope: fit and evaluate run in it.
        return self.distribution.scope()

    def distribute_datasets(self, *datasets):
        """The distribution splits each batch across the devices of a process. Across
        processes, each one keeps its own contiguous slice of every global batch (the rows
        `jax.make_array_from_process_local_data` expects from it): the same split as
        tf.distribute's. Keras's own `auto_shard_dataset` cannot do it here, as it needs a
        static batch size."""
        if self.num_workers > 1:
            self.distribution.auto_shard_dataset = False
            datasets = [_process_slice(ds, self.num_workers, self.worker_index) for ds in datasets]
        return super().distribute_datasets(*datasets)

    def _all_gather(self, value):
        import numpy as np
        from jax.experimental import multihost_utils

        return [int(v) for v in multihost_utils.process_allgather(np.array([value])).ravel()]


def data_parallel(*, multi_worker):
    """`DataParallel` over this host's devices, or (`multi_worker`) every process's."""
    if multi_worker:
        cluster.require_jax_cluster()
        keras.distribution.initialize(**cluster.jax_cluster_from_env())
    return KerasDistribution(
        keras.distribution.DataParallel(devices=keras.distribution.list_devices()),
        name="multi_worker" if multi_worker else "mirrored",
    )


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
