"""Converters from other implementations' checkpoints to our variable paths.

Each converter takes the checkpoint as read (`files.read_checkpoint`) and returns
`{our variable path: array}` in our layout: channels-last HWIO kernels, BN as gamma, beta,
moving mean and variance. Name tables are written as regular expressions over the source's
names, so a source name that no rule covers is an error, not a silent skip.
"""

import re

import numpy as np

_BN = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
# torchvision's ResNet and DenseNet names -> ours (torchvision's models/resnet.py, densenet.py).
_TORCHVISION_RULES = [
    (r"conv1", "stem_conv"),
    (r"bn1", "stem_bn"),
    (r"layer(\d+)\.(\d+)\.conv(\d)", lambda m: f"stage{m[1]}_unit{int(m[2]) + 1}/conv{m[3]}"),
    (r"layer(\d+)\.(\d+)\.bn(\d)", lambda m: f"stage{m[1]}_unit{int(m[2]) + 1}/bn{m[3]}"),
    (
        r"layer(\d+)\.(\d+)\.downsample\.0",
        lambda m: f"stage{m[1]}_unit{int(m[2]) + 1}/shortcut_conv",
    ),
    (r"layer(\d+)\.(\d+)\.downsample\.1", lambda m: f"stage{m[1]}_unit{int(m[2]) + 1}/shortcut_bn"),
    (r"fc", "predictions"),
    (r"features\.conv0", "stem_conv"),
    (r"features\.norm0", "stem_bn"),
    (
        r"features\.denseblock(\d+)\.denselayer(\d+)\.norm1",
        lambda m: f"block{m[1]}/layer{int(m[2]) - 1}_bottleneck_bn",
    ),
    (
        r"features\.denseblock(\d+)\.denselayer(\d+)\.conv1",
        lambda m: f"block{m[1]}/layer{int(m[2]) - 1}_bottleneck_conv",
    ),
    (
        r"features\.denseblock(\d+)\.denselayer(\d+)\.norm2",
        lambda m: f"block{m[1]}/layer{int(m[2]) - 1}_bn",
    ),
    (
        r"features\.denseblock(\d+)\.denselayer(\d+)\.conv2",
        lambda m: f"block{m[1]}/layer{int(m[2]) - 1}_conv",
    ),
    (r"features\.transition(\d+)\.norm", lambda m: f"transition{m[1]}/bn"),
    (r"features\.transition(\d+)\.conv", lambda m: f"transition{m[1]}/conv"),
    (r"features\.norm5", "post_bn"),
    (r"classifier", "predictions"),
]
# keras.applications' ResNet (resnet.py) and DenseNet (densenet.py) layer names -> ours.
# Keras 2's DenseNet wrote "conv1/conv"; names are compared with "/" read as "_".
_KERAS_APPLICATIONS_RULES = [
    (r"conv1_conv", "stem_conv"),
    (r"conv1_bn", "stem_bn"),
    (
        r"conv(\d)_block(\d+)_0_(conv|bn)",
        lambda m: f"stage{int(m[1]) - 1}_unit{m[2]}/shortcut_{m[3]}",
    ),
    (
        r"conv(\d)_block(\d+)_([123])_(conv|bn)",
        lambda m: f"stage{int(m[1]) - 1}_unit{m[2]}/{m[4]}{m[3]}",
    ),
    (r"(probs|fc1000|predictions)", "predictions"),
]
_KERAS_DENSENET_RULES = [
    (r"conv1_conv", "stem_conv"),
    (r"conv1_bn", "stem_bn"),
    (
        r"conv(\d)_block(\d+)_0_bn",
        lambda m: f"block{int(m[1]) - 1}/layer{int(m[2]) - 1}_bottleneck_bn",
    ),
    (
        r"conv(\d)_block(\d+)_1_conv",
        lambda m: f"block{int(m[1]) - 1}/layer{int(m[2]) - 1}_bottleneck_conv",
    ),
    (r"conv(\d)_block(\d+)_1_bn", lambda m: f"block{int(m[1]) - 1}/layer{int(m[2]) - 1}_bn"),
    (r"conv(\d)_block(\d+)_2_conv", lambda m: f"block{int(m[1]) - 1}/layer{int(m[2]) - 1}_conv"),
    (r"pool(\d)_(bn|conv)", lambda m: f"transition{int(m[1]) - 1}/{m[2]}"),
    (r"bn", "post_bn"),
    (r"(fc1000|predictions)", "predictions"),
]
# Weight names of keras.applications' layers; ours are the same.
_KERAS_WEIGHTS = frozenset({"kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"})
# keras.applications' BatchNormalization epsilon; ours is `_defaults.BN_EPSILON`.
KERAS_APPLICATIONS_EPSILON = 1.001e-5


