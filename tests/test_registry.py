"""The model registry: `register`, `list_models`, `build` (STYLE.md, "Configuration is data")."""

from pathlib import Path

import pytest

import keras_resnets
from keras_resnets.models import registry


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry, so that tests can register names without leaking them."""
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    return registry


def test_register_and_build_pass_keyword_arguments(scratch_registry):
    @keras_resnets.register("toy_model")
    def toy(depth=3, **kwargs):
        return ("toy", depth, kwargs)

    assert "toy_model" in keras_resnets.list_models()
    assert keras_resnets.build("toy_model") == ("toy", 3, {})
    assert keras_resnets.build("toy_model", depth=5, classes=7) == ("toy", 5, {"classes": 7})


def test_register_returns_the_builder_unchanged(scratch_registry):
    def toy():
        return "toy"

    assert keras_resnets.register("toy_model")(toy) is toy


def test_duplicate_name_raises(scratch_registry):
    before = dict(scratch_registry._MODELS)
    with pytest.raises(ValueError, match="resnet50"):

        @keras_resnets.register("resnet50")
        def impostor(**kwargs):
            return None

    # The first registration stands.
    assert scratch_registry._MODELS == before
    assert keras_resnets.models.get_builder("resnet50") is before["resnet50"].builder


def test_duplicate_new_name_raises(scratch_registry):
    keras_resnets.register("toy_model")(lambda: 1)
    with pytest.raises(ValueError, match="toy_model"):
        keras_resnets.register("toy_model")(lambda: 2)
    assert keras_resnets.build("toy_model") == 1


def test_list_models_is_sorted_and_complete():
    names = keras_resnets.list_models()
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    # The families the package documents, each reachable by name.
    for name in (
        "resnet18",
        "resnet50",
        "resnet50_v2",
        "plain34",
        "densenet121",
        "cifar_resnet",
        "cifar_plain",
        "cifar_preact_resnet",
        "cifar_densenet",
        "cifar_densenet_bc",
        "cifar_highway",
        "resnet",
        "highway",
        "densenet",
        "plain",
    ):
        assert name in names


def test_list_models_sorts_names_registered_out_of_order(scratch_registry):
    for name in ("zz_toy", "aa_toy", "mm_toy"):
        keras_resnets.register(name)(lambda: None)
    names = keras_resnets.list_models("*_toy")
    assert names == ["aa_toy", "mm_toy", "zz_toy"]


def test_list_models_filters_with_a_glob():
    cifar = keras_resnets.list_models("cifar_*")
    assert cifar and all(name.startswith("cifar_") for name in cifar)
    assert "cifar_resnet" in cifar and "resnet50" not in cifar
    v2 = keras_resnets.list_models("resnet*_v2")
    assert "resnet50_v2" in v2 and "resnet50" not in v2
    assert all(name.endswith("_v2") for name in v2)
    # A glob, not a substring or a regular expression.
    assert keras_resnets.list_models("resnet") == ["resnet"]
    assert keras_resnets.list_models("resnet5?") == ["resnet50"]
    assert keras_resnets.list_models("no_such_model*") == []
    assert keras_resnets.list_models("*") == keras_resnets.list_models()


def test_build_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as excinfo:
        keras_resnets.build("resnet_9000")
    message = str(excinfo.value)
    assert "Received: name='resnet_9000'" in message
    for name in keras_resnets.list_models():
        assert name in message


def test_build_returns_the_builders_model():
    model = keras_resnets.build("cifar_resnet", depth=20, name="tiny")
    assert model.name == "tiny"
    assert model.input_shape == (None, 32, 32, 3)
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        # A string is never truthy for a bool argument: "False" once turned zero-init on.
        ("cifar_resnet", {"zero_init_residual": "False"}, "must be True or False, not text"),
        ("cifar_resnet", {"depth": 20.0}, "Received: depth=20.0"),
        ("densenet", {"depth": 25.0}, "Received: depth=25.0"),
        ("resnet", {"depth": 25.0}, "Received: depth=25.0"),
        ("cifar_resnet", {"classes": 0}, "`classes` must be a positive int"),
        # 0 once silently became the default k=12 (`growth_rate or 12`).
        ("cifar_densenet_bc", {"depth": 40, "growth_rate": 0}, "Received: growth_rate=0"),
        ("cifar_densenet_bc", {"depth": 40, "growth_rate": 2.5}, "Received: growth_rate=2.5"),
        ("cifar_densenet_bc", {"dropout_rate": "0.2"}, "`dropout_rate` of cifar_densenet_bc must"),
        ("resnet18", {"foo": 1}, "resnet18 takes no argument foo. Its arguments: classes"),
        ("resnet50", {"depth": 50}, "resnet50 takes no argument depth"),
    ],
)
def test_build_refuses_bad_builder_arguments_in_one_line(name, kwargs, message):
    with pytest.raises(ValueError, match=None) as excinfo:
        keras_resnets.build(name, **kwargs)
    assert message in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_build_checks_follow_the_builder_chain_defaults():
    # cifar_densenet_bc's growth_rate defaults to None ("the paper's for the depth"): None is
    # allowed and means that; the builder still gets the paper's k.
    assert keras_resnets.build("cifar_densenet_bc", depth=40, growth_rate=None).name == (
        "cifar_densenet_bc40_k12"
    )
    keywords = registry._keywords(registry.get_builder("cifar_plain"))
    assert keywords["zero_init_residual"] == (False,) and "shortcut" not in keywords


def test_user_builders_keep_the_kinds_their_defaults_do_not_say(scratch_registry):
    import dataclasses

    @dataclasses.dataclass  # a callable object that cannot be hashed (eq without frozen)
    class Builder:
        prefix: str = "b"

        def __call__(self, depth=3, width=16, flag=False):
            return (self.prefix, depth, width, flag)

    keras_resnets.register("toy_object")(Builder())
    assert keras_resnets.build("toy_object", width=1.5) == ("b", 3, 1.5, False)
    assert keras_resnets.build("toy_object", width=None, flag=True) == ("b", 3, None, True)
    with pytest.raises(ValueError, match="`flag` of toy_object must be True or False, not text"):
        keras_resnets.build("toy_object", flag="False")
    with pytest.raises(ValueError, match="toy_object takes no argument colour"):
        keras_resnets.build("toy_object", colour="red")


def test_numpy_integer_depths_build_the_same_networks():
    import numpy as np

    assert keras_resnets.build("cifar_resnet", depth=np.int64(20)).name == "cifar_resnet20"
    assert keras_resnets.build("cifar_resnet", depth=np.int32(14)).name == "cifar_resnet14"


class _Built(Exception):
    """Raised in place of building: the builder got past its own checks."""


def _outcome(function):
    try:
        function()
    except _Built:
        return "builds"
    except ValueError as error:
        return str(error)
    raise AssertionError("neither built nor refused")


# Every registered name with a depth rule, with the arguments that change which depths its
# builder takes (DenseNet's bottleneck and compression, the CIFAR ResNets' preactivation).
DEPTH_RULE_CASES = [
    ("cifar_resnet", {}),
    ("cifar_resnet", {"preactivation": True}),
    ("cifar_plain", {}),
    ("cifar_preact_resnet", {}),
    ("cifar_densenet", {}),
    ("cifar_densenet", {"bottleneck": True}),
    ("cifar_densenet", {"bottleneck": True, "compression": 0.5}),
    ("cifar_densenet_bc", {}),
    ("cifar_densenet_bc", {"compression": 1.0}),
    ("cifar_highway", {}),
    ("resnet", {}),
    ("highway", {}),
    ("densenet", {}),
    ("plain", {}),
]


def test_every_depth_rule_is_named_here():
    # Every name that takes a depth has a rule, and each rule is tested below.
    with_rules = {n for n in keras_resnets.list_models() if registry.get_info(n).depth_rule}
    with_depth = {
        n
        for n in keras_resnets.list_models()
        if "depth" in registry._keywords(registry.get_builder(n))
    }
    assert with_rules == with_depth == {name for name, _ in DEPTH_RULE_CASES}


@pytest.mark.parametrize("name, kwargs", DEPTH_RULE_CASES, ids=lambda c: str(c))
def test_depth_rules_refuse_exactly_what_their_builders_refuse(name, kwargs, monkeypatch):
    # The registry refuses a bad depth before any work (a run loads its data only after
    # this check): its rule must take the depths the builder takes, no more and no fewer,
    # with the builder's message. The builders stop where they would start building.
    from keras_resnets.models import article, densenet, highway, resnet

    def built(*args, **kwargs):
        raise _Built

    for module in (article, densenet, highway, resnet):
        monkeypatch.setattr(module, "classifier_model", built)
    info = registry.get_info(name)
    depths = [*range(-1, 120), 164, 190, 250, 1001, 1202, 20.0, "20", True, None]
    outcomes = {"builds": 0, "refused": 0}
    for depth in depths:
        ours = _outcome(lambda: _rule_then_built(info.depth_rule, depth, kwargs))
        builder = _outcome(lambda: info.builder(depth=depth, **kwargs))
        assert ours == builder, f"{name}(depth={depth!r}, {kwargs})"
        outcomes["builds" if ours == "builds" else "refused"] += 1
        if ours != "builds":
            # build() refuses it too, before the builder runs, in one line.
            assert _outcome(lambda: keras_resnets.build(name, depth=depth, **kwargs)) == ours
            assert "\n" not in ours and f"Received: depth={depth!r}" in ours
    assert outcomes["builds"] >= 3 and outcomes["refused"] >= 50, outcomes


def _rule_then_built(rule, depth, kwargs):
    rule(depth, kwargs)
    raise _Built


def test_a_name_that_is_not_text_is_refused_at_registration(scratch_registry):
    # register(5) once went through, and every later list_models() failed in its sort.
    with pytest.raises(ValueError, match=r"Received: name=5$"):
        keras_resnets.register(5)(lambda: None)
    assert "cifar_resnet" in keras_resnets.list_models()
    with pytest.raises(ValueError, match=r"Received: pattern=5$"):
        keras_resnets.list_models(5)


def test_every_public_module_is_an_attribute_after_import():
    # README: "the submodules are attributes"; `keras_resnets.utils` and `.distribute` (the
    # old names), `.plotting` and `.accounting` once raised AttributeError.
    import pkgutil

    package = Path(keras_resnets.__file__).parent
    public = {m.name for m in pkgutil.iter_modules([str(package)]) if not m.name.startswith("_")}
    assert public - {"cli", "commands"} == set(keras_resnets._SUBMODULES)
    for name in keras_resnets._SUBMODULES:
        assert getattr(keras_resnets, name).__name__ == f"keras_resnets.{name}"
