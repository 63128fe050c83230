"""One registry of model builders: `register`, `list_models`, `build`.

In the spirit of timm's registry, with torchvision's strictness: a duplicate name raises.
"""

import fnmatch

_BUILDERS = {}


def register(name):
    """Decorator registering `builder` under `name`; a duplicate name raises ValueError."""

    def decorator(builder):
        if name in _BUILDERS:
            raise ValueError(
                f"A model named {name!r} is already registered (by {_BUILDERS[name].__module__})."
            )
        _BUILDERS[name] = builder
        return builder

    return decorator


def list_models(pattern=None):
    """Sorted names that `build` accepts, optionally filtered by a glob `pattern`.

    Example:
    >>> keras_resnets.list_models("cifar_*")
    """
    names = sorted(_BUILDERS)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def get_builder(name):
    if name not in _BUILDERS:
        raise ValueError(
            f"Unknown model name {name!r}. Valid names: {', '.join(list_models())}. "
            f"Received: name={name!r}"
        )
    return _BUILDERS[name]


def build(name, /, **kwargs):
    """Build the registered model `name` as a functional `keras.Model`.

    Keyword arguments follow `keras.applications` (`input_shape`, `classes`, `include_top`,
    `pooling`, `classifier_activation`, `name`) plus the family's own (`depth`, `shortcut`,
    `growth_rate`, ...).

    Example:
    >>> model = keras_resnets.build("cifar_resnet", depth=110)
    >>> model = keras_resnets.build("highway", depth=25)
    """
    # `name` is positional-only so that the model's own `name=` keyword reaches the builder.
    return get_builder(name)(**kwargs)
