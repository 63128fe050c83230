"""Pretrained weights: `build(name, weights="imagenet" | "cifar10" | <path>)`.

keras.applications' semantics: `include_top=False` loads the backbone, `classes` must be the
weights' with a top, and the model's `Normalization` becomes the preprocessing the weights
were trained with, so the model still takes raw 0-255 RGB pixels. What is available for each
model is declared in the registry beside its builder (`registry.Weights`).

A checkpoint is first turned into `{our variable path: array}` by a converter
(`convert.py`), then assigned path by path: every variable of the model must get exactly
one value of its shape, and every value must find its variable, or the load fails with the
names that did not fit.
"""

import inspect
import os
import re
import warnings

import numpy as np

from keras_resnets.weights import convert, files
from keras_resnets.weights.convert import ConversionError
from keras_resnets.weights.files import WeightsError

__all__ = ["build_with_weights", "load", "select", "ConversionError", "WeightsError"]

TAGS = ("imagenet", "cifar10")


def _describe(entry):
    layout = ", ".join(f"{k}={v!r}" for k, v in entry.layout.items())
    return f"{entry.tag} {entry.name} ({layout or 'default layout'}, top-1 {entry.top1:.2f}%)"


def select(info, tag, kwargs, *, catalogue=()):
    """The most accurate `tag` weights of `info` whose layout fits the requested `kwargs`.

    `catalogue`: every registered `ModelInfo` (the registry passes them; this package does
    not import the models), to name those that have `tag` weights when `info` has none."""
    available = [w for w in info.weights if w.tag == tag]
    if not available:
        having = sorted(i.name for i in catalogue if any(w.tag == tag for w in i.weights))
        raise ValueError(
            f"{info.name} has no {tag!r} weights. Models with {tag!r} weights: "
            f"{', '.join(having) or 'none'}. Received: weights={tag!r}"
        )
    requested = {**_defaults(info.builder), **kwargs}
    # A layout argument left at None ("the family's default") fits any weights.
    fits = [
        w
        for w in available
        if all(requested.get(k) is None or requested[k] == v for k, v in w.layout.items())
    ]
    if not fits:
        # The layout asked for, defaults named as such: `build("cifar_highway",
        # weights="cifar10")` asks for the builder's default depth without saying so.
        asked = [
            f"{k}={requested.get(k)!r}" + ("" if k in kwargs else " (the default)")
            for k in dict.fromkeys(k for w in available for k in w.layout)
        ]
        raise ValueError(
            f"No {tag!r} weights of {info.name} fit the requested {', '.join(asked)}. "
            f"Available: {'; '.join(_describe(w) for w in available)}"
        )
    return max(fits, key=lambda w: w.top1)


def _defaults(builder):
    """The builder's own defaults (e.g. `depth=20`), so that weights for another depth are
    not picked when the depth is left out."""
    return {
        name: p.default
        for name, p in inspect.signature(builder).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def build_with_weights(info, weights, kwargs, *, catalogue=()):
    """`registry.build` with `weights` given: build the layout they need, then load them."""
    kwargs = dict(kwargs)
    include_top = kwargs.get("include_top", True)
    if isinstance(weights, str) and weights in TAGS:
        entry = select(info, weights, kwargs, catalogue=catalogue)
        classes = entry.meta.get("classes", 1000 if entry.tag == "imagenet" else 10)
        if include_top and kwargs.get("classes", classes) != classes:
            raise ValueError(
                f"With weights={weights!r} and include_top=True, `classes` must be {classes}, "
                f"the weights' classifier. Received: classes={kwargs['classes']!r}"
            )
        kwargs = {**entry.layout, **kwargs}
        if _is_true(kwargs.get("include_preprocessing", True)):
            kwargs["include_preprocessing"] = (entry.mean, entry.std)
        model = info.builder(**kwargs)
        load(
            model,
            files.fetch(entry),
            format=entry.format,
            full_model=lambda: info.builder(**{**kwargs, "include_top": True}),
        )
        return model
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"`weights` must be None, one of {list(TAGS)} or the path of a checkpoint. "
            f"Received: weights={weights!r}"
        )
    path = os.fspath(weights)
    if not os.path.exists(path):
        raise ValueError(
            f"`weights` is neither one of {list(TAGS)} nor an existing file. "
            f"Received: weights={path!r}"
        )
    fmt = files.format_of(path)
    # A checkpoint in a publisher's format takes that publisher's layout and preprocessing,
    # as the registry declares them (torchvision's ResNets stride the 3x3; keras.applications'
    # ResNets are Caffe's, BGR and mean-subtracted), unless the caller says otherwise.
    published = [w for w in info.weights if w.format == fmt.replace("safetensors", "torchvision")]
    if published:
        kwargs = {**published[0].layout, **kwargs}
        if _is_true(kwargs.get("include_preprocessing", True)):
            kwargs["include_preprocessing"] = (published[0].mean, published[0].std)
    model = info.builder(**kwargs)
    load(
        model, path, format=fmt, full_model=lambda: info.builder(**{**kwargs, "include_top": True})
    )
    return model