class ConversionError(ValueError):
    """A checkpoint that does not fit the model it is loaded into."""


def _rename(name, rules):
    for pattern, target in rules:
        m = re.fullmatch(pattern, name)
        if m:
            return target if isinstance(target, str) else target(m)
    return None


# torchvision's own fix for DenseNet checkpoints saved before "." left module names:
# "denselayer1.norm.1.weight" is "denselayer1.norm1.weight" (torchvision/models/densenet.py).
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def from_torchvision(state_dict):
    """torchvision ResNet/DenseNet `state_dict` (NumPy arrays) -> our paths.

    OIHW kernels become HWIO, the linear layer's (out, in) becomes (in, out);
    `num_batches_tracked` counts steps and is not a weight.
    """
    out, unknown = {}, []
    for key, value in state_dict.items():
        m = _OLD_DENSENET_KEY.match(key)
        if m:
            key = m.group(1) + m.group(2)
        module, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            continue
        target = _rename(module, _TORCHVISION_RULES)
        if target is None:
            unknown.append(key)
            continue
        value = np.asarray(value)
        if value.ndim == 4:
            out[f"{target}/kernel"] = value.transpose(2, 3, 1, 0)
        elif value.ndim == 2:
            out[f"{target}/kernel"] = value.T
        elif target == "predictions":
            out[f"{target}/{leaf}"] = value
        else:  # torchvision's convolutions have no biases: a 1-D weight is a BN's
            out[f"{target}/{_BN[leaf]}"] = value
    if unknown:
        raise ConversionError(
            f"{len(unknown)} torchvision weights have no place in this model, e.g. {unknown[:3]}"
        )
    return out


def from_keras_applications(layers, *, densenet):
    """keras.applications' legacy `.h5` (`{layer name: {weight name: array}}`) -> ours.

    Exact in inference: a conv bias is folded into the next BN's moving mean
    (BN(Wx + b) = BN'(Wx) with mean' = mean - b), and keras.applications' epsilon
    (1.001e-5) into the moving variance (var' = var + 1.001e-5 - 1e-5), so that our
    epsilon gives the same normalisation. ResNets take Caffe's BGR input, so the stem's
    input channels are reversed: our models take RGB.
    """
    rules = _KERAS_DENSENET_RULES if densenet else _KERAS_APPLICATIONS_RULES
    out, biases, unknown = {}, {}, []
    for layer, weights in layers.items():
        target = _rename(layer.replace("/", "_"), rules)
        if target is None:
            unknown.append(layer)
            continue
        for name, value in weights.items():
            value = np.asarray(value)
            if name == "bias" and not target.startswith("predictions"):
                biases[target] = value
            else:
                if name not in _KERAS_WEIGHTS:
                    raise ConversionError(f"{layer}: unknown keras.applications weight {name!r}")
                out[f"{target}/{name}"] = value
    if unknown:
        raise ConversionError(
            f"{len(unknown)} keras.applications layers have no place in this model, "
            f"e.g. {unknown[:3]}"
        )
    for conv, bias in biases.items():
        bn = re.sub(r"conv(\d?)$", r"bn\1", conv)  # stem_conv -> stem_bn, conv2 -> bn2
        out[f"{bn}/moving_mean"] = out[f"{bn}/moving_mean"] - bias
    from keras_resnets.layers import _defaults  # imports Keras

    for path in [p for p in out if p.endswith("/moving_variance")]:
        out[path] = out[path] + (KERAS_APPLICATIONS_EPSILON - _defaults.BN_EPSILON)
    if not densenet:
        out["stem_conv/kernel"] = out["stem_conv/kernel"][:, :, ::-1, :]
    return out
