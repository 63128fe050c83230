"""keras_resnets: ResNets, HighwayNets and DenseNets for Keras 3.

>>> import keras_resnets
>>> model = keras_resnets.build("highway", depth=25)
>>> keras_resnets.list_models("cifar_*")
>>> summary = keras_resnets.train.train("cifar_resnet", model_kwargs={"depth": 20})
"""

__version__ = "0.1.0"

import importlib as _importlib
import importlib.abc as _importlib_abc
import sys as _sys

# Importing keras_resnets changes no setting: TensorFlow's oneDNN kernels (faster on AVX2-only
# CPUs, where TensorFlow leaves them off) are the CLI's `--onednn` and
# `keras_resnets.machine.enable_onednn()`; see keras_resnets/machine.py.

# Everything is loaded on first use (PEP 562), so that `import keras_resnets`, and with it the
# CLI's --help, `list` and argument errors, does not import Keras and TensorFlow (10-25 s).
# Every public module, each an attribute on first use (README: "the submodules are
# attributes"); tests/test_registry.py checks that none is missing.
_SUBMODULES = (
    "accounting",
    "data",
    "distribute",
    "evaluation",
    "export",
    "layers",
    "machine",
    "model_table",
    "models",
    "plotting",
    "recipes",
    "train",
    "training",
    "utils",
    "weights",
)
_NAMES = {
    "build": "keras_resnets.models",
    "list_models": "keras_resnets.models",
    "register": "keras_resnets.models",
    "export_saved_model": "keras_resnets.export",
}

__all__ = [
    "build",
    "list_models",
    "register",
    "export_saved_model",
    "layers",
    "models",
    "recipes",
    "train",
    "data",
    "__version__",
]


def __getattr__(name):
    if name in _NAMES:
        return getattr(_importlib.import_module(_NAMES[name]), name)
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _register_keras_objects():
    # The layers (through the models) and the recipes' loss register their names with Keras,
    # so that a `.keras` file of a keras_resnets model loads after `import keras_resnets`.
    _importlib.import_module("keras_resnets.models")
    _importlib.import_module("keras_resnets.recipes")


class _RegisterWhenKerasIsImported(_importlib_abc.MetaPathFinder):
    """Registers the Keras objects as soon as Keras is imported, whoever imports it.

    Keras is imported after `import keras_resnets` when the package is imported first, so
    the registration cannot happen here. It waits for the end of any keras_resnets module
    being executed at the time: registering from the middle of, say, `keras_resnets.layers`
    would import the models from a half-initialised package.
    """

    def __init__(self):
        self.executing = 0  # keras_resnets modules being executed, nested
        self.keras_imported = False

    def find_spec(self, name, path=None, target=None):
        if name != "keras" and not name.startswith("keras_resnets."):
            return None
        spec = None
        for finder in _sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module  # the loader is this module's own instance

        def exec_then_register(module):
            self.executing += 1
            try:
                exec_module(module)
            finally:
                self.executing -= 1
            self.keras_imported |= name == "keras"
            if self.keras_imported and not self.executing:
                self.remove()
                _register_keras_objects()

        spec.loader.exec_module = exec_then_register
        return spec

    def remove(self):
        if self in _sys.meta_path:
            _sys.meta_path.remove(self)


if "keras" in _sys.modules:  # Keras, and its backend, are there already: register now.
    _register_keras_objects()
else:
    _sys.meta_path.insert(0, _RegisterWhenKerasIsImported())
