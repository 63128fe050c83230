"""What a training run is: `TrainConfig`, every argument of `train`, checked before any work.

    >>> config = TrainConfig("cifar_resnet", model_kwargs={"depth": 20}, epochs=2)
    >>> keras_resnets.training.run(config)   # the same as train("cifar_resnet", ...)

The CLI fills a `TrainConfig` from its options; `train(...)` builds one from its arguments.
Every check here needs the arguments alone (no data, no TensorFlow), so a bad value is
refused before a run folder or a dataset is touched. `builder_arguments` tells which
keyword arguments a registered builder takes, following its `**kwargs`.
"""

import dataclasses
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np

from keras_resnets._checks import check_bool
from keras_resnets.models.registry import builder_arguments, check_builder_arguments
from keras_resnets.training import precision, recipes

# The arguments that count something: None means "the default", 0 never does.
COUNTS = ("epochs", "steps_per_epoch", "batch_size", "train_limit", "test_limit")


@dataclasses.dataclass
class TrainConfig:
    """The arguments of `keras_resnets.training.train`, with the same names, defaults and
    meaning (see its docstring), checked on construction: a bad value raises ValueError
    that echoes it ("Received: epochs=0"). `model` may be given positionally, the others
    by keyword, as in `train`.
    """

    model: str = "cifar_resnet"
    _: dataclasses.KW_ONLY
    model_kwargs: dict | None = None
    recipe: Any = "fast"  # a name or a `recipes.Recipe`
    epochs: int | None = None
    steps_per_epoch: int | None = None
    batch_size: int | None = None
    data: Any = None
    out: Any = "runs/run"  # a str or a path
    restart: bool = False
    seed: int = 0
    mixed_precision: str | None = None
    jit_compile: Any = "auto"  # True, False or "auto"
    train_limit: int | None = None
    test_limit: int | None = None
    distribute: Any = "none"  # a name, a tf.distribute.Strategy or a keras.distribution
    scale_lr: bool = False
    engine: str | None = None
    verbose: int = 1

    def __post_init__(self):
        for name in COUNTS:
            check_count(name, getattr(self, name))
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"`seed` must be an integer of at least 0. Received: seed={seed!r}")
        if self.verbose not in (0, 1, 2) or isinstance(self.verbose, bool):
            raise ValueError(f"`verbose` must be 0, 1 or 2. Received: verbose={self.verbose!r}")
        # Text is truthy: restart="False" once cleared a finished run and trained it again.
        for name in ("restart", "scale_lr"):
            setattr(self, name, check_bool(name, getattr(self, name)))
        if isinstance(self.jit_compile, np.bool_):
            self.jit_compile = bool(self.jit_compile)
        if self.jit_compile != "auto" and not isinstance(self.jit_compile, bool):
            raise ValueError(
                "`jit_compile` must be True, False or 'auto'. "
                f"Received: jit_compile={self.jit_compile!r}"
            )
        if not isinstance(self.recipe, (str, recipes.Recipe)):
            raise ValueError(
                "`recipe` must be a recipe's name or a `Recipe`. Valid names: "
                f"{', '.join(sorted(recipes.RECIPES))}. Received: recipe={self.recipe!r}"
            )
        if self.model_kwargs is not None and not isinstance(self.model_kwargs, dict):
            raise ValueError(
                "`model_kwargs` must be a dict of builder arguments, e.g. {'depth': 20}. "
                f"Received: model_kwargs={self.model_kwargs!r}"
            )
        self.model_kwargs = dict(self.model_kwargs or {})
        unknown, valid = unknown_builder_arguments(self.model, self.model_kwargs)
        if unknown:
            raise ValueError(
                f"{self.model} takes no argument {', '.join(unknown)}. Its arguments: "
                f"{', '.join(sorted(valid))}. Received: model_kwargs={self.model_kwargs}"
            )
        check_builder_arguments(self.model, self.model_kwargs)
        check_trainable_head(self.model_kwargs)
        check_folder(self.out)
        precision.check_mixed_precision(self.mixed_precision)

    def resolve_recipe(self):
        """The `Recipe` of the run: `recipe` itself, or the named one with the model's parts
        (the paper's ResNet-110 warm-up; see `recipes.for_model`)."""
        if isinstance(self.recipe, str):
            return recipes.for_model(self.recipe, self.model, self.model_kwargs.get("depth"))
        return self.recipe


def check_count(name, value, *, minimum=1):
    """`value` is None (the default) or an integer of at least `minimum`: 0 never means
    "the default"."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        raise ValueError(f"`{name}` must be {what} or None. Received: {name}={value!r}")


def check_trainable_head(model_kwargs):
    """`train` fits a classifier whose outputs are probabilities (the recipes' losses take
    them): refuse a model without its top, or with another activation, before any work
    rather than fail in the first step or, for logits, train on the wrong loss."""
    if model_kwargs.get("include_top", True) is not True:
        raise ValueError(
            "train() fits the model's classifier, so it needs include_top=True (build a "
            "backbone with build(..., include_top=False) for your own head). Received: "
            f"include_top={model_kwargs['include_top']!r}"
        )
    activation = model_kwargs.get("classifier_activation", "softmax")
    if activation != "softmax":
        raise ValueError(
            "train() needs classifier_activation='softmax': the recipes' losses take "
            f"probabilities, not logits. Received: classifier_activation={activation!r}"
        )


def check_folder(out):
    """`out` can be (or become) a folder: neither it nor any parent is a file."""
    if not isinstance(out, (str, os.PathLike)) or not str(out):
        raise ValueError(f"`out` must be a folder's path. Received: out={out!r}")
    for folder in (Path(out), *Path(out).parents):
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(
                    f"`out` must be a folder, and {folder} is a file. Received: out={str(out)!r}"
                )
            return


def unknown_builder_arguments(model, model_kwargs):
    """The sorted names in `model_kwargs` that the builder `model` does not take, and the
    ones it takes (([], None) where they cannot be told)."""
    valid = builder_arguments(model)
    if valid is None:
        return [], None
    return sorted(set(model_kwargs) - valid), valid
