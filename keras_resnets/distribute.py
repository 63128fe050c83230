"""The former name of `keras_resnets.training.distribute`, whose public names it re-exports
(with the linear scaling rule, now `keras_resnets.training.recipes.scale_learning_rate`):
`keras_resnets.distribute.multi_worker_strategy()` still works."""

from keras_resnets.training.distribute import (
    BACKUP_DIR,
    CHOICES,
    KERAS_DISTRIBUTIONS,
    AverageReplicaStatistics,
    Distribution,
    KerasDistribution,
    StrategyDistribution,
    multi_worker_strategy,
    resolve,
)
from keras_resnets.training.recipes import WARMUP_EPOCHS, scale_learning_rate

__all__ = [
    "BACKUP_DIR",
    "CHOICES",
    "KERAS_DISTRIBUTIONS",
    "WARMUP_EPOCHS",
    "AverageReplicaStatistics",
    "Distribution",
    "KerasDistribution",
    "StrategyDistribution",
    "multi_worker_strategy",
    "resolve",
    "scale_learning_rate",
]
