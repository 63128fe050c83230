"""ResNets and plain nets: ImageNet v1 (He et al. 2015), pre-activation v2 (He et al. 2016),
and the CIFAR-10 networks of both papers."""

import dataclasses

from keras_resnets.layers import ResUnit, _defaults
from keras_resnets.models import _common
from keras_resnets.models._common import classifier_model
from keras_resnets.models.registry import (
    CAFFE_MEAN,
    CAFFE_STD,
    Weights,
    register,
    shipped_weights,
)

# Depth tables: the single source of truth for stage sizes and unit type.
# He et al. 2015, Table 1 (ImageNet); resnet200 from He et al. 2016 (fb.resnet.torch).
IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}
IMAGENET_WIDTHS = (64, 128, 256, 512)
# He et al. 2015, section 4.2: depth 6n+2, n basic units in each of three stages. The table
# holds the paper's depths; every 6n+2 builds.
CIFAR_DEPTHS = {depth: ("basic", ((depth - 2) // 6,) * 3) for depth in (20, 32, 44, 56, 110, 1202)}
# He et al. 2016, Table 3 / section 4: pre-activation ResNet-110 (basic, 6n+2) and -164/-1001
# (bottleneck, 9n+2). Depths outside the table build bottleneck nets of 9n+2.
CIFAR_PREACT_DEPTHS = {
    110: ("basic", (18, 18, 18)),
    164: ("bottleneck", (18, 18, 18)),
    1001: ("bottleneck", (111, 111, 111)),
}
CIFAR_WIDTHS = (16, 32, 64)
CIFAR_FORMULA = _common.DepthFormula(
    "cifar_resnet", step=6, offset=2, papers=tuple(CIFAR_DEPTHS), unit="basic units per stage"
)
CIFAR_PREACT_FORMULA = _common.DepthFormula(
    "cifar_preact_resnet",
    step=9,
    offset=2,
    papers=tuple(CIFAR_PREACT_DEPTHS),
    unit="bottleneck units per stage",
    note=", and 110 (18 basic units per stage, the paper's)",
)


def cifar_stages(depth, *, preactivation=False, family=None):
    """`(unit type, stage sizes)` of a CIFAR ResNet of `depth`: the papers' table where it
    has the depth, else the formula (6n+2 basic units; 9n+2 bottleneck ones pre-activated)."""
    table = CIFAR_PREACT_DEPTHS if preactivation else CIFAR_DEPTHS
    if _common.is_integer(depth) and depth in table:
        return table[depth]
    formula = CIFAR_PREACT_FORMULA if preactivation else CIFAR_FORMULA
    if family is not None:
        formula = dataclasses.replace(formula, family=family)
    units = formula.units(depth)
    return ("bottleneck" if preactivation else "basic", (units,) * 3)


# Published ImageNet weights (torchvision's `Weights.meta` and keras.applications'
# WEIGHTS_HASHES). torchvision's are "v1.5" (the 3x3 strides), keras.applications' are
# Caffe's v1 (the first 1x1 strides) with conv biases and BGR, Caffe-preprocessed input;
# `keras_resnets.weights` converts both exactly.
_TV = "https://download.pytorch.org/models/"
_KA = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"


def _torchvision(name, file, top1, version):
    return Weights(
        tag="imagenet",
        name=f"torchvision_{version}",
        url=f"{_TV}{file}",
        file_hash=file.rsplit("-", 1)[1].split(".")[0],
        format="torchvision",
        top1=top1,
        license="BSD-3-Clause",
        source=f"torchvision ResNet{name[len('resnet') :]}_Weights.IMAGENET1K_{version.upper()}",
        layout={"stride_in_1x1": False},
    )


def _keras_applications(name, md5, top1):
    return Weights(
        tag="imagenet",
        name="keras_applications",
        url=f"{_KA}{name}_weights_tf_dim_ordering_tf_kernels.h5",
        file_hash=md5,
        format="keras_applications",
        top1=top1,
        license="MIT",
        source=f"keras.applications {name.replace('resnet', 'ResNet')} (Caffe's weights)",
        mean=CAFFE_MEAN,
        std=CAFFE_STD,
        layout={"stride_in_1x1": True},
    )


IMAGENET_WEIGHTS = {
    18: (_torchvision("resnet18", "resnet18-f37072fd.pth", 69.758, "v1"),),
    34: (_torchvision("resnet34", "resnet34-b627a593.pth", 73.314, "v1"),),
    50: (
        _torchvision("resnet50", "resnet50-0676ba61.pth", 76.130, "v1"),
        _torchvision("resnet50", "resnet50-11ad3fa6.pth", 80.858, "v2"),
        _keras_applications("resnet50", "2cb95161c43110f7111970584f804107", 74.9),
    ),
    101: (
        _torchvision("resnet101", "resnet101-63fe2227.pth", 77.374, "v1"),
        _torchvision("resnet101", "resnet101-cd907fc2.pth", 81.886, "v2"),
        _keras_applications("resnet101", "f1aeb4b969a6efcfb50fad2f0c20cfc5", 76.4),
    ),
    152: (
        _torchvision("resnet152", "resnet152-394f9c45.pth", 78.312, "v1"),
        _torchvision("resnet152", "resnet152-f82ba261.pth", 82.284, "v2"),
        _keras_applications("resnet152", "100835be76be38e30d865e96f2aaae62", 76.6),
    ),
}


@dataclasses.dataclass(frozen=True)
class Stem:
    """A ResNet's stem: a `filters` conv of `kernel_size`/`strides` (BN-ReLU after it in v1;
    v2 leaves it un-normalised, the first unit's BN-ReLU following it, as in
    keras.applications' ResNetV2), then the 3x3/2 max pooling if `pool`."""

    filters: int
    kernel_size: int
    strides: int = 1
    pool: bool = False

    def __call__(self, x, *, preactivation):
        if preactivation:
            x = _defaults.conv2d(
                self.filters, self.kernel_size, strides=self.strides, name="stem_conv"
            )(x)
        else:
            x = _common.conv_bn_relu(
                x, self.filters, self.kernel_size, strides=self.strides, name="stem"
            )
        return _common.stem_pool(x) if self.pool else x


IMAGENET_STEM = Stem(64, 7, strides=2, pool=True)
CIFAR_STEM = Stem(16, 3)


def resnet(
    *,
    block,
    stage_sizes,
    widths,
    first_strides,
    stem,
    preactivation,
    shortcut,
    zero_init_residual,
    stride_in_1x1,
    architecture,
    **kwargs,
):
    """The ResNet both families are: `stem`, stages of `ResUnit`s (stage s has
    `stage_sizes[s]` units of `widths[s]`, its first with `first_strides[s]`), BN-ReLU after
    the last unit in v2, and the keras.applications head (`_common.classifier_model`, which
    takes `**kwargs`)."""
    _common.check_choice("shortcut", shortcut, ("A", "B", "C", "none"))

    def backbone(x):
        x = stem(x, preactivation=preactivation)
        for s, (units, width) in enumerate(zip(stage_sizes, widths), start=1):
            for u in range(1, units + 1):
                x = ResUnit(
                    width,
                    strides=first_strides[s - 1] if u == 1 else 1,
                    bottleneck=block == "bottleneck",
                    stride_in_1x1=stride_in_1x1,
                    preactivation=preactivation,
                    shortcut=shortcut,
                    zero_init_residual=zero_init_residual,
                    name=f"stage{s}_unit{u}",
                )(x)
        return _common.bn_relu(x, name="post") if preactivation else x

    return classifier_model(backbone, architecture, **kwargs)


def imagenet_resnet(
    depth=50,
    *,
    preactivation=False,
    shortcut="B",
    zero_init_residual=False,
    stride_in_1x1=None,
    name=None,
    **kwargs,
):
    """ImageNet ResNet v1 (He et al. 2015) or pre-activation v2 (He et al. 2016).

    Stem: conv7x7/2 with 64 filters (BN-ReLU in v1), 3x3/2 max pooling; four stages of
    basic or bottleneck units (`IMAGENET_DEPTHS`), the first unit of stages 2-4 with stride 2;
    v2 ends with BN-ReLU; global average pooling and the classifier. Convolutions have no
    biases, as in Caffe's and torchvision's models: 25,557,032 trainable parameters for
    ResNet-50, torchvision's count. keras.applications' ResNet50 has 25,583,592 trainable
    ones: the same plus 26,560 conv biases, which fold exactly into the next BN
    (`keras_resnets.weights`). Strided windows pad symmetrically, as in Caffe, torchvision
    and keras.applications, so published weights compute the publisher's function.

    Args:
        depth: one of `IMAGENET_DEPTHS` (18, 34, 50, 101, 152, 200). Defaults to 50.
        preactivation: bool, v2 units. Defaults to False.
        shortcut: "A", "B", "C" (He et al. 2015, Table 3) or "none" (a plain net).
            Defaults to "B".
        zero_init_residual: bool, see `ResUnit`. Defaults to False.
        stride_in_1x1: bool or None, see `ResUnit`: True strides each bottleneck's first
            1x1 (v1, Caffe and keras.applications), False its 3x3 (torchvision's "v1.5").
            Defaults to None: True for v1, False for v2.
        name: model name. Defaults to e.g. "resnet50".
        **kwargs: the keras.applications keywords (`_common.classifier_model`):
            `input_shape` (defaults to (224, 224, 3); height and width at least 32),
            `classes` (1000), `include_top`, `pooling`, `classifier_activation`, and
            `include_preprocessing` (True: normalise raw [0, 255] pixels with ImageNet's
            channel statistics inside the model).

    Example:
    >>> model = imagenet_resnet(50)
    >>> model = keras_resnets.build("resnet34", shortcut="A")
    """
    _common.check_depth("ImageNet ResNet", depth, IMAGENET_DEPTHS)
    if name is None:
        prefix = "plain" if shortcut == "none" else "resnet"
        name = f"{prefix}{depth}" + ("_v2" if preactivation else "")
    block, stage_sizes = IMAGENET_DEPTHS[depth]
    return resnet(
        block=block,
        stage_sizes=stage_sizes,
        widths=IMAGENET_WIDTHS,
        first_strides=(1, 2, 2, 2),
        stem=IMAGENET_STEM,
        preactivation=preactivation,
        shortcut=shortcut,
        zero_init_residual=zero_init_residual,
        stride_in_1x1=stride_in_1x1,
        architecture=_common.Architecture(name, "imagenet", downsampling=32),
        **kwargs,
    )


def _cifar_family(preactivation, shortcut):
    """The family a CIFAR ResNet's messages and default name use."""
    if shortcut == "none":
        return "cifar_plain"
    return "cifar_preact_resnet" if preactivation else "cifar_resnet"


def _cifar_depth_rule(**fixed):
    """The registry's `depth_rule` of a CIFAR ResNet name: `cifar_stages`' check, with the
    arguments the name fixes (`fixed`) or defaults, and the user's."""

    def rule(depth, kwargs):
        settings = {"preactivation": False, "shortcut": "A", **fixed, **kwargs}
        preactivation = settings["preactivation"]
        cifar_stages(
            depth,
            preactivation=preactivation,
            family=_cifar_family(preactivation, settings["shortcut"]),
        )

    return rule


def cifar_resnet_family(
    depth=20,
    *,
    preactivation=False,
    shortcut="A",
    zero_init_residual=False,
    name=None,
    **kwargs,
):
    """The CIFAR-10 ResNets: He et al. 2015 section 4.2 (v1) and He et al. 2016 (v2).

    Stem: conv3x3 with 16 filters (BN-ReLU in v1); three stages of widths 16, 32 and 64
    (times 4 for bottleneck units), the first unit of stages 2 and 3 with stride 2; v2 ends
    with BN-ReLU; global average pooling and the classifier. Strided convolutions pad one
    pixel on every side, as the papers' Torch code does, so that they look at the same
    pixels as shortcut A's subsampling.

    Args:
        depth: v1: 6n+2 for n >= 1 (8, 14, 20, ...), n basic units per stage; the papers'
            are `CIFAR_DEPTHS` (20, 32, 44, 56, 110, 1202). v2: 9n+2 (11, 20, 29, ...), n
            bottleneck units per stage, and the paper's basic 110; the papers' are
            `CIFAR_PREACT_DEPTHS` (110, 164, 1001). Defaults to 20.
        preactivation: bool, He et al. 2016's pre-activation units. Defaults to False.
        shortcut: "A" (the 2015 paper's CIFAR choice; its default here), "B", "C" or "none".
        zero_init_residual: bool, see `ResUnit`. Defaults to False.
        name: Defaults to e.g. "cifar_resnet20".
        **kwargs: the keras.applications keywords (`_common.classifier_model`):
            `input_shape` (defaults to (32, 32, 3); height and width at least 4),
            `classes` (10), `include_top`, `pooling`, `classifier_activation`, and
            `include_preprocessing` (True: normalise raw [0, 255] pixels with CIFAR-10's
            channel statistics inside the model).

    Example:
    >>> model = keras_resnets.build("cifar_resnet", depth=110)
    """
    family = _cifar_family(preactivation, shortcut)
    block, stage_sizes = cifar_stages(depth, preactivation=preactivation, family=family)
    return resnet(
        block=block,
        stage_sizes=stage_sizes,
        widths=CIFAR_WIDTHS,
        first_strides=(1, 2, 2),
        stem=CIFAR_STEM,
        preactivation=preactivation,
        shortcut=shortcut,
        zero_init_residual=zero_init_residual,
        stride_in_1x1=None,
        architecture=_common.Architecture(name or f"{family}{depth}", "cifar10", downsampling=4),
        **kwargs,
    )


def _imagenet_variant(registered_name, depth, weights=(), **fixed):
    @register(registered_name, dataset="imagenet", weights=weights)
    def builder(**kwargs):
        return imagenet_resnet(depth, **fixed, **kwargs)

    builder.__name__ = registered_name
    builder.__doc__ = f"{registered_name}: `imagenet_resnet(depth={depth}, {fixed})`."
    return builder


for _depth in (18, 34, 50, 101, 152):
    _imagenet_variant(f"resnet{_depth}", _depth, IMAGENET_WEIGHTS[_depth])
for _depth in (18, 34):
    _imagenet_variant(f"plain{_depth}", _depth, shortcut="none")
for _depth in (50, 101, 152, 200):
    _imagenet_variant(f"resnet{_depth}_v2", _depth, preactivation=True)


@register(
    "cifar_resnet",
    dataset="cifar10",
    depths=CIFAR_DEPTHS,
    weights=shipped_weights("cifar_resnet"),
    depth_rule=_cifar_depth_rule(),
)
def cifar_resnet(depth=20, **kwargs):
    """He et al. 2015's CIFAR-10 ResNet (6n+2 layers, shortcut A by default)."""
    return cifar_resnet_family(depth, **kwargs)


@register(
    "cifar_plain",
    dataset="cifar10",
    depths=CIFAR_DEPTHS,
    depth_rule=_cifar_depth_rule(shortcut="none"),
)
def cifar_plain(depth=20, **kwargs):
    """He et al. 2015's CIFAR-10 plain net: the CIFAR ResNet without shortcuts."""
    return cifar_resnet_family(depth, shortcut="none", **kwargs)


@register(
    "cifar_preact_resnet",
    dataset="cifar10",
    depths=CIFAR_PREACT_DEPTHS,
    depth_rule=_cifar_depth_rule(preactivation=True, shortcut="B"),
)
def cifar_preact_resnet(depth=164, **kwargs):
    """He et al. 2016's pre-activation CIFAR-10 ResNet (110 basic; 164, 1001 bottleneck)."""
    kwargs.setdefault("shortcut", "B")
    return cifar_resnet_family(depth, preactivation=True, **kwargs)
