"""Training with plain `model.fit`: one job per module, `train()` composing them.

    >>> from keras_resnets import training
    >>> summary = training.train("cifar_resnet", model_kwargs={"depth": 20},
    ...                          recipe="fast", data="../shared/cifar10", out="runs/r20")

    trainer.py     `train()` and `run(config)`: the steps below, in order
    config.py      `TrainConfig`: every argument of `train`, checked before any work
    precision.py   the dtype policy (`--mixed-precision auto` asks `keras_resnets.machine`)
    recipes.py     optimizer, schedule, weight decay, and the linear learning-rate scaling
    distribute/    one device, tf.distribute or keras.distribution, behind one interface
    run_folder.py  what a run writes (run.json, summary.json, ...), restart and resume
    inputs.py      the data of a run, through `keras_resnets.data`
    callbacks.py   the callbacks `fit` runs (wall clock, atomic checkpoints, the error plot)

`keras_resnets.train`, `keras_resnets.recipes` and `keras_resnets.distribute` are the former
names of these modules, kept as aliases. Like the package, this one loads its modules on
first use: `keras_resnets.training.recipes` alone (which registers the recipes' loss with
Keras) does not import the data and model code.
"""

import importlib as _importlib

_SUBMODULES = (
    "callbacks",
    "config",
    "distribute",
    "inputs",
    "precision",
    "recipes",
    "run_folder",
    "trainer",
)
_NAMES = {
    "train": "keras_resnets.training.trainer",
    "run": "keras_resnets.training.trainer",
    "TrainConfig": "keras_resnets.training.config",
    "Recipe": "keras_resnets.training.recipes",
}

__all__ = ["train", "run", "TrainConfig", "Recipe", *_SUBMODULES]


def __getattr__(name):
    if name in _NAMES:
        return getattr(_importlib.import_module(_NAMES[name]), name)
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