def read_state(path, format, full_model=None, *, skip_top=False):
    """The checkpoint at `path` as `{our variable path: array}`; `full_model()` builds the
    model a `.weights.h5` was saved from (ours load through Keras, into that model), and
    `skip_top` leaves the classifier out of the result (and, in our `.weights.h5`, unread,
    whatever its number of classes)."""
    state = _read_state(path, format, full_model, skip_top=skip_top)
    if skip_top:
        state = {p: v for p, v in state.items() if not p.startswith(TOP_PREFIXES)}
    return state


def _read_state(path, format, full_model, *, skip_top):
    if format == "torchvision":
        state = convert.from_torchvision(files.read_torch(path))
    elif format == "safetensors":
        state = convert.from_torchvision(files.read_safetensors(path))
    elif format == "keras_applications":
        layers = files.read_legacy_h5(path)
        densenet = any(name.replace("/", "_").startswith("pool2_") for name in layers)
        state = convert.from_keras_applications(layers, densenet=densenet)
    elif format == "keras":
        state = _read_keras_weights(path, full_model, skip_top=skip_top)
    else:
        raise WeightsError(f"Unknown weights format {format!r}.")
    return state


def _read_keras_weights(path, full_model, *, skip_top=False):
    """Our own `.weights.h5`, saved from a whole model (with its top): loaded into a twin
    of that model, whose variables then give the values by path. With `skip_top`, Keras's
    `objects_to_skip` leaves the twin's classifier layers out, so a backbone loads from a
    file whose classifier has other `classes` than the twin's."""
    import keras

    twin = full_model()
    skip = None
    if skip_top:
        skip = [
            layer
            for layer in twin.layers
            if any(w.path.startswith(TOP_PREFIXES) for w in layer.weights)
        ]
    try:
        with warnings.catch_warnings():
            # On a file that does not fit, Keras also walks the functional model's
            # `_operations_by_depth` containers, which the file does not hold, and warns that
            # they keep fresh weights before the error we raise below says what is wrong.
            warnings.filterwarnings("ignore", "Skipping nested container", UserWarning)
            with files.reading(path, "keras"):
                twin.load_weights(path, objects_to_skip=skip)
    except ValueError as error:
        if isinstance(error, WeightsError):
            raise
        raise WeightsError(f"{path} does not fit {twin.name}: {_one_line(error)}") from None
    return {w.path: keras.ops.convert_to_numpy(w) for w in twin.weights}


def _one_line(error):
    """Keras's load error in one line: its count of objects that could not be loaded and the
    first shape mismatch, without the dump of weight values and layer lists that follows."""
    text = " ".join(str(error).split())
    summary = text.split(" Example error message", 1)[0]
    layer = re.search(r"for object <(\w+) name=([^,>]+)[^>]*>: (.*)", text)
    mismatch = re.search(r"variable\.shape=\([^)]*\), Received: value\.shape=\([^)]*\)", text)
    where = f" in {layer.group(2)} ({layer.group(1)})" if layer else ""
    if mismatch:
        summary += f" First mismatch{where}: {mismatch.group(0)}."
    elif layer:  # e.g. "Layer 'shortcut_bn' expected 4 variables, but received 0"
        summary += f" First{where}: {layer.group(3).split('. ')[0].rstrip('.')}."
    return summary if len(summary) <= 300 else summary[:297] + "..."


# The classifier's variables, which a model without its top leaves out: the `predictions`
# dense layer, or a head of the network's own (the article's `top` conv and BN).
TOP_PREFIXES = ("predictions/", "top_")


def _is_true(value):
    """True itself, NumPy's included (not a (mean, std) pair, which is also truthy)."""
    return isinstance(value, (bool, np.bool_)) and bool(value)


def load(model, path, *, format=None, full_model=None):
    """Load the checkpoint at `path` into `model`, path by path (see the module docstring).

    A model without its top (`include_top=False`) takes the backbone and leaves the
    checkpoint's classifier out; anything else that does not fit raises ConversionError.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise WeightsError(f"No checkpoint file at `path`. Received: path={path!r}")
    format = format or files.format_of(path)
    if full_model is None:
        full_model = lambda: model.__class__.from_config(model.get_config())  # noqa: E731
    variables = {w.path: w for w in model.weights}
    has_top = any(p.startswith(TOP_PREFIXES) for p in variables)
    state = read_state(path, format, full_model, skip_top=not has_top)
    missing = sorted(set(variables) - set(state))
    unexpected = sorted(set(state) - set(variables))
    if missing or unexpected:
        raise ConversionError(
            f"{os.path.basename(path)} does not fit {model.name}: "
            f"{len(missing)} of its variables get no value (e.g. {missing[:3]}), "
            f"{len(unexpected)} values find no variable (e.g. {unexpected[:3]})."
        )
    wrong = [
        f"{p}: {tuple(state[p].shape)} for {tuple(v.shape)}"
        for p, v in variables.items()
        if tuple(state[p].shape) != tuple(v.shape)
    ]
    if wrong:
        raise ConversionError(
            f"{os.path.basename(path)} does not fit {model.name}: {len(wrong)} shapes differ, "
            f"e.g. {wrong[:3]}"
        )
    for p, v in variables.items():
        v.assign(np.asarray(state[p], dtype=v.dtype))
    return model
