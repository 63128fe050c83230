"""Training recipes: optimizer, schedule, batch size, epochs, weight decay, for plain `model.fit`.

    >>> from keras_resnets.training import recipes
    >>> recipe = recipes.get("paper")
    >>> model.compile(**recipe.compile_kwargs(model, steps_per_epoch=390))

Weight decay is the papers' coupled L2 (the gradient gains `weight_decay * w`, as in Caffe and
Torch), attached only to convolution and dense kernels: BN parameters and biases are never
decayed (He et al. 2015 decay "weights"; Goyal et al. 2017 section 5.1 spell it out).

`scale_learning_rate` adapts a recipe to another batch size (the linear scaling rule with
warm-up, Goyal et al. 2017), as `train(..., scale_lr=True)` does for a distributed run's
global batch. `keras_resnets.recipes`, its former name, re-exports it.
"""

import dataclasses
import math

import keras

from keras_resnets.accounting import sublayers
from keras_resnets.layers import _defaults

DECAYED_LAYERS = (keras.layers.Conv2D, keras.layers.Dense, keras.layers.DepthwiseConv2D)
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("piecewise", "cosine", "constant")
# Goyal et al. 2017, section 2.2: 5 epochs of warm-up for the linear scaling rule.
WARMUP_EPOCHS = 5


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A training recipe.

    Args:
        name: registry name.
        description: one line, with the source.
        batch_size: images per step.
        epochs: default length of a run.
        optimizer: "sgd" or "adam".
        learning_rate: peak learning rate.
        schedule: "piecewise" (`boundaries` as fractions of the run or absolute steps,
            `decay` at each), "cosine" (with linear warm-up, at most a fifth of the run) or
            "constant".
        boundaries: for "piecewise": where the rate divides by `decay`. Values below 1 are
            fractions of the run, others are absolute iterations (the ResNet paper's 32k/48k).
        warmup: warm-up length in epochs (linear for "cosine"); for "piecewise", the number of
            iterations at `warmup_learning_rate` (He et al.'s ResNet-110 trick).
        warmup_learning_rate: the rate during a "piecewise" warm-up.
        momentum, nesterov: SGD settings.
        weight_decay: L2 coefficient on kernels (gradient += weight_decay * w).
        label_smoothing: for the cross-entropy.
        total_steps: for the ResNet paper: the run is 64k iterations, whatever the epochs.
    """

    name: str
    description: str
    batch_size: int
    epochs: int
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    schedule: str = "piecewise"
    boundaries: tuple = ()
    decay: float = 0.1
    warmup: float = 0.0
    warmup_learning_rate: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    total_steps: int = None

    def __post_init__(self):
        # A Recipe made by hand or by `get(name, **overrides)`: a bad field is named here,
        # not at the first training step (a text rate failed inside TensorFlow's optimizer).
        for name in ("batch_size", "epochs"):
            _defaults.check_int(name, getattr(self, name))
        if self.total_steps is not None:
            _defaults.check_int("total_steps", self.total_steps)
        _defaults.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _defaults.check_choice("schedule", self.schedule, SCHEDULES)
        _defaults.check_bool("nesterov", self.nesterov)
        positive = {"interval": "above 0", "ok": lambda v: v > 0}
        at_least_0 = {"interval": ">= 0", "ok": lambda v: v >= 0}
        below_1 = {"interval": "in [0, 1)", "ok": lambda v: 0 <= v < 1}
        for name, rule in (
            ("learning_rate", positive),
            ("decay", positive),
            ("warmup", at_least_0),
            ("warmup_learning_rate", at_least_0),
            ("momentum", below_1),
            ("weight_decay", at_least_0),
            ("label_smoothing", below_1),
        ):
            _defaults.check_number(name, getattr(self, name), **rule)

    def epochs_for(self, steps_per_epoch):
        """Epochs of the run: `total_steps` converted when the recipe counts iterations."""
        if self.total_steps:
            return math.ceil(self.total_steps / steps_per_epoch)
        return self.epochs

    def learning_rate_schedule(self, *, steps_per_epoch, epochs):
        total = steps_per_epoch * epochs
        if self.schedule == "constant":
            return self.learning_rate
        if self.schedule == "cosine":
            # A warm-up never takes more than a fifth of the run: a 2-epoch warm-up would
            # otherwise be all of a 2-epoch run, whose rate would then never decay.
            warmup_steps = min(int(self.warmup * steps_per_epoch), total // 5)
            return keras.optimizers.schedules.CosineDecay(
                initial_learning_rate=0.0 if warmup_steps else self.learning_rate,
                decay_steps=max(total - warmup_steps, 1),
                warmup_target=self.learning_rate if warmup_steps else None,
                warmup_steps=warmup_steps,
            )
        if self.schedule == "piecewise":
            bounds = [int(b * total) if b < 1 else int(b) for b in self.boundaries]
            values = [self.learning_rate * self.decay**i for i in range(len(bounds) + 1)]
            if self.warmup:
                bounds = [int(self.warmup)] + bounds
                values = [self.warmup_learning_rate] + values
            return keras.optimizers.schedules.PiecewiseConstantDecay(bounds, values)
        raise ValueError(f"Unknown schedule {self.schedule!r} in recipe {self.name!r}.")

    def make_optimizer(self, *, steps_per_epoch, epochs):
        lr = self.learning_rate_schedule(steps_per_epoch=steps_per_epoch, epochs=epochs)
        if self.optimizer == "sgd":
            return keras.optimizers.SGD(lr, momentum=self.momentum, nesterov=self.nesterov)
        if self.optimizer == "adam":
            return keras.optimizers.Adam(lr)
        raise ValueError(f"Unknown optimizer {self.optimizer!r} in recipe {self.name!r}.")

    def make_loss(self):
        # Sparse labels with smoothing: Keras's CategoricalCrossentropy needs one-hot labels,
        # so smoothing recipes one-hot in the loss wrapper below.
        if self.label_smoothing:
            return SmoothedSparseCrossentropy(self.label_smoothing)
        return keras.losses.SparseCategoricalCrossentropy()

    def compile_kwargs(self, model, *, steps_per_epoch, epochs=None, jit_compile="auto"):
        """Attach the weight decay to `model` and return the arguments of `model.compile`."""
        if epochs is None:
            epochs = self.epochs_for(steps_per_epoch)
        apply_weight_decay(model, self.weight_decay)
        return dict(
            optimizer=self.make_optimizer(steps_per_epoch=steps_per_epoch, epochs=epochs),
            loss=self.make_loss(),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=jit_compile,
        )


@keras.saving.register_keras_serializable(package="keras_resnets")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy on probabilities with label smoothing, taking integer labels."""

    def __init__(self, label_smoothing=0.1, name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = _defaults.check_number(
            "label_smoothing", label_smoothing, interval="in [0, 1)", ok=lambda v: 0 <= v < 1
        )

    def call(self, y_true, y_pred):
        classes = keras.ops.shape(y_pred)[-1]
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, classes)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def apply_weight_decay(model, weight_decay):
    """Put an L2 penalty on every conv/dense kernel of `model` (BN and biases untouched).

    Keras's L2(l) adds l * sum(w^2) to the loss, i.e. 2 * l * w to the gradient, so the papers'
    weight decay `wd` (gradient += wd * w) is L2(wd / 2). The penalty sits on the variables, so
    it needs no change to the architecture code.
    """
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    for layer in sublayers(model, include_self=False):
        if isinstance(layer, DECAYED_LAYERS):
            layer.kernel.regularizer = regularizer


FAST = Recipe(
    "fast",
    "A short schedule for CIFAR ResNets: SGD Nesterov 0.9, batch 128, cosine from 0.2 "
    "after a 2-epoch linear warm-up, wd 5e-4, label smoothing 0.1.",
    batch_size=128,
    epochs=30,
    learning_rate=0.2,
    schedule="cosine",
    warmup=2,
    nesterov=True,
    weight_decay=5e-4,
    label_smoothing=0.1,
)


RECIPES = {
    r.name: r
    for r in (
        Recipe(
            "paper",
            "He et al. 2015 section 4.2: SGD 0.9, wd 1e-4, batch 128, lr 0.1 /10 at 32k and 48k "
            "iterations, 64k in all; 400 iterations at 0.01 first for ResNet-110/1202.",
            batch_size=128,
            epochs=164,
            learning_rate=0.1,
            boundaries=(32000, 48000),
            weight_decay=1e-4,
            total_steps=64000,
        ),
        Recipe(
            "densenet",
            "Huang et al. 2017 section 4.2: SGD Nesterov 0.9, wd 1e-4, batch 64, 300 epochs, "
            "lr 0.1 /10 at 50% and 75%.",
            batch_size=64,
            epochs=300,
            learning_rate=0.1,
            boundaries=(0.5, 0.75),
            nesterov=True,
            weight_decay=1e-4,
        ),
        Recipe(
            "article",
            "The article: Adam, lr 1e-3, batch 64.",
            batch_size=64,
            epochs=30,
            optimizer="adam",
            learning_rate=1e-3,
            schedule="constant",
        ),
        FAST,
        # The article's networks on 2 CPU cores (bfloat16): 9 epochs, 48 to 120 minutes on
        # EPYCs without AMX. examples/article.py runs 14: 51 to 60 minutes on an AMX Xeon.
        dataclasses.replace(
            FAST,
            name="article_fast",
            description="The article's networks on 2 CPU cores: the `fast` recipe cut to 9 "
            "epochs, with a 1-epoch warm-up.",
            epochs=9,
            warmup=1,
        ),
    )
}


def get(name, **overrides):
    """The recipe `name`, with any field replaced by `overrides`.

    He et al.'s warm-up (400 iterations at 0.01) is what the "paper" recipe needs for
    ResNet-110 and -1202: `get("paper", warmup=400, warmup_learning_rate=0.01)`; `for_model`
    applies it by depth.
    """
    if name not in RECIPES:
        raise ValueError(
            f"Unknown recipe {name!r}. Valid recipes: {', '.join(sorted(RECIPES))}. "
            f"Received: recipe={name!r}"
        )
    recipe = RECIPES[name]
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Recipe)}
    if unknown:
        raise ValueError(f"Unknown recipe fields {sorted(unknown)}. Received: {overrides}")
    return dataclasses.replace(recipe, **overrides) if overrides else recipe


