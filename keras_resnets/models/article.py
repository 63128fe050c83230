"""The article's 25-layer CIFAR-10 networks (A. Juliani, "ResNets, HighwayNets, and
DenseNets, Oh My!", 2016): resnet, highway, densenet and plain, ported from its TF-slim code.

Topology, as in the article: conv3x3 stem with 64 filters and BN-ReLU; five stages of
depth/5 units, each followed by a stride-2 conv3x3 (64 filters, BN-ReLU); a conv3x3 head to
`classes` with BN; flatten; softmax. Where this port differs from the article's code:
- loss: the article adds its 1e-10 outside the log (`log(p) + 1e-10`), which guards nothing;
  we train with Keras's cross-entropy, which clips inside the log.
- images: the article reshapes CIFAR's channel-major rows straight to HxWxC, scrambling
  them; our pipelines give correctly oriented images.
- standardisation: the article standardises each batch; we normalise with the training set's
  channel statistics inside the model, so predictions do not depend on the batch.
- padding: kept as the article's code had it, TensorFlow's "same" (only after, at even
  sizes, for its stride-2 convolutions); the papers' networks pad symmetrically.
- dense block: kept as the article wrote it (conv-BN-ReLU layers, later layers concatenating
  only earlier outputs, returning the last layer, 64 filters, no growth rate); the paper's
  block is `DenseBlock`'s default and the `cifar_densenet` models.
"""

from keras import layers

from keras_resnets.layers import DenseBlock, HighwayUnit, ResUnit
from keras_resnets.models import _common
from keras_resnets.models._common import classifier_model
from keras_resnets.models.registry import register, shipped_weights

UNITS = ("resnet", "highway", "densenet", "plain")
STAGES = 5
WIDTH = 64


def _check_depth(depth):
    if not _common.is_integer(depth):
        raise ValueError(
            f"`depth` of the article's networks must be an integer. Received: depth={depth!r}"
        )
    if not _common.is_integer(depth) or depth < STAGES or depth % STAGES:
        raise ValueError(
            "The article's networks take `depth` = the number of units, a positive multiple "
            f"of {STAGES} (5, 10, ..., 25, ...). Received: depth={depth!r}"
        )


def _stage(x, unit, units, stage):
    if unit == "densenet":
        # One dense block per stage: the article's block has `units + 1` conv layers.
        return DenseBlock(
            units + 1,
            WIDTH,
            preactivation=False,
            include_input=False,
            output_mode="last",
            name=f"stage{stage}_dense",
        )(x)
    for u in range(1, units + 1):
        name = f"stage{stage}_unit{u}"
        if unit == "highway":
            x = HighwayUnit(WIDTH, gate_bias_initializer=-1.0, name=name)(x)
        else:
            # slim's conv2d without a normalizer has biases; keep them for fidelity.
            x = ResUnit(
                WIDTH,
                shortcut="none" if unit == "plain" else "B",
                use_bias=True,
                padding="same",
                name=name,
            )(x)
    return x


def article_net(unit, depth=25, *, name=None, **kwargs):
    """One of the article's CIFAR-10 networks (see the module docstring).

    Args:
        unit: "resnet", "highway", "densenet" or "plain".
        depth: the number of units, a multiple of 5. Defaults to 25.
        name: Defaults to e.g. "article_highway25".
        **kwargs: the keras.applications keywords (`_common.classifier_model`):
            `input_shape` (defaults to (32, 32, 3); the head flattens the 1x1 map that five
            stride-2 convolutions leave of a 32x32 image, so with the top, sizes above 32
            are refused), `classes` (10), `include_top`, `pooling`,
            `classifier_activation`, and `include_preprocessing` (True: normalise raw
            pixels with CIFAR-10 statistics).

    Example:
    >>> model = keras_resnets.build("highway", depth=25)
    """
    _common.check_choice("unit", unit, UNITS)
    _check_depth(depth)

    def backbone(x):
        x = _common.conv_bn_relu(x, WIDTH, 3, name="stem", padding="same")
        for stage in range(1, STAGES + 1):
            x = _stage(x, unit, depth // STAGES, stage)
            x = _common.conv_bn_relu(
                x, WIDTH, 3, strides=2, name=f"stage{stage}_down", padding="same"
            )
        return x

    def top(x, classes, classifier_activation):
        # The article's head: a conv to `classes` with BN, flattened, then the softmax.
        x = _common.conv_bn_relu(x, classes, 3, name="top", relu=False, padding="same")
        x = layers.Flatten(name="flatten")(x)
        return layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)

    architecture = _common.Architecture(
        name or f"article_{unit}{depth}",
        "cifar10",
        downsampling=2**STAGES,
        top=top,
        top_max_size=2**STAGES,
    )
    return classifier_model(backbone, architecture, **kwargs)


def _variant(unit):
    @register(
        unit,
        dataset="cifar10",
        weights=shipped_weights(unit),
        depth_rule=lambda depth, kwargs: _check_depth(depth),
    )
    def builder(depth=25, **kwargs):
        return article_net(unit, depth, **kwargs)

    builder.__name__ = unit
    builder.__doc__ = f"The article's CIFAR-10 {unit} network: `article_net({unit!r}, depth)`."
    return builder


for _unit in UNITS:
    _variant(_unit)
