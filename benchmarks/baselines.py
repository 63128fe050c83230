"""The peers each keras_resnets model is measured against, and how each side is built.

A "contender" is one model on one framework with the two step functions the harness times:
a training step (forward, loss, backward, SGD-with-momentum update) and an inference step.
Every contender of a group gets the same batch, input size and classes.

Peers:
    keras_plain: a straightforward `keras.layers` CIFAR ResNet (functional API, Conv2D /
        BatchNormalization / ReLU / add), written here as the baseline for the CIFAR nets.
    keras_app:   `keras.applications` (ResNet50/101/152, ResNet50V2/101V2/152V2,
        DenseNet121/169/201) built with `weights=None`.
    torch:       torchvision's model of the same architecture (when torchvision imports), or
        for the CIFAR ResNets the plain PyTorch implementation below (when torch imports);
        eager mode, channels_last.
    unfused:     for the HighwayNets, our model with `HighwayUnit(fused=False)`: the gate's
        mix as separate TensorFlow ops instead of one XLA kernel.
"""

import re
import warnings

import keras
import numpy as np

from keras_resnets.models import _common
from keras_resnets.models.registry import build, list_models

# Ours -> keras.applications class name.
KERAS_APPLICATIONS = {
    "resnet50": "ResNet50",
    "resnet101": "ResNet101",
    "resnet152": "ResNet152",
    "resnet50_v2": "ResNet50V2",
    "resnet101_v2": "ResNet101V2",
    "resnet152_v2": "ResNet152V2",
    "densenet121": "DenseNet121",
    "densenet169": "DenseNet169",
    "densenet201": "DenseNet201",
}
# Ours -> torchvision.models function name (torchvision has no pre-activation ResNets).
TORCHVISION = {
    "resnet18": "resnet18",
    "resnet34": "resnet34",
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "resnet152": "resnet152",
    "densenet121": "densenet121",
    "densenet169": "densenet169",
    "densenet201": "densenet201",
}


def parse_model(spec):
    """`"resnet50"` or `"cifar_resnet20"` -> (registry name, builder kwargs).

    A registered name builds as it is; a registered name followed by digits is that family
    at that depth (`cifar_resnet20`, `cifar_densenet_bc100`).
    """
    names = list_models()
    if spec in names:
        return spec, {}
    match = re.fullmatch(r"(.+?)(\d+)", spec)
    if match and match.group(1) in names:
        return match.group(1), {"depth": int(match.group(2))}
    raise ValueError(
        f"Unknown model {spec!r}: use a registered name ({', '.join(names)}) or a family "
        f"followed by its depth (e.g. cifar_resnet20). Received: {spec!r}"
    )


def cifar_depth(spec):
    """The depth of a CIFAR ResNet spec, or None when `spec` is not one."""
    name, kwargs = parse_model(spec)
    if name == "cifar_resnet":
        return kwargs.get("depth", 20)
    return None


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def torchvision_available():
    try:
        import torchvision  # noqa: F401
    except Exception:  # PyPI's torchvision beside a mismatched torch raises RuntimeError
        return False
    return True


def peers_for(spec):
    """The peers that exist for `spec` in this environment, in report order."""
    peers = []
    name, _ = parse_model(spec)
    if cifar_depth(spec) is not None:
        peers.append("keras_plain")
    if name in KERAS_APPLICATIONS:
        peers.append("keras_app")
    if name in HIGHWAY_MODELS:
        peers.append("unfused")
    if cifar_depth(spec) is not None and torch_available():
        peers.append("torch")
    elif name in TORCHVISION and torchvision_available():
        peers.append("torch")
    return peers


# --- Keras side ---------------------------------------------------------------------------


