"""DenseNets (Huang et al. 2017): the ImageNet DenseNet-BC family and the CIFAR networks."""

import dataclasses

from keras_resnets.layers import DenseBlock, TransitionLayer, _defaults
from keras_resnets.models import _common
from keras_resnets.models._common import classifier_model
from keras_resnets.models.registry import Weights, register

# Huang et al. 2017, Table 1: layers per dense block of the ImageNet DenseNet-BC (k=32).
IMAGENET_DEPTHS = {
    121: (6, 12, 24, 16),
    169: (6, 12, 32, 32),
    201: (6, 12, 48, 32),
    264: (6, 12, 64, 48),
}
# Huang et al. 2017, Table 2: the CIFAR configurations, depth -> the paper's growth rates.
# Three dense blocks of (depth - 4) / 3 layers, or (depth - 4) / 6 bottlenecked layers.
# Every such depth builds; the table holds the paper's.
CIFAR_DEPTHS = {40: (12,), 100: (12, 24)}
CIFAR_BC_DEPTHS = {100: (12,), 190: (40,), 250: (24,)}
CIFAR_FORMULA = _common.DepthFormula(
    "cifar_densenet", step=3, offset=4, papers=tuple(CIFAR_DEPTHS), unit="layers per block"
)
CIFAR_BC_FORMULA = _common.DepthFormula(
    "cifar_densenet_bc",
    step=6,
    offset=4,
    papers=tuple(CIFAR_BC_DEPTHS),
    unit="bottleneck layers per block",
)

# Published ImageNet weights: torchvision's (ported from the authors' Torch models) and
# keras.applications'. Both use ImageNet's mean and std ("torch" preprocessing).
_TV = "https://download.pytorch.org/models/"
_KA = "https://storage.googleapis.com/tensorflow/keras-applications/densenet/"


def _weights(depth, tv_file, tv_top1, ka_md5, ka_top1):
    return (
        Weights(
            tag="imagenet",
            name="torchvision_v1",
            url=f"{_TV}{tv_file}",
            file_hash=tv_file.rsplit("-", 1)[1].split(".")[0],
            format="torchvision",
            top1=tv_top1,
            license="BSD-3-Clause",
            source=f"torchvision DenseNet{depth}_Weights.IMAGENET1K_V1",
        ),
        Weights(
            tag="imagenet",
            name="keras_applications",
            url=f"{_KA}densenet{depth}_weights_tf_dim_ordering_tf_kernels.h5",
            file_hash=ka_md5,
            format="keras_applications",
            top1=ka_top1,
            license="BSD-3-Clause",
            source=f"keras.applications DenseNet{depth}",
        ),
    )


IMAGENET_WEIGHTS = {
    121: _weights(
        121, "densenet121-a639ec97.pth", 74.434, "9d60b8095a5708f2dcce2bca79d332c7", 75.0
    ),
    169: _weights(
        169, "densenet169-b2777c0a.pth", 75.600, "d699b8f76981ab1b30698df4c175e90b", 76.2
    ),
    201: _weights(
        201, "densenet201-c1103571.pth", 76.896, "1ceb130c1ea1b78c3bf6114dbdfd8807", 77.3
    ),
}


def _dense_stages(
    x, *, block_sizes, growth_rate, bottleneck, compression, dropout_rate, memory_efficient
):
    for b, num_layers in enumerate(block_sizes, start=1):
        x = DenseBlock(
            num_layers,
            growth_rate,
            bottleneck=bottleneck,
            dropout_rate=dropout_rate,
            memory_efficient=memory_efficient,
            name=f"block{b}",
        )(x)
        if b < len(block_sizes):
            x = TransitionLayer(compression, name=f"transition{b}")(x)
    # The pre-activation layers leave the last block un-normalised.
    return _common.bn_relu(x, name="post")


def imagenet_densenet(
    depth=121,
    *,
    growth_rate=32,
    dropout_rate=0.0,
    memory_efficient=False,
    name=None,
    **kwargs,
):
    """The ImageNet DenseNet-BC (Huang et al. 2017, Table 1).

    Stem: conv7x7/2 with 2k filters, BN-ReLU, 3x3/2 max pooling; four dense blocks with
    bottlenecks, joined by transitions with compression 0.5; BN-ReLU, global average pooling
    and the classifier. Computes the same function as torchvision's and keras.applications'
    DenseNets given their weights (tests/test_weights.py copies both into it).

    Args:
        depth: one of `IMAGENET_DEPTHS` (121, 169, 201, 264). Defaults to 121.
        growth_rate: int, k. Defaults to 32.
        dropout_rate: float, dropout after each conv in the blocks. Defaults to 0.
        memory_efficient: bool, recompute concatenations in the backward pass (see
            `DenseBlock`). Defaults to False.
        name: Defaults to e.g. "densenet121".
        **kwargs: the keras.applications keywords (`_common.classifier_model`):
            `input_shape` (defaults to (224, 224, 3); height and width at least 32),
            `classes` (1000), `include_top`, `pooling`, `classifier_activation`, and
            `include_preprocessing` (True: normalise raw pixels with ImageNet statistics).

    Example:
    >>> model = keras_resnets.build("densenet121")
    """
    _common.check_depth("ImageNet DenseNet", depth, IMAGENET_DEPTHS)

    def backbone(x):
        x = _common.conv_bn_relu(x, 2 * growth_rate, 7, strides=2, name="stem")
        x = _common.stem_pool(x)
        return _dense_stages(
            x,
            block_sizes=IMAGENET_DEPTHS[depth],
            growth_rate=growth_rate,
            bottleneck=True,
            compression=0.5,
            dropout_rate=dropout_rate,
            memory_efficient=memory_efficient,
        )

    architecture = _common.Architecture(name or f"densenet{depth}", "imagenet", downsampling=32)
    return classifier_model(backbone, architecture, **kwargs)


