"""One registry of model builders and the facts about each model.

In the spirit of timm's registry (a per-model config beside the builder) and torchvision's
`Weights.meta`, with torchvision's strictness: a duplicate name raises. `register` declares,
once and beside the builder, what the model table, the tests and the benchmarks need to know
(dataset, default input shape, classes, preprocessing, depth table, available weights);
they read it from here instead of guessing from name patterns.
"""

import ast
import dataclasses
import fnmatch
import functools
import inspect
import numbers
import textwrap
from typing import Callable, Optional

from keras_resnets.data import datasets as _datasets
from keras_resnets.data.datasets import (  # noqa: F401 (the dataset facts live in the data room)
    CAFFE_MEAN,
    CAFFE_STD,
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
)

DATASETS = {
    # name: (input shape, classes, mean, std), from keras_resnets.data.datasets
    name: (d.image_shape, d.num_classes, d.mean, d.std)
    for name, d in _datasets.DATASETS.items()
}


@dataclasses.dataclass(frozen=True)
class Weights:
    """One published (or shipped) set of weights for a model.

    Attributes:
        tag: what `build(name, weights=tag)` asks for: "imagenet" or "cifar10".
        name: a short name for this set, e.g. "torchvision_v2".
        url: where `keras.utils.get_file` downloads it (a `file://` URL works too).
        file_hash: the publisher's hash: a full SHA-256 or MD5 (keras.applications), or the
            SHA-256 prefix in the file name (torchvision's convention).
        format: "torchvision" (a `.pth` state dict), "keras_applications" (a legacy `.h5`)
            or "keras" (our own `.weights.h5`).
        top1: the publisher's top-1 accuracy, in percent, on the tag's test set.
        license: the weights' licence.
        source: who published them, in words.
        mean, std: the preprocessing the weights were trained with, RGB, [0, 1] units; the
            model's `Normalization` becomes it.
        layout: builder arguments the weights need, e.g. `{"stride_in_1x1": False}`.
        meta: anything else worth recording (for our own: recipe, epochs, seed, ...).
    """

    tag: str
    name: str
    url: str
    file_hash: str
    format: str
    top1: float
    license: str
    source: str
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    layout: dict = dataclasses.field(default_factory=dict)
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def file_name(self):
        return self.url.rsplit("/", 1)[-1]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """The facts about one registered name."""

    name: str
    builder: Callable
    dataset: Optional[str] = None
    depths: Optional[tuple] = None
    weights: tuple = ()
    configs: tuple = ()
    depth_rule: Optional[Callable] = None

    @property
    def table_configs(self):
        """The builder arguments of the model table's rows: the declared `configs`, else
        one row per depth of the table, else the defaults."""
        if self.configs:
            return self.configs
        if self.depths:
            return tuple({"depth": d} for d in self.depths)
        return ({},)

    @property
    def input_shape(self):
        return DATASETS[self.dataset][0] if self.dataset else None

    @property
    def classes(self):
        return DATASETS[self.dataset][1] if self.dataset else None

    @property
    def mean(self):
        return DATASETS[self.dataset][2] if self.dataset else None

    @property
    def std(self):
        return DATASETS[self.dataset][3] if self.dataset else None


def shipped_weights(model, manifest=None):
    """The `Weights` of `model` shipped inside the package (`keras_resnets/weights/cifar10/`,
    written by `python -m keras_resnets.weights.ship`), read from its manifest."""
    import json
    import os

    manifest = manifest or os.path.join(
        os.path.dirname(os.path.dirname(__file__)), "weights", "cifar10", "manifest.json"
    )
    if not os.path.exists(manifest):
        return ()
    with open(manifest) as f:
        entries = json.load(f)
    return tuple(
        Weights(
            tag="cifar10",
            name=key,
            url=f"package:cifar10/{entry['file']}",
            file_hash=entry["sha256"],
            format="keras",
            top1=entry["test_accuracy"],
            license="Apache-2.0",
            source=f"keras_resnets, trained with the {entry['recipe']!r} recipe",
            mean=CIFAR10_MEAN,
            std=CIFAR10_STD,
            layout=dict(entry["model_kwargs"]),
            meta={**entry, "classes": 10},
        )
        for key, entry in sorted(entries.items())
        if entry["model"] == model
    )


_MODELS = {}


