"""The article's units and the papers' blocks, as Keras layers."""

from keras_resnets.layers.batch_norm import BatchNormalization
from keras_resnets.layers.dense import DenseBlock, TransitionLayer
from keras_resnets.layers.highway import HighwayUnit
from keras_resnets.layers.padding import Conv2D, MaxPooling2D
from keras_resnets.layers.res_unit import ResUnit

__all__ = [
    "BatchNormalization",
    "Conv2D",
    "MaxPooling2D",
    "ResUnit",
    "HighwayUnit",
    "DenseBlock",
    "TransitionLayer",
]
