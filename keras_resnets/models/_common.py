"""Pieces every builder shares: the keras.applications keyword block (checked once, around a
backbone, by `classifier_model`), depth checks, and the stem and transition convolutions."""

import dataclasses
import numbers
from typing import Callable, Optional

import keras
import numpy as np
from keras import layers

from keras_resnets.layers import _defaults
from keras_resnets.layers.padding import MaxPooling2D
from keras_resnets.models.registry import (  # noqa: F401 (the builders' names for them)
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
)

POOLINGS = (None, "avg", "max")


@dataclasses.dataclass(frozen=True)
class DepthFormula:
    """The depths a family defines: `step * n + offset` for n >= 1 units per stage, and the
    papers' depths (the documented table, which wins where it says otherwise).

    Researchers try depths the papers never trained (a 6n+2 ResNet-8 for a quick run), so
    a family accepts every depth its formula defines; the papers' stay the registry's
    `depths=` and the model table's rows.
    """

    family: str
    step: int
    offset: int
    papers: tuple
    unit: str = "units per stage"  # what n counts, for the message
    note: str = ""  # any depth the table defines otherwise, for the message

    def units(self, depth):
        """n, the units per stage of `depth`; a ValueError naming the valid depths else."""
        _check_integer_depth(self.family, depth)
        if is_integer(depth) and depth > self.offset and (depth - self.offset) % self.step == 0:
            return int(depth - self.offset) // self.step
        first = ", ".join(str(self.step * n + self.offset) for n in (1, 2, 3))
        raise ValueError(
            f"{self.family} defines depth {self.step}n+{self.offset}, n >= 1 {self.unit} "
            f"({first}, ...){self.note}; the model table's: "
            f"{', '.join(str(d) for d in sorted(self.papers))}. Received: depth={depth!r}"
        )


is_integer = _defaults.is_integer


def check_depth(family, depth, valid):
    """Raise a ValueError naming the valid depths unless `depth` is one of them."""
    _check_integer_depth(family, depth)
    if not is_integer(depth) or depth not in valid:
        raise ValueError(
            f"{family} does not define depth {depth!r}. Valid depths: "
            f"{', '.join(str(d) for d in sorted(valid))}. Received: depth={depth!r}"
        )


def _check_integer_depth(family, depth):
    # 20.0 is refused as text is: a message listing 20 among the valid depths misled.
    if not is_integer(depth):
        raise ValueError(f"`depth` of {family} must be an integer. Received: depth={depth!r}")


check_choice = _defaults.check_choice


def check_classes(classes):
    """`classes` must be a positive int (a bool is not a class count)."""
    if not is_integer(classes) or classes < 1:
        raise ValueError(f"`classes` must be a positive int. Received: classes={classes!r}")
    return int(classes)


