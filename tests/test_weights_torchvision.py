"""Exact transplants from torchvision: its models with random weights and randomised BN
statistics, saved as the `.pth` state dicts torchvision publishes, loaded with our converter
(`weights=<path>`, read with `torch.load(weights_only=True)`), logits compared on the same
raw pixels (torchvision's own ImageNet normalisation on its side, ours inside the model).

Needs torch and torchvision in one environment (`pip install torch==2.14.1
torchvision==0.29.1` here); skipped elsewhere. CI runs it in such an environment.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import keras_resnets  # noqa: E402

TOLERANCE = 1e-4  # of the logits' scale
MODELS = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "densenet121",
    "densenet169",
    "densenet201",
]
SLOW = {"resnet101", "resnet152", "densenet169", "densenet201"}
MEAN = np.array([0.485, 0.456, 0.406], "float32")
STD = np.array([0.229, 0.224, 0.225], "float32")


def _randomise(module, generator):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (torch.nn.BatchNorm2d,)):
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.normal_(0.0, 0.2, generator=generator)
                m.running_mean.normal_(0.0, 0.2, generator=generator)
                m.running_var.uniform_(0.5, 1.5, generator=generator)
            elif isinstance(m, torch.nn.Linear):
                m.bias.normal_(0.0, 0.2, generator=generator)


def _params(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


@pytest.mark.parametrize("name", _params(MODELS))
def test_torchvision_transplant_is_exact(name, tmp_path):
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)(weights=None).eval()
    _randomise(theirs, generator)
    path = tmp_path / f"{name}-00000000.pth"
    torch.save(theirs.state_dict(), path)

    # A torchvision file brings torchvision's layout (stride_in_1x1=False for the ResNets)
    # and preprocessing, as the registry declares them.
    ours = keras_resnets.build(
        name, weights=str(path), input_shape=(None, None, 3), classifier_activation=None
    )
    rng = np.random.default_rng(0)
    for size in (224, 193):
        x = rng.uniform(0, 255, (2, size, size, 3)).astype("float32")
        with torch.no_grad():
            tensor = torch.from_numpy(((x / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2).copy())
            expected = theirs(tensor).numpy()
        got = ours.predict(x, verbose=0)
        error = float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))
        print(f"{name} torchvision {size}px: max |diff| / max |logit| = {error:.2e}")
        assert error <= TOLERANCE, (size, error)


def test_old_densenet_keys_are_renamed_as_torchvision_does(tmp_path):
    """torchvision's published DenseNet files predate '.'-free module names
    ("denselayer1.norm.1.weight"); torchvision renames them on load, and so do we."""
    theirs = torchvision.models.densenet121(weights=None).eval()
    _randomise(theirs, torch.Generator().manual_seed(1))
    old = {}
    for key, value in theirs.state_dict().items():
        for part in ("norm1", "norm2", "conv1", "conv2", "relu1", "relu2"):
            key = (
                key.replace(
                    f"denselayer{key.split('denselayer')[1].split('.')[0]}.{part}.",
                    f"denselayer{key.split('denselayer')[1].split('.')[0]}.{part[:-1]}.{part[-1]}.",
                )
                if "denselayer" in key
                else key
            )
        old[key] = value
    assert any(".norm.1." in k for k in old)
    path = tmp_path / "densenet121-a639ec97.pth"
    torch.save(old, path)
    ours = keras_resnets.build(
        "densenet121", weights=str(path), input_shape=(64, 64, 3), classifier_activation=None
    )
    x = np.random.default_rng(2).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    with torch.no_grad():
        expected = theirs(
            torch.from_numpy(((x / 255 - MEAN) / STD).transpose(0, 3, 1, 2).astype("float32"))
        ).numpy()
    got = ours.predict(x, verbose=0)
    assert np.max(np.abs(got - expected)) / np.max(np.abs(expected)) <= TOLERANCE


def test_timm_style_safetensors_load_through_the_same_converter(tmp_path):
    """timm's ResNets keep torchvision's names; its checkpoints are safetensors files."""
    safetensors_torch = pytest.importorskip("safetensors.torch")
    theirs = torchvision.models.resnet18(weights=None).eval()
    _randomise(theirs, torch.Generator().manual_seed(3))
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(theirs.state_dict(), str(path))
    ours = keras_resnets.build(
        "resnet18",
        weights=str(path),
        input_shape=(64, 64, 3),
        classifier_activation=None,
        stride_in_1x1=False,
    )
    x = np.random.default_rng(4).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    with torch.no_grad():
        expected = theirs(
            torch.from_numpy(((x / 255 - MEAN) / STD).transpose(0, 3, 1, 2).astype("float32"))
        ).numpy()
    got = ours.predict(x, verbose=0)
    assert np.max(np.abs(got - expected)) / np.max(np.abs(expected)) <= TOLERANCE
