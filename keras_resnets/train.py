"""The former name of `keras_resnets.training`: `keras_resnets.train.train(...)` still works.

    >>> summary = keras_resnets.train.train("cifar_resnet", model_kwargs={"depth": 20},
    ...                                     recipe="fast", data="../shared/cifar10", out="runs/r20")

Training now lives in the `keras_resnets.training` package, one job per module (see its
docstring); this module re-exports its public names from there.
"""

from keras_resnets.training.callbacks import AtomicModelCheckpoint, PlotErrors, WallClock
from keras_resnets.training.config import TrainConfig, builder_arguments
from keras_resnets.training.precision import MIXED_PRECISION, resolve_mixed_precision
from keras_resnets.training.run_folder import RUN_FILES, check_run_folder
from keras_resnets.training.trainer import run, train

__all__ = [
    "MIXED_PRECISION",
    "RUN_FILES",
    "AtomicModelCheckpoint",
    "PlotErrors",
    "TrainConfig",
    "WallClock",
    "builder_arguments",
    "check_run_folder",
    "resolve_mixed_precision",
    "run",
    "train",
]
