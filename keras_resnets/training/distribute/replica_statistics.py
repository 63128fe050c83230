"""`AverageReplicaStatistics`: one value of BatchNormalization's moving statistics across
the replicas of a tf.distribute strategy."""

import keras


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