def _cifar_layers_per_block(depth, bottleneck, family):
    formula = CIFAR_BC_FORMULA if bottleneck else CIFAR_FORMULA
    return dataclasses.replace(formula, family=family).units(depth)


def _cifar_depth_rule(**fixed):
    """The registry's `depth_rule` of a CIFAR DenseNet name (`fixed`: what the name sets)."""

    def rule(depth, kwargs):
        settings = {"bottleneck": False, "compression": 1.0, **fixed, **kwargs}
        bc = settings["bottleneck"] and settings["compression"] < 1
        family = "cifar_densenet_bc" if bc else "cifar_densenet"
        _cifar_layers_per_block(depth, settings["bottleneck"], family)

    return rule


@register(
    "cifar_densenet",
    dataset="cifar10",
    depth_rule=_cifar_depth_rule(),
    depths=CIFAR_DEPTHS,
    configs=[{"depth": d, "growth_rate": k} for d, ks in CIFAR_DEPTHS.items() for k in ks],
)
def cifar_densenet(
    depth=40,
    *,
    growth_rate=12,
    bottleneck=False,
    compression=1.0,
    dropout_rate=0.0,
    memory_efficient=False,
    name=None,
    **kwargs,
):
    """The CIFAR DenseNet (Huang et al. 2017, section 4.2 and Table 2).

    Stem: conv3x3 with 16 filters (2k for DenseNet-BC); three dense blocks of equal size,
    joined by transitions (BN-ReLU-conv1x1-avgpool2x2); BN-ReLU, global average pooling and
    the classifier.

    Args:
        depth: 3n+4 (7, 10, 13, ...), n layers per block; the paper's are 40 and 100
            (`CIFAR_DEPTHS`). With `bottleneck=True`, 6n+4 (10, 16, 22, ...), n bottleneck
            layers per block; the paper's are 100, 190 and 250 (`CIFAR_BC_DEPTHS`).
            Defaults to 40.
        growth_rate: int, k. Defaults to 12.
        bottleneck: bool, the "B" of DenseNet-BC. Defaults to False.
        compression: float, theta of the transitions; 0.5 is the "C". Defaults to 1.0.
        dropout_rate: float. Defaults to 0 (the paper uses 0.2 without augmentation).
        memory_efficient: bool, see `DenseBlock`. Defaults to False.
        name: Defaults to e.g. "cifar_densenet40_k12".
        **kwargs: the keras.applications keywords (`_common.classifier_model`):
            `input_shape` (defaults to (32, 32, 3); height and width at least 4),
            `classes` (10), `include_top`, `pooling`, `classifier_activation`, and
            `include_preprocessing` (True: normalise raw pixels with CIFAR-10 statistics).

    Example:
    >>> model = keras_resnets.build("cifar_densenet", depth=100, growth_rate=24)
    """
    bc = bottleneck and compression < 1
    family = "cifar_densenet_bc" if bc else "cifar_densenet"
    layers_per_block = _cifar_layers_per_block(depth, bottleneck, family)

    def backbone(x):
        x = _defaults.conv2d(2 * growth_rate if bc else 16, 3, name="stem_conv")(x)
        return _dense_stages(
            x,
            block_sizes=(layers_per_block,) * 3,
            growth_rate=growth_rate,
            bottleneck=bottleneck,
            compression=compression,
            dropout_rate=dropout_rate,
            memory_efficient=memory_efficient,
        )

    architecture = _common.Architecture(
        name or f"{family}{depth}_k{growth_rate}", "cifar10", downsampling=4
    )
    return classifier_model(backbone, architecture, **kwargs)


@register(
    "cifar_densenet_bc",
    dataset="cifar10",
    depths=CIFAR_BC_DEPTHS,
    depth_rule=_cifar_depth_rule(bottleneck=True, compression=0.5),
)
def cifar_densenet_bc(depth=100, *, growth_rate=None, **kwargs):
    """DenseNet-BC for CIFAR: bottlenecks and compression 0.5 (Huang et al. 2017).

    `growth_rate` defaults to the paper's for the depth (100: 12, 190: 40, 250: 24), else 12.
    """
    if growth_rate is None:
        growth_rate = CIFAR_BC_DEPTHS[depth][0] if depth in CIFAR_BC_DEPTHS else 12
    return cifar_densenet(
        depth,
        growth_rate=growth_rate,
        bottleneck=True,
        compression=kwargs.pop("compression", 0.5),
        **kwargs,
    )


def _imagenet_variant(depth):
    @register(f"densenet{depth}", dataset="imagenet", weights=IMAGENET_WEIGHTS.get(depth, ()))
    def builder(**kwargs):
        return imagenet_densenet(depth, **kwargs)

    builder.__name__ = f"densenet{depth}"
    builder.__doc__ = f"densenet{depth}: `imagenet_densenet(depth={depth})`, k=32, BC."
    return builder


for _depth in IMAGENET_DEPTHS:
    _imagenet_variant(_depth)