def check_input_shape(model_name, input_shape, *, downsampling, max_size=None):
    """Validate `input_shape` for a network that downsamples by `downsampling`.

    Each known spatial size must be at least `downsampling` (and at most `max_size`, for a
    head that needs a fixed final size), and there must be 3 channels (RGB pixels).
    """
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or not all(d is None or (is_integer(d) and d > 0) for d in input_shape)
    ):
        raise ValueError(
            "`input_shape` must be (height, width, 3), each size a positive int or None. "
            f"Received: input_shape={input_shape!r}"
        )
    height, width, channels = input_shape
    if channels != 3:
        raise ValueError(
            f"{model_name} takes RGB images with 3 channels. Received: input_shape={input_shape!r}"
        )
    for size in (height, width):
        if size is None:
            if max_size is not None:
                # A flattening head sized for 1x1 maps would silently widen on larger ones.
                raise ValueError(
                    f"{model_name}'s head needs a fixed height and width (at most {max_size}); "
                    "give them, or build without the top (include_top=False). "
                    f"Received: input_shape={tuple(input_shape)}"
                )
            continue
        if size < downsampling:
            raise ValueError(
                f"input_shape is too small for {model_name}, which downsamples by {downsampling}: "
                f"height and width must be at least {downsampling}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        if max_size is not None and size > max_size:
            raise ValueError(
                f"{model_name}'s head needs height and width of at most {max_size}. "
                f"Received: input_shape={tuple(input_shape)}"
            )


@dataclasses.dataclass(frozen=True)
class Architecture:
    """What a family module says about a network besides its backbone function.

    Attributes:
        name: the model's name (the builder resolves its default, e.g. "resnet50").
        dataset: a registry dataset ("cifar10", "imagenet"): the default input shape, the
            default number of classes and the preprocessing statistics.
        downsampling: the backbone's total stride; height and width must be at least it.
        top: `top(x, classes, classifier_activation) -> outputs`, a classifier of the
            network's own in place of global average pooling and `predictions` (the
            article's conv head). Defaults to None.
        top_max_size: with `top` and `include_top=True`, the largest height and width it
            takes (a head that flattens a fixed final size). Defaults to None.
    """

    name: str
    dataset: str
    downsampling: int
    top: Optional[Callable] = None
    top_max_size: Optional[int] = None


def classifier_model(
    backbone,
    architecture,
    /,
    *,
    input_shape=None,
    classes=None,
    include_top=True,
    pooling=None,
    classifier_activation="softmax",
    include_preprocessing=True,
):
    """`keras.Model`: images -> preprocessing -> `backbone` -> pooling and classifier.

    The keras.applications keywords, checked here once for every family, before anything
    is built.

    Args:
        backbone: `backbone(x) -> features`, the family's architecture on a [batch, height,
            width, channels] tensor of preprocessed images.
        architecture: an `Architecture`: name, dataset, downsampling, and any head of its own.
        input_shape: Defaults to the dataset's ((32, 32, 3), (224, 224, 3)); height and width
            must be at least the downsampling.
        classes: positive int, the classifier's width. Defaults to the dataset's (10, 1000).
        include_top: bool, end in the classifier (else in the features, or their `pooling`).
            Defaults to True.
        pooling: None, "avg" or "max": the pooling of the features without the top.
            Defaults to None.
        classifier_activation: the classifier's activation. Defaults to "softmax".
        include_preprocessing: bool, or a `(mean, std)` pair, see `model_input`.
            Defaults to True: normalise raw [0, 255] pixels with the dataset's statistics.
    """
    # The registry's datasets: a builder declares which, not the numbers.
    from keras_resnets.models.registry import DATASETS

    default_shape, default_classes, mean, std = DATASETS[architecture.dataset]
    classes = default_classes if classes is None else classes
    check_choice("pooling", pooling, POOLINGS)
    include_top = _defaults.check_bool("include_top", include_top)
    if include_top:
        classes = check_classes(classes)
    input_shape = default_shape if input_shape is None else input_shape
    check_input_shape(
        architecture.name,
        input_shape,
        downsampling=architecture.downsampling,
        max_size=architecture.top_max_size if include_top else None,
    )
    input_shape = tuple(int(d) if d is not None else None for d in input_shape)
    inputs, x = model_input(
        input_shape, include_preprocessing=include_preprocessing, mean=mean, std=std
    )
    x = backbone(x)
    if include_top and architecture.top is not None:
        outputs = architecture.top(x, classes, classifier_activation)
    else:
        outputs = head(
            x,
            include_top=include_top,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
        )
    return keras.Model(inputs, outputs, name=architecture.name)


def model_input(input_shape, *, include_preprocessing, mean, std):
    """The model's input layer, then normalisation of raw [0, 255] pixels when asked.

    Normalising inside the model (as keras.applications' ConvNeXt and EfficientNet do) means
    the same model is trained, evaluated and served on raw pixels. `include_preprocessing`
    may also be a `(mean, std)` pair, in [0, 1] pixel units, that replaces the dataset's:
    pretrained weights bring the preprocessing they were trained with.
    """
    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    if isinstance(include_preprocessing, (tuple, list)):
        channels = input_shape[-1]
        pair = [_channel_values(v, channels) for v in include_preprocessing]
        if len(pair) != 2 or any(v is None for v in pair) or min(pair[1]) <= 0:
            raise ValueError(
                f"`include_preprocessing` must be a bool or a (mean, std) pair of {channels} "
                "numbers each (std above 0), in [0, 1] pixel units. "
                f"Received: include_preprocessing={include_preprocessing!r}"
            )
        mean, std = pair
    elif include_preprocessing is not None:
        include_preprocessing = _defaults.check_bool("include_preprocessing", include_preprocessing)
    if include_preprocessing is not False and include_preprocessing is not None:
        x = layers.Normalization(
            mean=[255.0 * m for m in mean],
            variance=[(255.0 * s) ** 2 for s in std],
            name="normalization",
        )(x)
    return inputs, x


def _channel_values(values, channels):
    """`values` as `channels` floats (a per-channel mean or std: a sequence or a NumPy
    array of real numbers), or None if they are not."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        return None
    if len(values) != channels or not all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in values
    ):
        return None
    return [float(v) for v in values]


def head(x, *, include_top, pooling, classes, classifier_activation):
    """Global average pooling and the classifier, or the requested feature pooling."""
    check_choice("pooling", pooling, POOLINGS)
    if include_top:
        check_classes(classes)
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return classifier(x, classes=classes, classifier_activation=classifier_activation)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def classifier(x, *, classes, classifier_activation):
    # float32 so that under mixed precision the softmax and the loss stay in full precision.
    return layers.Dense(
        classes, activation=classifier_activation, dtype="float32", name="predictions"
    )(x)


def conv_bn_relu(x, filters, kernel_size, *, strides=1, name, relu=True, padding="symmetric"):
    """A stem/transition convolution: conv, BN and (optionally) ReLU, with fixed names."""
    x = _defaults.conv2d(
        filters, kernel_size, strides=strides, padding=padding, name=f"{name}_conv"
    )(x)
    x = _defaults.batch_norm(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def stem_pool(x):
    """The ImageNet stem's 3x3/2 max pooling, padded by one with -inf on every side
    (torch's `MaxPool2d(3, 2, padding=1)`): the padding never wins the max."""
    return MaxPooling2D(3, strides=2, padding="symmetric", name="stem_pool")(x)


def bn_relu(x, *, name):
    x = _defaults.batch_norm(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)
