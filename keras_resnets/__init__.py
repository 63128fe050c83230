"""keras_resnets: ResNets, HighwayNets and DenseNets for Keras 3.

>>> import keras_resnets
>>> model = keras_resnets.build("highway", depth=25)
>>> keras_resnets.list_models("cifar_*")
"""

__version__ = "0.1.0"

from keras_resnets import layers  # noqa: F401
from keras_resnets import models  # noqa: F401
from keras_resnets.models.registry import build, list_models, register

__all__ = ["build", "list_models", "register", "layers", "models", "__version__"]
