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

Nothing here reduces gradients or holds parameters itself: the strategies do. What this
package adds is what `train` needs around them, one module each:

    base.py                the `Distribution` interface, and its one-device case: which
                           worker writes the run folder (the chief; the others write into a
                           temporary folder that is deleted, as in TensorFlow's multi-worker
                           Keras tutorial), a check that every worker resumes from the same
                           backup
    strategy.py            the TensorFlow engine (`StrategyDistribution`, the strategies)
    keras_distribution.py  the Keras/JAX engine (`KerasDistribution`)
    replica_statistics.py  `AverageReplicaStatistics`, BatchNormalization's statistics
    cluster.py             the cluster from TF_CONFIG or KERAS_DISTRIBUTION_*
    choice.py              `resolve`: the `--distribute` choice to a `Distribution`

The batch size is global: `batch_size=512` on 4 replicas is 128 images per replica per step,
so the optimisation is the same as on one device, up to BatchNormalization, whose statistics
are per replica (as in Goyal et al. 2017, section 5.1); see docs/distributed.md. The linear
learning-rate scaling rule for a larger global batch is a recipe's
(`keras_resnets.training.recipes.scale_learning_rate`).
"""

from keras_resnets.training.distribute.base import BACKUP_DIR, Distribution
from keras_resnets.training.distribute.choice import CHOICES, resolve
from keras_resnets.training.distribute.keras_distribution import (
    KERAS_DISTRIBUTIONS,
    KerasDistribution,
)
from keras_resnets.training.distribute.replica_statistics import AverageReplicaStatistics
from keras_resnets.training.distribute.strategy import (
    StrategyDistribution,
    multi_worker_strategy,
)

__all__ = [
    "BACKUP_DIR",
    "CHOICES",
    "KERAS_DISTRIBUTIONS",
    "AverageReplicaStatistics",
    "Distribution",
    "KerasDistribution",
    "StrategyDistribution",
    "multi_worker_strategy",
    "resolve",
]
