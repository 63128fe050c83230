"""Convolutional highway networks for CIFAR-10 (Srivastava, Greff & Schmidhuber 2015)."""

from keras import layers

from keras_resnets.layers import HighwayUnit
from keras_resnets.models import _common
from keras_resnets.models._common import classifier_model
from keras_resnets.models.registry import register, shipped_weights

# Depth = 3n + 2 weighted layers on the main path: the stem, n highway units in each of three
# stages, and the classifier. 11, 20 and 32 bracket the paper's CIFAR-10 networks (Table 3:
# 11, 19 and 32 layers); widths 16, 32, 64 as in the CIFAR ResNets, for like-for-like comparison.
DEPTHS = {depth: ((depth - 2) // 3,) * 3 for depth in (11, 20, 32, 47, 92)}
WIDTHS = (16, 32, 64)
FORMULA = _common.DepthFormula(
    "cifar_highway", step=3, offset=2, papers=tuple(DEPTHS), unit="highway units per stage"
)


@register(
    "cifar_highway",
    dataset="cifar10",
    depths=DEPTHS,
    weights=shipped_weights("cifar_highway"),
    depth_rule=lambda depth, kwargs: FORMULA.units(depth),
)
def cifar_highway(
    depth=32,
    *,
    gate_bias_initializer=-2.0,
    use_batch_norm=True,
    name=None,
    **kwargs,
):
    """A convolutional highway network for CIFAR-10 (Srivastava et al. 2015, section 4.1).

    Stem: conv3x3 with 16 filters; three stages of `HighwayUnit`s of widths 16, 32 and 64 (the
    CIFAR ResNets' widths), each later stage entered through a 1x1 widening conv and 2x2 max
    pooling (the paper's networks downsample with max pooling); global average pooling and
    the classifier.

    This is the paper's design, not a layer-by-layer copy: its CIFAR-10 networks were
    FitNet-shaped (Romero et al. 2015), with widths that change inside a stage, which a
    highway unit cannot do; so parameter counts differ from the paper's Table 3. BN in H
    (`use_batch_norm`) is a departure from the 2015 paper that lets it train with the same
    recipes as the ResNets.

    Args:
        depth: 3n+2 (5, 8, 11, ...), n highway units per stage; the table's are `DEPTHS`
            (11, 20, 32, 47, 92). Defaults to 32.
        gate_bias_initializer: float, the gates' initial bias. Defaults to -2.0 (the paper
            uses -1 to -3, deeper nets more negative).
        use_batch_norm: bool, BN in each unit's transform. Defaults to True.
        name: Defaults to e.g. "cifar_highway32".
        **kwargs: the keras.applications keywords (`_common.classifier_model`):
            `input_shape` (defaults to (32, 32, 3); height and width at least 4),
            `classes` (10), `include_top`, `pooling`, `classifier_activation`, and
            `include_preprocessing` (True: normalise raw pixels with CIFAR-10 statistics).

    Example:
    >>> model = keras_resnets.build("cifar_highway", depth=20)
    """
    units = FORMULA.units(depth)

    def backbone(x):
        x = _common.conv_bn_relu(x, WIDTHS[0], 3, name="stem")
        for s, width in enumerate(WIDTHS, start=1):
            if s > 1:
                x = _common.conv_bn_relu(x, width, 1, name=f"stage{s}_widen")
                x = layers.MaxPooling2D(2, name=f"stage{s}_pool")(x)
            for u in range(1, units + 1):
                x = HighwayUnit(
                    gate_bias_initializer=gate_bias_initializer,
                    use_batch_norm=use_batch_norm,
                    name=f"stage{s}_unit{u}",
                )(x)
        return x

    architecture = _common.Architecture(name or f"cifar_highway{depth}", "cifar10", downsampling=4)
    return classifier_model(backbone, architecture, **kwargs)