def for_model(name, model_name, depth=None, **overrides):
    """`get(name)` plus the model-specific parts of a recipe (the paper's ResNet-110 warm-up)."""
    if name == "paper" and model_name in ("cifar_resnet", "cifar_plain") and depth in (110, 1202):
        overrides = {"warmup": 400, "warmup_learning_rate": 0.01, **overrides}
    return get(name, **overrides)


def scale_learning_rate(recipe, global_batch_size, *, steps_per_epoch, warmup_epochs=WARMUP_EPOCHS):
    """The linear scaling rule with warm-up (Goyal et al. 2017, sections 2.1-2.2).

    With a global batch `k` times the recipe's, the learning rate is multiplied by `k`, and
    the run keeps its number of epochs: iteration counts (the "paper" recipe's 64k iterations
    and 32k/48k boundaries) are divided by `k`. For `k > 1` the first `warmup_epochs` epochs
    warm up: a linear ramp from 0 for the "cosine" schedule (Goyal's gradual warm-up); for
    "piecewise", whose warm-up is a constant rate, the recipe's warm-up rate (else the
    unscaled rate), Goyal's constant warm-up, which they find enough for moderate `k`.

    Args:
        recipe: a `Recipe`.
        global_batch_size: images per step, over all replicas.
        steps_per_epoch: steps of an epoch at `global_batch_size` (for warm-ups in iterations).
        warmup_epochs: Defaults to `WARMUP_EPOCHS` (5).

    Returns:
        A new `Recipe` (recipes are frozen dataclasses).

    Example:
    >>> recipe = scale_learning_rate(get("fast"), 512, steps_per_epoch=97)
    >>> recipe.learning_rate, recipe.warmup  # 0.8, 5
    """
    if recipe.optimizer != "sgd" or recipe.schedule == "constant":
        raise ValueError(
            "The linear scaling rule is for SGD with a learning-rate schedule (Goyal et al. "
            f"2017). Received: recipe={recipe.name!r} (optimizer={recipe.optimizer!r}, "
            f"schedule={recipe.schedule!r})"
        )
    global_batch_size = _defaults.check_int("global_batch_size", global_batch_size)
    k = global_batch_size / recipe.batch_size
    changes = {
        "batch_size": global_batch_size,
        "learning_rate": recipe.learning_rate * k,
        "description": f"{recipe.description} Linear scaling to batch {global_batch_size} "
        f"(x{k:g}, Goyal et al. 2017).",
        "boundaries": tuple(b if b < 1 else round(b / k) for b in recipe.boundaries),
    }
    if recipe.total_steps:
        changes["total_steps"] = max(1, round(recipe.total_steps / k))
    if k > 1 and recipe.schedule == "cosine":
        changes["warmup"] = max(recipe.warmup, warmup_epochs)
    elif k > 1 and recipe.schedule == "piecewise":
        changes["warmup"] = max(round(recipe.warmup / k), warmup_epochs * steps_per_epoch)
        changes["warmup_learning_rate"] = recipe.warmup_learning_rate or recipe.learning_rate
    elif recipe.schedule == "piecewise" and recipe.warmup:
        changes["warmup"] = round(recipe.warmup / k)
    return dataclasses.replace(recipe, **changes)