def register(name, *, dataset=None, depths=None, weights=(), configs=(), depth_rule=None):
    """Decorator registering `builder` under `name` with its facts; a duplicate raises.

    Args:
        name: the name `build` accepts.
        dataset: "cifar10" or "imagenet": default input shape, classes and preprocessing.
            None for a model that declares none (a user's own builder).
        depths: the family's depth table (a mapping or sequence of valid depths), for
            depth-parametrised families; None for names that fix their depth.
        weights: the `Weights` available for it.
        configs: builder-argument dicts for the model table's rows, where one row per
            depth does not say enough (e.g. DenseNet's depth and growth rate pairs).
        depth_rule: `rule(depth, kwargs)`, raising the builder's own ValueError for a depth
            it would refuse (with the builder's other arguments `kwargs`), so that a bad
            depth is refused before any work, as `check_builder_arguments` does; the builder
            still checks it too.
    """
    if not isinstance(name, str) or not name:
        # A name of another kind would break list_models()'s sort for every later caller.
        raise ValueError(f"A model's name must be a non-empty string. Received: name={name!r}")
    if dataset is not None and dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}. Valid: {sorted(DATASETS)}")

    def decorator(builder):
        if name in _MODELS:
            raise ValueError(
                f"A model named {name!r} is already registered "
                f"(by {_MODELS[name].builder.__module__})."
            )
        _MODELS[name] = ModelInfo(
            name=name,
            builder=builder,
            dataset=dataset,
            depths=tuple(sorted(depths)) if depths is not None else None,
            weights=tuple(weights),
            configs=tuple(configs),
            depth_rule=depth_rule,
        )
        return builder

    return decorator


def list_models(pattern=None):
    """Sorted names that `build` accepts, optionally filtered by a glob `pattern`.

    Example:
    >>> keras_resnets.list_models("cifar_*")
    """
    names = sorted(_MODELS)
    if pattern is not None and not isinstance(pattern, str):
        raise ValueError(f"`pattern` must be a glob string. Received: pattern={pattern!r}")
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def get_info(name):
    """The `ModelInfo` of a registered name; an unknown name raises ValueError."""
    if name not in _MODELS:
        raise ValueError(
            f"Unknown model name {name!r}. Valid names: {', '.join(list_models())}. "
            f"Received: name={name!r}"
        )
    return _MODELS[name]


def get_builder(name):
    return get_info(name).builder


def builder_arguments(model):
    """The keyword arguments that the registered builder `model` accepts, following its
    `**kwargs` into the builder it passes them to (`cifar_resnet` -> `cifar_resnet_family`);
    None where they cannot be told (no source to read)."""
    keywords = _keywords(get_builder(model))
    return None if keywords is None else set(keywords)


# Counts that a builder needs above 0: 0 or -1 never means "the default".
_POSITIVE = ("growth_rate",)
# Checked by the builders themselves, with the family's valid depths in the message.
_BUILDERS_OWN = ("depth", "classes")


def check_builder_arguments(model, kwargs):
    """Refuse, in one line, a builder argument that `model` does not take, or a value of the
    wrong kind for it: the kind is its default's along the builder chain (a bool default
    takes no text, so the string "False" is never truthy; for the package's builders, an
    int default takes only an integer, not 2.5, and `growth_rate` must be positive).
    `depth` is checked by the family's registered `depth_rule`, with the builder's own
    message (it names the family's depths); `classes`, and arguments whose defaults are None
    or cannot be read, are left to the builder."""
    info = get_info(model)
    builder = info.builder
    keywords = _keywords(builder)
    if keywords is None:
        return
    # A user's builder: its defaults need not say every kind an argument takes (a width of
    # 16 may also take 1.5), so only text for a bool is refused there.
    ours = getattr(builder, "__module__", "").startswith("keras_resnets.")
    unknown = sorted(set(kwargs) - set(keywords))
    if unknown:
        received = ", ".join(f"{k}={kwargs[k]!r}" for k in unknown)
        raise ValueError(
            f"{model} takes no argument {', '.join(unknown)}. Its arguments: "
            f"{', '.join(sorted(keywords))}. Received: {received}"
        )
    for key, value in kwargs.items():
        if key in _BUILDERS_OWN:
            continue
        defaults = [d for d in keywords[key] if d is not inspect.Parameter.empty]
        if value is None and None in defaults:
            continue
        kinds = {type(d) for d in defaults if d is not None}
        if not ours:
            kinds &= {bool}
        if bool in kinds:
            # Not only bools: `include_preprocessing` also takes (mean, std). Text never.
            wanted, ok = "True or False, not text", not isinstance(value, str)
        elif int in kinds or (ours and key in _POSITIVE):
            positive = key in _POSITIVE
            wanted = "a positive integer" if positive else "an integer"
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            ok = ok and (value > 0 or not positive)
        elif float in kinds:
            wanted = "a number"
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        else:
            continue
        if not ok:
            raise ValueError(f"`{key}` of {model} must be {wanted}. Received: {key}={value!r}")
    if info.depth_rule is not None and "depth" in keywords:
        depth = kwargs.get("depth", keywords["depth"][0])
        if depth is not inspect.Parameter.empty:
            info.depth_rule(depth, kwargs)


