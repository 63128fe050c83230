"""Pieces every builder shares: argument checks, the input and preprocessing, the head."""

import keras
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


def check_depth(family, depth, valid):
    """Raise a ValueError naming the valid depths unless `depth` is one of them."""
    if depth not in valid:
        raise ValueError(
            f"{family} does not define depth {depth!r}. Valid depths: "
            f"{', '.join(str(d) for d in sorted(valid))}. Received: depth={depth!r}"
        )


check_choice = _defaults.check_choice


def check_classes(classes):
    """`classes` must be a positive int (a bool is not a class count)."""
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"`classes` must be a positive int. Received: classes={classes!r}")
    return classes


def check_input_shape(model_name, input_shape, *, downsampling, max_size=None):
    """Validate `input_shape` for a network that downsamples by `downsampling`.

    Each known spatial size must be at least `downsampling` (and at most `max_size`, for a
    head that needs a fixed final size), and there must be 3 channels (RGB pixels).
    """
    if input_shape is None or len(input_shape) != 3:
        raise ValueError(
            f"`input_shape` must be (height, width, 3). Received: input_shape={input_shape!r}"
        )
    height, width, channels = input_shape
    if channels != 3:
        raise ValueError(
            f"{model_name} takes RGB images with 3 channels. Received: input_shape={input_shape!r}"
        )
    for size in (height, width):
        if size is None:
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
        if len(include_preprocessing) != 2:
            raise ValueError(
                "`include_preprocessing` must be a bool or a (mean, std) pair. "
                f"Received: include_preprocessing={include_preprocessing!r}"
            )
        mean, std = include_preprocessing
    if include_preprocessing is not False and include_preprocessing is not None:
        x = layers.Normalization(
            mean=[255.0 * m for m in mean],
            variance=[(255.0 * s) ** 2 for s in std],
            name="normalization",
        )(x)
    return inputs, x


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
