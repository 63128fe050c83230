"""The former name of `keras_resnets.training.recipes`, whose public names it re-exports:
`keras_resnets.recipes.get("paper")` still works."""

from keras_resnets.training.recipes import (
    DECAYED_LAYERS,
    RECIPES,
    WARMUP_EPOCHS,
    Recipe,
    SmoothedSparseCrossentropy,
    apply_weight_decay,
    for_model,
    get,
    scale_learning_rate,
)

__all__ = [
    "DECAYED_LAYERS",
    "RECIPES",
    "WARMUP_EPOCHS",
    "Recipe",
    "SmoothedSparseCrossentropy",
    "apply_weight_decay",
    "for_model",
    "get",
    "scale_learning_rate",
]
