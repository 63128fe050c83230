"""The model registry: `register`, `list_models`, `build` (STYLE.md, "Configuration is data")."""

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