def _keywords(function):
    """{keyword: (default, ...)} of what `function` accepts, with the default it has at each
    level of the chain that takes it (`inspect.Parameter.empty` where none); None where the
    chain cannot be read. Cached, except for builders that cannot be hashed (a user's
    callable object)."""
    try:
        hash(function)
    except TypeError:
        return _read_keywords(function)
    return _cached_keywords(function)


def _read_keywords(function):
    parameters = inspect.signature(function).parameters.values()
    keywords = {
        p.name: (p.default,)
        for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    var_keyword = next((p.name for p in parameters if p.kind is p.VAR_KEYWORD), None)
    if var_keyword is None:
        return keywords
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None
    closure = inspect.getclosurevars(function)
    scope = {**closure.globals, **closure.nonlocals}
    forwarded = False
    for node in ast.walk(tree.body[0]):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        # `kwargs.pop("compression", 0.5)`: a keyword the builder takes out of **kwargs.
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == var_keyword
            and func.attr in ("pop", "get")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            default = node.args[1] if len(node.args) > 1 else None
            default = (
                default.value if isinstance(default, ast.Constant) else inspect.Parameter.empty
            )
            name = node.args[0].value
            keywords[name] = keywords.get(name, ()) + (default,)
        # `family(depth, shortcut="none", **kwargs)`: what `family` takes, less what is set.
        if not any(
            k.arg is None and isinstance(k.value, ast.Name) and k.value.id == var_keyword
            for k in node.keywords
        ):
            continue
        forwarded = True
        callee = scope.get(func.id) if isinstance(func, ast.Name) else None
        inner = _keywords(callee) if callable(callee) else None
        if inner is None:
            return None
        positional = [
            p.name
            for p in inspect.signature(callee).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        taken = {k.arg for k in node.keywords if k.arg} | set(positional[: len(node.args)])
        for name, defaults in inner.items():
            if name not in taken:
                keywords[name] = keywords.get(name, ()) + defaults
    # `**kwargs` used some other way than passed on: what it takes cannot be told.
    return keywords if forwarded else None


_cached_keywords = functools.cache(_read_keywords)


def build(name, /, *, weights=None, **kwargs):
    """Build the registered model `name` as a functional `keras.Model`.

    Keyword arguments follow `keras.applications` (`input_shape`, `classes`, `include_top`,
    `pooling`, `classifier_activation`, `name`, and `weights`) plus the family's own
    (`depth`, `shortcut`, `growth_rate`, ...).

    Args:
        weights: None (random initialisation), "imagenet" or "cifar10" (the most accurate
            published weights for that dataset that fit the requested layout, downloaded
            into the Keras cache, or shipped with the package), or the path of a checkpoint
            (`.pth` from torchvision, `.h5` from keras.applications, our `.weights.h5`).
            With weights, `include_top=False` loads the backbone, and `classes` must be the
            weights' with a top. See `keras_resnets.weights`.

    Example:
    >>> model = keras_resnets.build("cifar_resnet", depth=110)
    >>> model = keras_resnets.build("resnet50", weights="imagenet")
    """
    # `name` is positional-only so that the model's own `name=` keyword reaches the builder.
    info = get_info(name)
    check_builder_arguments(name, kwargs)
    if weights is None:
        return info.builder(**kwargs)
    from keras_resnets import weights as weights_lib  # the loaders need h5py, maybe torch

    return weights_lib.build_with_weights(info, weights, kwargs, catalogue=tuple(_MODELS.values()))
