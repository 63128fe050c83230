"""keras_resnets: ResNets, HighwayNets and DenseNets for Keras 3.

>>> import keras_resnets
>>> model = keras_resnets.build("highway", depth=25)
>>> keras_resnets.list_models("cifar_*")
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512-class features.
# On an AVX2-only CPU (AMD EPYC, 2 cores) they trained ResNet-20 1.45x faster than the default
# Eigen kernels (benchmarks/README.md). An explicit TF_ENABLE_ONEDNN_OPTS is respected; this
# takes effect only when keras_resnets is imported before TensorFlow.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from keras_resnets import layers  # noqa: F401
from keras_resnets import models  # noqa: F401
# Registers the recipes' loss, so that a checkpoint compiled with it loads after
# `import keras_resnets`.
from keras_resnets import recipes  # noqa: F401
from keras_resnets.export import export_saved_model
from keras_resnets.models.registry import build, list_models, register

__all__ = [
    "build", "list_models", "register", "export_saved_model", "layers", "models", "recipes",
    "__version__",
]
