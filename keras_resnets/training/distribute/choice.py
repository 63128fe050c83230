"""`resolve`: the `Distribution` for `train(distribute=...)` and `--distribute`.

It picks the engine from the backend (TensorFlow: `strategy.py`; JAX: `keras_distribution.py`)
and makes each named strategy once per process.
"""

import keras

from keras_resnets.training.distribute import keras_distribution, strategy
from keras_resnets.training.distribute.base import Distribution

CHOICES = ("none", "mirrored", "multi_worker")

# One strategy per process, reused by later calls: a second MirroredStrategy reuses the first
# one's collective-op keys (its all-reduces then fail on shape mismatches), and
# MultiWorkerMirroredStrategy can only be made at start-up.
_STRATEGIES = {}


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
            if distribute not in _STRATEGIES:
                _STRATEGIES[distribute] = (
                    strategy.mirrored_strategy()
                    if distribute == "mirrored"
                    else strategy.multi_worker_strategy()
                )
            return strategy.StrategyDistribution(_STRATEGIES[distribute], name=distribute)
        if backend == "jax":
            return keras_distribution.data_parallel(multi_worker=distribute == "multi_worker")
        raise ValueError(
            f"distribute={distribute!r} needs the TensorFlow or JAX backend (tf.distribute or "
            f"keras.distribution). Received: KERAS_BACKEND={backend!r}"
        )
    if isinstance(distribute, keras_distribution.KERAS_DISTRIBUTIONS):
        return keras_distribution.KerasDistribution(distribute, name="custom")
    if backend == "tensorflow" and strategy.is_strategy(distribute):
        return strategy.from_strategy(distribute, name="custom")
    raise _invalid(distribute)


def _invalid(distribute):
    return ValueError(
        f"`distribute` must be one of {list(CHOICES)}, a tf.distribute.Strategy (TensorFlow "
        f"backend), or a keras.distribution.DataParallel or ModelParallel. "
        f"Received: distribute={distribute!r}"
    )