def plain_keras_cifar_resnet(depth=20, *, shortcut="B", input_shape=(32, 32, 3), classes=10):
    """He et al. 2015's CIFAR ResNet written the straightforward way with `keras.layers`.

    Same normalisation of raw pixels as keras_resnets (a Normalization layer with the CIFAR-10
    statistics), the same BN epsilon/momentum, and shortcut "B" (1x1 projection where the
    shape changes) or "A" (subsample and zero-pad).
    """
    layers = keras.layers
    n = (depth - 2) // 6
    bn = dict(epsilon=1e-5, momentum=0.9)
    conv = dict(padding="same", use_bias=False, kernel_initializer="he_normal")
    inputs = keras.Input(input_shape)
    x = layers.Normalization(
        mean=[255.0 * m for m in _common.CIFAR10_MEAN],
        variance=[(255.0 * s) ** 2 for s in _common.CIFAR10_STD],
    )(inputs)
    x = layers.Conv2D(16, 3, **conv)(x)
    x = layers.ReLU()(layers.BatchNormalization(**bn)(x))
    for stage, width in enumerate((16, 32, 64)):
        for unit in range(n):
            strides = 2 if stage > 0 and unit == 0 else 1
            y = layers.Conv2D(width, 3, strides=strides, **conv)(x)
            y = layers.ReLU()(layers.BatchNormalization(**bn)(y))
            y = layers.Conv2D(width, 3, **conv)(y)
            y = layers.BatchNormalization(**bn)(y)
            s = x
            if strides != 1 or x.shape[-1] != width:
                if shortcut == "B":
                    s = layers.Conv2D(width, 1, strides=strides, **conv)(x)
                    s = layers.BatchNormalization(**bn)(s)
                else:
                    pad = width - x.shape[-1]
                    s = layers.Lambda(
                        lambda t, p=pad: keras.ops.pad(
                            t[:, ::2, ::2, :], [[0, 0], [0, 0], [0, 0], [p // 2, p - p // 2]]
                        )
                    )(x)
            x = layers.ReLU()(layers.add([y, s]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=f"keras_plain_resnet{depth}")


def keras_application(spec, *, input_shape, classes):
    name, _ = parse_model(spec)
    constructor = getattr(keras.applications, KERAS_APPLICATIONS[name])
    return constructor(weights=None, input_shape=input_shape, classes=classes)


# Models built of HighwayUnits, whose gate the "unfused" peer computes with plain ops.
HIGHWAY_MODELS = ("highway", "cifar_highway")


def unfused(model):
    """`model` with every HighwayUnit's `fused=False`: the gate's mix as separate TF ops."""
    from keras_resnets.layers import HighwayUnit

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, HighwayUnit):
            config["fused"] = False
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone)


def ours(spec, *, input_shape, classes, shortcut=None, **kwargs):
    name, model_kwargs = parse_model(spec)
    if shortcut is not None and name == "cifar_resnet":
        model_kwargs["shortcut"] = shortcut
    model_kwargs.update(kwargs)
    return build(name, input_shape=input_shape, classes=classes, **model_kwargs)


class KerasContender:
    """A compiled Keras model with `train_step()` and `infer_step()` on one fixed batch."""

    framework = "keras"

    def __init__(self, label, model, *, batch_size, jit_compile="auto", seed=0):
        import keras

        self.label = label
        self.model = model
        self.model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            jit_compile=jit_compile,
        )
        rng = np.random.default_rng(seed)
        shape = (batch_size,) + tuple(model.input_shape[1:])
        classes = model.output_shape[-1]
        # Device-resident tensors, so that no host-to-device copy is timed.
        self.x = keras.ops.convert_to_tensor(rng.uniform(0, 255, shape).astype("float32"))
        self.y = keras.ops.convert_to_tensor(rng.integers(0, classes, batch_size).astype("int32"))

    def train_step(self):
        # train_on_batch returns the loss as a host value, so the step has finished.
        self.model.train_on_batch(self.x, self.y)

    def infer_step(self):
        self.model.predict_on_batch(self.x)


# --- PyTorch side --------------------------------------------------------------------------


def torch_cifar_resnet(depth=20, *, shortcut="B", classes=10):
    """The same CIFAR ResNet in plain PyTorch (nn.Conv2d / BatchNorm2d / ReLU), normalising
    raw pixels first like the Keras models. BN momentum 0.1 is Keras's 0.9."""
    import torch
    from torch import nn

    mean = torch.tensor([255.0 * m for m in _common.CIFAR10_MEAN]).view(1, 3, 1, 1)
    std = torch.tensor([255.0 * s for s in _common.CIFAR10_STD]).view(1, 3, 1, 1)

    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = bn(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = bn(cout)
            self.pad = 0
            self.proj = None
            if stride != 1 or cin != cout:
                if shortcut == "B":
                    self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout))
                else:
                    self.pad = cout - cin

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            if self.proj is not None:
                s = self.proj(x)
            elif self.pad:
                s = nn.functional.pad(
                    x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2)
                )
            else:
                s = x
            return torch.relu(y + s)

    class CifarResNet(nn.Module):
        def __init__(self):
            super().__init__()
            n = (depth - 2) // 6
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = bn(16)
            blocks, cin = [], 16
            for stage, width in enumerate((16, 32, 64)):
                for unit in range(n):
                    blocks.append(Block(cin, width, 2 if stage and unit == 0 else 1))
                    cin = width
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(64, classes)

        def forward(self, x):
            x = (x - self.mean) / self.std
            x = torch.relu(self.bn1(self.conv1(x)))
            x = self.blocks(x)
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    return CifarResNet()


def torch_model(spec, *, shortcut="B", classes):
    depth = cifar_depth(spec)
    if depth is not None:
        return torch_cifar_resnet(depth, shortcut=shortcut, classes=classes)
    import torchvision

    name, _ = parse_model(spec)
    return getattr(torchvision.models, TORCHVISION[name])(num_classes=classes)


class TorchContender:
    """A PyTorch model in eager mode, channels_last, with the same two steps, on the GPU
    when torch sees one (autocast then runs on CUDA, and each step waits for the device)."""

    framework = "torch"

    def __init__(
        self, label, model, *, batch_size, input_shape, classes, seed=0, autocast_dtype=None
    ):
        import torch

        torch.manual_seed(seed)
        self.torch = torch
        self.label = label
        with warnings.catch_warnings():
            # A CUDA build of torch on a machine without a GPU warns here; that is expected.
            warnings.simplefilter("ignore", UserWarning)
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda":
            torch.backends.cudnn.benchmark = True  # PyTorch's best setting for fixed shapes
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)
        self.autocast_dtype = autocast_dtype
        h, w, c = input_shape
        gen = torch.Generator().manual_seed(seed)
        self.x = (
            (torch.rand(batch_size, c, h, w, generator=gen) * 255)
            .contiguous(memory_format=torch.channels_last)
            .to(self.device)
        )
        self.y = torch.randint(0, classes, (batch_size,), generator=gen).to(self.device)

    def _autocast(self):
        import contextlib

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return self.torch.autocast(self.device, dtype=self.autocast_dtype)

    def _finish(self):
        # CUDA runs asynchronously: a step is timed until the device is done with it.
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def train_step(self):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = self.torch.nn.functional.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        self._finish()

    def infer_step(self):
        self.model.eval()
        with self.torch.inference_mode(), self._autocast():
            self.model(self.x)
        self._finish()


def configure_torch_threads():
    """Use every core, as TensorFlow does by default (torch's own default on Linux too)."""
    import os

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    return torch.get_num_threads()
