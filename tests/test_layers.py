"""The package layers: the Keras contract (`run_layer_test`) and NumPy references.

The references are written from the papers' equations, in float64 NumPy, with TensorFlow's
'same' padding and Torch's symmetric padding written out by hand; they share no code with
the layers.
"""

import keras
import numpy as np
import pytest
from keras import ops
from layer_test import run_layer_test

import keras_resnets
from keras_resnets.accounting import sublayers
from keras_resnets.layers import (
    BatchNormalization,
    Conv2D,
    DenseBlock,
    HighwayUnit,
    MaxPooling2D,
    ResUnit,
    TransitionLayer,
)

TF = keras.backend.backend() == "tensorflow"
JAX = keras.backend.backend() == "jax"


# --------------------------------------------------------------------------------------
# NumPy references
# --------------------------------------------------------------------------------------


def np_conv2d(x, kernel, strides=1, bias=None, padding="same"):
    """NHWC convolution with TF/Keras 'same' padding or Torch's symmetric padding.

    'same': output size ceil(n / s); the total padding max((out - 1) * s + k - n, 0) is
    split with the odd pixel after: for a 3x3 kernel, stride 2 and an even input, 0 before
    and 1 after. 'symmetric': torch's `padding=k // 2`, k // 2 zeros on every side and
    output size floor((n + 2 (k // 2) - k) / s) + 1.
    """
    n, h, w, _ = x.shape
    kh, kw, _, cout = kernel.shape
    if padding == "symmetric":
        xp = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
        oh = (h + 2 * (kh // 2) - kh) // strides + 1
        ow = (w + 2 * (kw // 2) - kw) // strides + 1
    else:
        oh, ow = -(-h // strides), -(-w // strides)
        ph = max((oh - 1) * strides + kh - h, 0)
        pw = max((ow - 1) * strides + kw - w, 0)
        xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out = np.zeros((n, oh, ow, cout))
    for i in range(kh):
        for j in range(kw):
            patch = xp[
                :,
                i : i + strides * (oh - 1) + 1 : strides,
                j : j + strides * (ow - 1) + 1 : strides,
            ]
            out += patch @ kernel[i, j]
    return out if bias is None else out + bias


def np_bn(x, gamma, beta, moving_mean, moving_variance, epsilon):
    """Inference-mode batch normalisation."""
    return (x - moving_mean) / np.sqrt(moving_variance + epsilon) * gamma + beta


def relu(x):
    return np.maximum(x, 0.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_avg_pool2(x):
    """2x2 average pooling, stride 2, 'valid'."""
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def weights_by_role(layer):
    """{"conv1/kernel": variable, ...}: the layer's weights under their sublayer role names."""
    return {"/".join(w.path.split("/")[-2:]): w for w in layer.weights}


def randomise(layer, rng):
    """Random values for every weight, positive BN variances, and return them as float64.

    Moving statistics are set too, so inference-mode BN is a non-trivial affine map.
    """
    values = {}
    for role, w in weights_by_role(layer).items():
        if role.endswith("moving_variance") or role.endswith("gamma"):
            value = rng.uniform(0.5, 1.5, w.shape)
        elif role.endswith("kernel"):
            fan_in = int(np.prod(w.shape[:-1]))
            value = rng.standard_normal(w.shape) * np.sqrt(2.0 / fan_in)
        else:  # beta, moving_mean, bias
            value = rng.standard_normal(w.shape) * 0.3
        w.assign(value.astype("float32"))
        values[role] = value.astype("float32").astype("float64")
    return values


def bn_of(values, name, epsilon):
    return lambda x: np_bn(
        x,
        values[f"{name}/gamma"],
        values[f"{name}/beta"],
        values[f"{name}/moving_mean"],
        values[f"{name}/moving_variance"],
        epsilon,
    )


def epsilon_of(layer):
    eps = {
        sub.epsilon for sub in sublayers(layer) if isinstance(sub, keras.layers.BatchNormalization)
    }
    assert len(eps) == 1
    return eps.pop()


def to_numpy(x):
    return keras.ops.convert_to_numpy(x).astype("float64")


def assert_close(actual, expected, tol=1e-4):
    np.testing.assert_allclose(to_numpy(actual), expected, rtol=tol, atol=tol)


def random_input(rng, shape):
    return rng.standard_normal(shape).astype("float32")


# --------------------------------------------------------------------------------------
# The reference itself: TF's 'same' padding, written down independently of the layers
# --------------------------------------------------------------------------------------


def test_np_conv2d_padding_rule(rng):
    # A kernel that picks its top-left tap shows where the padding went.
    kernel = np.zeros((3, 3, 1, 1))
    kernel[0, 0] = 1.0
    even = rng.standard_normal((1, 8, 8, 1))
    # Stride 2, even input: out = 4, total padding (4-1)*2+3-8 = 1 -> 0 before, 1 after,
    # so the top-left tap of output (i, j) is input (2i, 2j).
    np.testing.assert_array_equal(np_conv2d(even, kernel, 2), even[:, ::2, ::2])
    odd = rng.standard_normal((1, 7, 7, 1))
    # Stride 2, odd input: total padding (4-1)*2+3-7 = 2 -> 1 before: tap (2i-1, 2j-1).
    out = np_conv2d(odd, kernel, 2)
    np.testing.assert_array_equal(out[:, 0, :], 0.0)
    np.testing.assert_array_equal(out[:, 1:, 1:], odd[:, 1::2, 1::2])
    # Stride 1: 1 before, 1 after.
    out = np_conv2d(even, kernel, 1)
    np.testing.assert_array_equal(out[:, 1:, 1:], even[:, :-1, :-1])


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("kernel_size", [1, 3])
def test_np_conv2d_matches_keras_conv2d(rng, size, strides, kernel_size):
    x = random_input(rng, (2, size, size, 3))
    conv = keras.layers.Conv2D(5, kernel_size, strides=strides, padding="same")
    conv.build(x.shape)
    kernel = rng.standard_normal(conv.kernel.shape).astype("float32")
    bias = rng.standard_normal(5).astype("float32")
    conv.set_weights([kernel, bias])
    assert_close(conv(x), np_conv2d(x.astype("float64"), kernel, strides, bias), 1e-5)


def test_np_conv2d_symmetric_padding_rule(rng):
    # torch's padding=1 for a 3x3 at stride 2: output (i, j)'s top-left tap is input
    # (2i - 1, 2j - 1) at even and odd sizes alike.
    kernel = np.zeros((3, 3, 1, 1))
    kernel[0, 0] = 1.0
    for size in (8, 7):
        x = rng.standard_normal((1, size, size, 1))
        out = np_conv2d(x, kernel, 2, padding="symmetric")
        assert out.shape[1] == (size - 1) // 2 + 1
        np.testing.assert_array_equal(out[:, 0, :], 0.0)
        n = out.shape[1] - 1
        np.testing.assert_array_equal(out[:, 1:, 1:], x[:, 1::2, 1::2][:, :n, :n])


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("strides, kernel_size", [(2, 3), (2, 7), (1, 3)])
def test_symmetric_conv2d_matches_numpy(rng, size, strides, kernel_size):
    x = random_input(rng, (2, size, size, 3))
    conv = Conv2D(5, kernel_size, strides=strides, padding="symmetric")
    conv.build(x.shape)
    kernel = rng.standard_normal(conv.kernel.shape).astype("float32")
    bias = rng.standard_normal(5).astype("float32")
    conv.set_weights([kernel, bias])
    expected = np_conv2d(x.astype("float64"), kernel, strides, bias, padding="symmetric")
    assert tuple(conv.compute_output_shape(x.shape)) == expected.shape
    assert_close(conv(x), expected, 1e-4)
    assert Conv2D.from_config(conv.get_config()).get_config() == conv.get_config()


def np_max_pool(x, k, s, pad):
    """Max pooling with `pad` pixels of -inf on every side (torch's MaxPool2d semantics)."""
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-np.inf)
    oh, ow = (xp.shape[1] - k) // s + 1, (xp.shape[2] - k) // s + 1
    return np.stack(
        [
            np.stack(
                [xp[:, i * s : i * s + k, j * s : j * s + k].max(axis=(1, 2)) for j in range(ow)], 1
            )
            for i in range(oh)
        ],
        1,
    )


@pytest.mark.parametrize("size", [7, 8])
def test_symmetric_max_pool_padding_never_wins(rng, size):
    # All-negative inputs: zero padding would win the max at the borders; -inf never does.
    x = -1.0 - np.abs(random_input(rng, (2, size, size, 3)))
    pool = MaxPooling2D(3, strides=2, padding="symmetric")
    y = to_numpy(pool(x))
    expected = np_max_pool(x.astype("float64"), 3, 2, 1)
    assert y.shape == expected.shape == tuple(pool.compute_output_shape(x.shape))
    assert (y < 0).all()
    assert_close(y, expected, 1e-6)


# --------------------------------------------------------------------------------------
# The Keras layer contract
# --------------------------------------------------------------------------------------

BATCH, SIZE, CHANNELS = 2, 8, 8


def _res_unit_case(bottleneck, preactivation, shortcut, strides, **extra):
    # Stride 1 keeps the width (identity shortcut); stride 2 doubles it (projection / pad).
    out_channels = CHANNELS if strides == 1 else 2 * CHANNELS
    filters = out_channels // 4 if bottleneck else out_channels
    kwargs = dict(
        filters=filters,
        strides=strides,
        bottleneck=bottleneck,
        preactivation=preactivation,
        shortcut=shortcut,
        **extra,
    )
    return kwargs, out_channels


def _res_unit_weight_counts(kwargs, in_channels, out_channels):
    """Counts from the papers' unit: one BN per conv; a projection where the option needs one."""
    convs = 3 if kwargs["bottleneck"] else 2
    conv_weights = 2 if kwargs.get("use_bias") else 1
    shape_changes = kwargs["strides"] != 1 or in_channels != out_channels
    project = kwargs["shortcut"] == "C" or (kwargs["shortcut"] == "B" and shape_changes)
    trainable = convs * (conv_weights + 2)
    non_trainable = convs * 2
    if project:
        trainable += 1
        if not kwargs["preactivation"]:  # the post-activation projection has its own BN
            trainable += 2
            non_trainable += 2
    return trainable, non_trainable


RES_UNIT_CASES = [
    pytest.param(
        b, p, s, st, id=f"{'bottleneck' if b else 'basic'}-{'v2' if p else 'v1'}-{s}-s{st}"
    )
    for b in (False, True)
    for p in (True, False)
    for s in ("A", "B", "C", "none")
    for st in (1, 2)
]


@pytest.mark.parametrize("bottleneck, preactivation, shortcut, strides", RES_UNIT_CASES)
def test_res_unit_contract(bottleneck, preactivation, shortcut, strides):
    kwargs, out_channels = _res_unit_case(bottleneck, preactivation, shortcut, strides)
    trainable, non_trainable = _res_unit_weight_counts(kwargs, CHANNELS, out_channels)
    size = -(-SIZE // strides)
    run_layer_test(
        ResUnit,
        kwargs,
        (BATCH, SIZE, SIZE, CHANNELS),
        expected_output_shape=(BATCH, size, size, out_channels),
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=non_trainable,
        # The training check compiles a model: run it on a spread of the cases, not all 32.
        run_training_check=(shortcut, strides) in {("A", 2), ("B", 2), ("C", 1), ("none", 1)},
    )


@pytest.mark.parametrize(
    "extra, in_size",
    [
        pytest.param(
            dict(use_bias=True, kernel_regularizer="l2", kernel_size=5), SIZE, id="bias-l2-k5"
        ),
        pytest.param(dict(zero_init_residual=True), SIZE, id="zero_init"),
        pytest.param({}, 7, id="odd-input"),
    ],
)
@pytest.mark.parametrize("preactivation", [True, False], ids=["v2", "v1"])
def test_res_unit_contract_options(extra, in_size, preactivation):
    strides = 2 if in_size % 2 else 1
    kwargs, out_channels = _res_unit_case(False, preactivation, "B", strides, **extra)
    trainable, non_trainable = _res_unit_weight_counts(kwargs, CHANNELS, out_channels)
    size = -(-in_size // strides)
    run_layer_test(
        ResUnit,
        kwargs,
        (BATCH, in_size, in_size, CHANNELS),
        expected_output_shape=(BATCH, size, size, out_channels),
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=non_trainable,
        # A zero-initialised branch passes no gradient to its other weights at step one.
        expect_all_trainable_weights_updated=not extra.get("zero_init_residual"),
    )


@pytest.mark.parametrize(
    "kwargs, trainable, non_trainable",
    [
        pytest.param({}, 4, 0, id="default"),  # transform and gate: kernel + bias each
        pytest.param(dict(filters=CHANNELS, gate_bias_initializer=-2.0), 4, 0, id="filters-bias2"),
        # BN replaces the transform's bias.
        pytest.param(dict(use_batch_norm=True, activation="tanh"), 5, 2, id="bn-tanh"),
    ],
)
def test_highway_unit_contract(kwargs, trainable, non_trainable):
    run_layer_test(
        HighwayUnit,
        kwargs,
        (BATCH, SIZE, SIZE, CHANNELS),
        expected_output_shape=(BATCH, SIZE, SIZE, CHANNELS),
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=non_trainable,
    )


LAYERS, GROWTH = 3, 4

DENSE_CASES = [
    pytest.param(dict(), id="plain"),
    pytest.param(dict(bottleneck=True), id="bottleneck"),
    pytest.param(dict(dropout_rate=0.2), id="dropout"),
    pytest.param(dict(preactivation=False, include_input=False, output_mode="last"), id="article"),
    pytest.param(dict(bottleneck=True, memory_efficient=True), id="memory_efficient"),
]


@pytest.mark.parametrize("extra", DENSE_CASES)
def test_dense_block_contract(extra):
    kwargs = dict(num_layers=LAYERS, growth_rate=GROWTH, **extra)
    pairs = LAYERS * (2 if extra.get("bottleneck") else 1)  # (BN, conv) pairs
    channels = GROWTH if extra.get("output_mode") == "last" else CHANNELS + LAYERS * GROWTH
    run_layer_test(
        DenseBlock,
        kwargs,
        (BATCH, SIZE, SIZE, CHANNELS),
        expected_output_shape=(BATCH, SIZE, SIZE, channels),
        expected_num_trainable_weights=pairs * 3,
        expected_num_non_trainable_weights=pairs * 2,
    )


@pytest.mark.parametrize(
    "kwargs, in_shape, out_shape",
    [
        pytest.param({}, (BATCH, 8, 8, 10), (BATCH, 4, 4, 5), id="default"),
        # floor(0.5 * 9) = 4 channels; 2x2 'valid' pooling of 9 pixels leaves 4.
        pytest.param(dict(compression=0.5), (BATCH, 9, 9, 9), (BATCH, 4, 4, 4), id="odd"),
        pytest.param(
            dict(compression=1.0, pool=False), (BATCH, 8, 8, 10), (BATCH, 8, 8, 10), id="no-pool"
        ),
    ],
)
def test_transition_layer_contract(kwargs, in_shape, out_shape):
    run_layer_test(
        TransitionLayer,
        kwargs,
        in_shape,
        expected_output_shape=out_shape,
        expected_num_trainable_weights=3,
        expected_num_non_trainable_weights=2,
    )


@pytest.mark.parametrize(
    "layer_cls, kwargs, out_channels, trainable, non_trainable",
    [
        pytest.param(
            ResUnit, dict(filters=2 * CHANNELS, strides=2), 2 * CHANNELS, 7, 4, id="res_unit"
        ),
        pytest.param(
            DenseBlock,
            dict(num_layers=2, growth_rate=GROWTH, bottleneck=True, memory_efficient=True),
            CHANNELS + 2 * GROWTH,
            12,
            8,
            id="dense_block-memory_efficient",
        ),
    ],
)
def test_fit_step_compiled(layer_cls, kwargs, out_channels, trainable, non_trainable):
    """The contract tests fit eagerly on TensorFlow; here the step is a compiled graph."""
    stride = kwargs.get("strides", 1)
    run_layer_test(
        layer_cls,
        kwargs,
        (BATCH, SIZE, SIZE, CHANNELS),
        expected_output_shape=(BATCH, SIZE // stride, SIZE // stride, out_channels),
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=non_trainable,
        run_eagerly=False,
    )


# --------------------------------------------------------------------------------------
# ResUnit against NumPy
# --------------------------------------------------------------------------------------


def np_res_unit(
    x,
    v,
    eps,
    *,
    bottleneck,
    preactivation,
    strides,
    shortcut,
    out_channels,
    padding="symmetric",
    stride_in_1x1=None,
):
    """The residual unit, from He et al. 2015 (Fig. 2, 5; option A/B/C of section 3.3) and
    He et al. 2016 (Fig. 4e; projections read the pre-activated input, as fb.resnet.torch).

    Strides sit on the first conv, except in a bottleneck with `stride_in_1x1=False`
    (the default of the pre-activation bottleneck, fb.resnet.torch), where the 3x3 (the
    second conv) strides.
    """
    convs = 3 if bottleneck else 2
    conv_strides = [1] * convs
    if stride_in_1x1 is None:
        stride_in_1x1 = not preactivation
    conv_strides[1 if bottleneck and not stride_in_1x1 else 0] = strides
    h = x
    preactivated = None
    for i in range(1, convs + 1):
        bn, kernel = bn_of(v, f"bn{i}", eps), v[f"conv{i}/kernel"]
        bias = v.get(f"conv{i}/bias")
        if preactivation:
            h = relu(bn(h))
            if i == 1:
                preactivated = h
            h = np_conv2d(h, kernel, conv_strides[i - 1], bias, padding)
        else:
            h = bn(np_conv2d(h, kernel, conv_strides[i - 1], bias, padding))
            if i < convs:
                h = relu(h)
    in_channels = x.shape[-1]
    shape_changes = strides != 1 or in_channels != out_channels
    if shortcut == "C" or (shortcut == "B" and shape_changes):
        source = preactivated if preactivation else x
        s = np_conv2d(source, v["shortcut_conv/kernel"], strides)
        if not preactivation:
            s = bn_of(v, "shortcut_bn", eps)(s)
    elif shortcut in ("A", "B"):
        # Identity; option A subsamples and zero-pads the new channels.
        s = x[:, ::strides, ::strides]
        s = np.concatenate([s, np.zeros(s.shape[:-1] + (out_channels - in_channels,))], -1)
    else:
        s = 0.0
    y = h + s
    return y if preactivation else relu(y)


@pytest.mark.parametrize("size", [8, 7])
@pytest.mark.parametrize("bottleneck, preactivation, shortcut, strides", RES_UNIT_CASES)
def test_res_unit_matches_numpy(rng, bottleneck, preactivation, shortcut, strides, size):
    kwargs, out_channels = _res_unit_case(bottleneck, preactivation, shortcut, strides)
    x = random_input(rng, (BATCH, size, size, CHANNELS))
    unit = ResUnit(**kwargs)  # padding="symmetric", the default
    unit.build(x.shape)
    values = randomise(unit, rng)
    expected = np_res_unit(
        x.astype("float64"),
        values,
        epsilon_of(unit),
        bottleneck=bottleneck,
        preactivation=preactivation,
        strides=strides,
        shortcut=shortcut,
        out_channels=out_channels,
    )
    assert_close(unit(x, training=False), expected)


@pytest.mark.parametrize("size", [8, 7])
@pytest.mark.parametrize("padding", ["symmetric", "same"])
@pytest.mark.parametrize("bottleneck, stride_in_1x1", [(False, None), (True, True), (True, False)])
@pytest.mark.parametrize("preactivation", [True, False], ids=["v2", "v1"])
def test_strided_unit_padding_and_stride_placement(
    rng, size, padding, bottleneck, stride_in_1x1, preactivation
):
    """Stride 2 at an even and an odd size, each padding, each place of the stride."""
    kwargs, out_channels = _res_unit_case(
        bottleneck, preactivation, "B", 2, padding=padding, stride_in_1x1=stride_in_1x1
    )
    x = random_input(rng, (BATCH, size, size, CHANNELS))
    unit = ResUnit(**kwargs)
    unit.build(x.shape)
    values = randomise(unit, rng)

    def reference(pad):
        return np_res_unit(
            x.astype("float64"),
            values,
            epsilon_of(unit),
            bottleneck=bottleneck,
            preactivation=preactivation,
            strides=2,
            shortcut="B",
            out_channels=out_channels,
            padding=pad,
            stride_in_1x1=stride_in_1x1,
        )

    expected = reference(padding)
    assert_close(unit(x, training=False), expected)
    # The two paddings differ at even sizes and agree at odd ones (TF's SAME splits an even
    # total evenly); a strided 1x1 has no padding, so it is the same either way.
    other = reference("same" if padding == "symmetric" else "symmetric")
    in_1x1 = stride_in_1x1 if stride_in_1x1 is not None else not preactivation
    assert np.allclose(expected, other) == (size % 2 == 1 or (bottleneck and in_1x1))


def test_old_units_load_with_the_padding_they_were_trained_with():
    config = ResUnit(16, strides=2).get_config()
    assert config["padding"] == "symmetric"
    del config["padding"]  # as saved before the argument existed
    assert ResUnit.from_config(config).padding == "same"


def test_res_unit_matches_numpy_with_bias(rng):
    unit = ResUnit(CHANNELS, use_bias=True, preactivation=True)
    x = random_input(rng, (BATCH, SIZE, SIZE, CHANNELS))
    unit.build(x.shape)
    values = randomise(unit, rng)
    expected = np_res_unit(
        x.astype("float64"),
        values,
        epsilon_of(unit),
        bottleneck=False,
        preactivation=True,
        strides=1,
        shortcut="B",
        out_channels=CHANNELS,
    )
    assert_close(unit(x, training=False), expected)


def test_preactivation_basic_unit_written_out(rng):
    """(a) The article's unit, written out: BN-ReLU-conv-BN-ReLU-conv + x."""
    unit = ResUnit(CHANNELS)  # pre-activation, basic, identity shortcut: the defaults
    x = random_input(rng, (BATCH, SIZE, SIZE, CHANNELS))
    unit.build(x.shape)
    v = randomise(unit, rng)
    eps = epsilon_of(unit)
    xd = x.astype("float64")
    h = np_conv2d(relu(bn_of(v, "bn1", eps)(xd)), v["conv1/kernel"])
    h = np_conv2d(relu(bn_of(v, "bn2", eps)(h)), v["conv2/kernel"])
    assert_close(unit(x, training=False), h + xd)


@pytest.mark.parametrize("size", [8, 7])
def test_postactivation_projection_unit_written_out(rng, size):
    """(b) Post-activation basic unit, stride 2, option B: relu(F(x) + BN(W_s x))."""
    unit = ResUnit(2 * CHANNELS, strides=2, preactivation=False, shortcut="B")
    x = random_input(rng, (BATCH, size, size, CHANNELS))
    unit.build(x.shape)
    v = randomise(unit, rng)
    eps = epsilon_of(unit)
    xd = x.astype("float64")
    h = relu(bn_of(v, "bn1", eps)(np_conv2d(xd, v["conv1/kernel"], 2, padding="symmetric")))
    h = bn_of(v, "bn2", eps)(np_conv2d(h, v["conv2/kernel"]))
    s = bn_of(v, "shortcut_bn", eps)(np_conv2d(xd, v["shortcut_conv/kernel"], 2))
    assert v["shortcut_conv/kernel"].shape == (1, 1, CHANNELS, 2 * CHANNELS)
    assert_close(unit(x, training=False), relu(h + s))


@pytest.mark.parametrize("size", [8, 7])
@pytest.mark.parametrize("preactivation", [True, False], ids=["v2", "v1"])
def test_shortcut_a_subsamples_and_zero_pads(rng, preactivation, size):
    """(c) Option A, stride 2: x[:, ::2, ::2] with zero channels appended, and no weights."""
    unit = ResUnit(2 * CHANNELS, strides=2, preactivation=preactivation, shortcut="A")
    x = random_input(rng, (BATCH, size, size, CHANNELS))
    unit.build(x.shape)
    assert not any("shortcut" in w.path for w in unit.weights)
    # Silence the residual branch; at initialisation a post-activation BN maps 0 to 0.
    for role, w in weights_by_role(unit).items():
        if role.endswith("kernel"):
            w.assign(np.zeros(w.shape, "float32"))
    y = to_numpy(unit(x, training=False))
    expected = np.zeros((BATCH, -(-size // 2), -(-size // 2), 2 * CHANNELS))
    expected[..., :CHANNELS] = x[:, ::2, ::2]
    if not preactivation:
        expected = relu(expected)
    np.testing.assert_allclose(y, expected, atol=1e-6)


@pytest.mark.parametrize("preactivation", [True, False], ids=["v2", "v1"])
@pytest.mark.parametrize("training", [False, True])
def test_zero_init_residual_starts_as_identity(rng, preactivation, training):
    """(f) Goyal et al. 2017: with an identity shortcut, a v1 unit starts as relu(x), v2 as x."""
    unit = ResUnit(CHANNELS, preactivation=preactivation, zero_init_residual=True)
    x = random_input(rng, (BATCH, SIZE, SIZE, CHANNELS))
    y = to_numpy(unit(x, training=training))
    np.testing.assert_allclose(y, x if preactivation else relu(x), atol=1e-6)
    # ... and the same unit without zero_init does not.
    plain = to_numpy(ResUnit(CHANNELS, preactivation=preactivation)(x, training=training))
    assert np.abs(plain - y).max() > 1e-2


def test_zero_init_residual_bottleneck(rng):
    for preactivation in (True, False):
        unit = ResUnit(
            CHANNELS // 4, bottleneck=True, preactivation=preactivation, zero_init_residual=True
        )
        x = random_input(rng, (BATCH, SIZE, SIZE, CHANNELS))
        y = to_numpy(unit(x, training=False))
        np.testing.assert_allclose(y, x if preactivation else relu(x), atol=1e-6)


# --------------------------------------------------------------------------------------
# HighwayUnit against NumPy
# --------------------------------------------------------------------------------------


def _highway_case(rng, **kwargs):
    """A built HighwayUnit with random weights, an input, and its NumPy output."""
    unit = HighwayUnit(**kwargs)
    x = random_input(rng, (BATCH, SIZE, SIZE, CHANNELS))
    unit.build(x.shape)
    v = randomise(unit, rng)
    xd = x.astype("float64")
    h = relu(np_conv2d(xd, v["transform/kernel"], 1, v["transform/bias"]))
    t = sigmoid(np_conv2d(xd, v["gate/kernel"], 1, v["gate/bias"]))
    return unit, x, h * t + xd * (1.0 - t)


HIGHWAY_POLICIES = [("float32", 1e-4), ("mixed_bfloat16", 3e-2)]


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("policy, tol", HIGHWAY_POLICIES)
def test_highway_unit_matches_numpy(rng, training, policy, tol):
    """(d) y = H(x) T(x) + x (1 - T(x)), H = relu(conv), T = sigmoid(conv) (Srivastava 2015);
    in training on TensorFlow, through the XLA-fused mix (`_fused_gate`)."""
    unit, x, expected = _highway_case(rng, dtype=policy)
    assert_close(unit(x, training=training), expected, tol)


def test_highway_unit_with_batch_norm_matches_numpy(rng):
    unit = HighwayUnit(use_batch_norm=True)
    x = random_input(rng, (BATCH, SIZE, SIZE, CHANNELS))
    unit.build(x.shape)
    v = randomise(unit, rng)
    xd = x.astype("float64")
    h = relu(bn_of(v, "transform_bn", epsilon_of(unit))(np_conv2d(xd, v["transform/kernel"])))
    t = sigmoid(np_conv2d(xd, v["gate/kernel"], 1, v["gate/bias"]))
    assert_close(unit(x, training=False), h * t + xd * (1.0 - t))


@pytest.mark.parametrize("gate_bias", [-1.0, -3.0])
def test_highway_gate_starts_at_its_bias(rng, gate_bias):
    """With the gate kernel zeroed, T = sigmoid(b) everywhere: y = x + sigmoid(b) (H - x)."""
    unit = HighwayUnit(gate_bias_initializer=gate_bias) if gate_bias != -1.0 else HighwayUnit()
    x = random_input(rng, (BATCH, SIZE, SIZE, CHANNELS))
    unit.build(x.shape)
    roles = weights_by_role(unit)
    np.testing.assert_array_equal(to_numpy(roles["gate/bias"]), gate_bias)  # the initial bias
    roles["gate/kernel"].assign(np.zeros(roles["gate/kernel"].shape, "float32"))
    v = {role: to_numpy(w) for role, w in roles.items()}
    xd = x.astype("float64")
    h = relu(np_conv2d(xd, v["transform/kernel"], 1, v["transform/bias"]))
    assert_close(unit(x), xd + sigmoid(gate_bias) * (h - xd))


def _xla_compiled(unit, x, *, training):
    """The XLA-compiled functions in the TensorFlow graph of `unit(x, training=...)`."""
    import tensorflow as tf

    call = tf.function(lambda inputs: unit(inputs, training=training))
    graph = call.get_concrete_function(tf.TensorSpec(x.shape, tf.float32)).graph
    library = graph.as_graph_def().library.function
    return [f.signature.name for f in library if f.attr["_XlaMustCompile"].b]


@pytest.mark.skipif(not TF, reason="other backends run the same keras.ops in training")
@pytest.mark.parametrize("policy, tol", HIGHWAY_POLICIES)
def test_highway_unit_fuses_its_mix_in_training_only(rng, policy, tol):
    """On TensorFlow the training mix is one XLA kernel whose gradients are the plain ops'."""
    import tensorflow as tf

    unit, x, _ = _highway_case(rng, dtype=policy)
    # Fused in training only, and only when asked: inference (and so export) stays plain.
    assert _xla_compiled(unit, x, training=True)
    assert _xla_compiled(unit, x, training=False) == []
    assert _xla_compiled(HighwayUnit(fused=False, dtype=policy), x, training=True) == []

    inputs = tf.constant(x)
    upstream = rng.standard_normal(x.shape).astype("float32")

    def gradients(training):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = tf.cast(unit(inputs, training=training), tf.float32)
            loss = tf.reduce_sum(y * upstream)
        return tape.gradient(loss, [inputs, *unit.trainable_weights])

    for fused, plain in zip(gradients(True), gradients(False), strict=True):
        fused, plain = to_numpy(fused), to_numpy(plain)
        # A kernel's gradient sums products over the batch and the image, rounded at each
        # step in bfloat16 (8 significant bits), in whatever order each kernel sums: an
        # element's error grows with the terms summed, up to the array's largest values, not
        # its own. So the tolerance scales with the array (an AVX2-only CPU, which emulates
        # bfloat16, differed by 0.0625 on one of 576 elements near 0.8, among values up to 11).
        atol = tol * float(np.abs(plain).max())
        np.testing.assert_allclose(fused, plain, rtol=tol, atol=atol)


# --------------------------------------------------------------------------------------
# DenseBlock and TransitionLayer against NumPy
# --------------------------------------------------------------------------------------


def np_dense_block(x, v, eps, *, num_layers, bottleneck, preactivation, include_input, output_mode):
    """Huang et al. 2017, section 3: layer i maps the concatenation of [x, y_0..y_i-1]."""

    def unit(h, bn, conv):
        if preactivation:
            return np_conv2d(relu(bn_of(v, bn, eps)(h)), v[f"{conv}/kernel"])
        return relu(bn_of(v, bn, eps)(np_conv2d(h, v[f"{conv}/kernel"])))

    outputs = []
    for i in range(num_layers):
        features = ([x] if include_input or not outputs else []) + outputs
        h = np.concatenate(features, axis=-1)
        if bottleneck:
            h = unit(h, f"layer{i}_bottleneck_bn", f"layer{i}_bottleneck_conv")
        outputs.append(unit(h, f"layer{i}_bn", f"layer{i}_conv"))
    return outputs[-1] if output_mode == "last" else np.concatenate([x] + outputs, axis=-1)


@pytest.mark.parametrize("extra", DENSE_CASES)
def test_dense_block_matches_numpy(rng, extra):
    kwargs = dict(num_layers=LAYERS, growth_rate=GROWTH, **extra)
    block = DenseBlock(**kwargs)
    x = random_input(rng, (BATCH, SIZE, SIZE, CHANNELS))
    block.build(x.shape)
    v = randomise(block, rng)
    expected = np_dense_block(
        x.astype("float64"),
        v,
        epsilon_of(block),
        num_layers=LAYERS,
        bottleneck=extra.get("bottleneck", False),
        preactivation=extra.get("preactivation", True),
        include_input=extra.get("include_input", True),
        output_mode=extra.get("output_mode", "concat"),
    )
    y = block(x, training=False)  # dropout is off at inference
    assert_close(y, expected)


@pytest.mark.parametrize("bottleneck", [False, True])
def test_dense_block_concatenates_its_input(rng, bottleneck):
    """(e) The block's output starts with its input; each layer adds k channels."""
    layers_, k = 4, 5
    block = DenseBlock(layers_, k, bottleneck=bottleneck)
    x = random_input(rng, (BATCH, SIZE, SIZE, CHANNELS))
    y = to_numpy(block(x, training=True))
    assert y.shape[-1] == CHANNELS + layers_ * k
    np.testing.assert_array_equal(y[..., :CHANNELS], x)


def _loss_and_grads(layer, x, r):
    """sum(layer(x) * r) and its gradients w.r.t. the trainable weights, in training mode."""
    if TF:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, training=True) * r)
        grads = tape.gradient(loss, layer.trainable_variables)
        return to_numpy(loss), [to_numpy(g) for g in grads]
    if JAX:
        import jax

        non_trainable = [v.value for v in layer.non_trainable_variables]

        def loss_fn(trainable):
            y, _ = layer.stateless_call(trainable, non_trainable, x, training=True)
            return ops.sum(y * r)

        loss, grads = jax.value_and_grad(loss_fn)([v.value for v in layer.trainable_variables])
        return to_numpy(loss), [to_numpy(g) for g in grads]
    pytest.skip(f"no gradient check written for the {keras.backend.backend()} backend")


@pytest.mark.parametrize("bottleneck", [True, False])
def test_memory_efficient_dense_block_is_the_same_function(rng, bottleneck):
    """(e) Recomputation (Pleiss et al. 2017) changes memory, not outputs or gradients."""
    x = random_input(rng, (BATCH, SIZE, SIZE, CHANNELS))
    blocks = [
        DenseBlock(LAYERS, GROWTH, bottleneck=bottleneck, memory_efficient=m) for m in (False, True)
    ]
    for b in blocks:
        b.build(x.shape)
    randomise(blocks[0], rng)
    blocks[1].set_weights(blocks[0].get_weights())
    values_before = {w.path: to_numpy(w) for w in blocks[0].non_trainable_variables}
    for training in (False, True):
        np.testing.assert_allclose(
            to_numpy(blocks[1](x, training=training)),
            to_numpy(blocks[0](x, training=training)),
            rtol=1e-5,
            atol=1e-5,
        )
    r = random_input(rng, (BATCH, SIZE, SIZE, CHANNELS + LAYERS * GROWTH))
    (loss0, grads0), (loss1, grads1) = (_loss_and_grads(b, x, r) for b in blocks)
    np.testing.assert_allclose(loss1, loss0, rtol=1e-5)
    assert len(grads0) == len(grads1) == len(blocks[0].trainable_variables)
    for g0, g1, w in zip(grads0, grads1, blocks[0].trainable_variables):
        assert np.abs(g0).max() > 0, w.path
        np.testing.assert_allclose(g1, g0, rtol=1e-4, atol=1e-4, err_msg=w.path)
    # Both blocks ran the same training-mode calls: the BN moving statistics moved, once
    # per call, by the same amounts (recomputation must not update them twice).
    moved = False
    for w0, w1 in zip(blocks[0].non_trainable_variables, blocks[1].non_trainable_variables):
        moved = moved or not np.array_equal(to_numpy(w0), values_before[w0.path])
        np.testing.assert_allclose(
            to_numpy(w1), to_numpy(w0), rtol=1e-5, atol=1e-6, err_msg=w1.path
        )
    assert moved


def test_transition_layer_matches_numpy(rng):
    """Huang et al. 2017, section 3: BN-ReLU-conv1x1 to floor(theta * C), 2x2 average pool."""
    layer = TransitionLayer(0.5)
    x = random_input(rng, (BATCH, 9, 9, 9))
    layer.build(x.shape)
    v = randomise(layer, rng)
    assert v["conv/kernel"].shape == (1, 1, 9, 4)
    h = np_conv2d(relu(bn_of(v, "bn", epsilon_of(layer))(x.astype("float64"))), v["conv/kernel"])
    assert_close(layer(x, training=False), np_avg_pool2(h))


# --------------------------------------------------------------------------------------
# data_format
# --------------------------------------------------------------------------------------


def _tensorflow_on_cpu_only():
    if not TF:
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


@pytest.mark.skipif(
    _tensorflow_on_cpu_only(), reason="TensorFlow's CPU Conv2D is channels_last only"
)
@pytest.mark.parametrize(
    "layer_cls, kwargs",
    [
        pytest.param(ResUnit, dict(filters=16, strides=2, shortcut="A"), id="res_unit-A"),
        pytest.param(
            ResUnit,
            dict(filters=4, strides=2, bottleneck=True, preactivation=False),
            id="res_unit-B",
        ),
        pytest.param(
            DenseBlock, dict(num_layers=2, growth_rate=4, bottleneck=True), id="dense_block"
        ),
        pytest.param(HighwayUnit, dict(use_batch_norm=True), id="highway"),
        pytest.param(TransitionLayer, {}, id="transition"),
    ],
)
def test_channels_first_matches_channels_last(rng, layer_cls, kwargs):
    """The same weights give the same function, transposed, in either data format."""
    x = random_input(rng, (BATCH, 7, 7, CHANNELS))
    last = layer_cls(data_format="channels_last", **kwargs)
    first = layer_cls(data_format="channels_first", **kwargs)
    last.build(x.shape)
    first.build((BATCH, CHANNELS, 7, 7))
    values = randomise(last, rng)
    first.set_weights(
        [values["/".join(w.path.split("/")[-2:])].astype("float32") for w in first.weights]
    )
    y_first = to_numpy(first(np.transpose(x, (0, 3, 1, 2)), training=False))
    assert_close(np.transpose(y_first, (0, 2, 3, 1)), to_numpy(last(x, training=False)), 1e-5)


# --------------------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, match",
    [
        pytest.param(lambda: ResUnit(8, shortcut="D"), "Received: shortcut='D'", id="shortcut-D"),
        pytest.param(lambda: ResUnit(8, strides=3), "Received: strides=3", id="strides-3"),
        pytest.param(lambda: ResUnit(0), "Received: filters=0", id="filters-0"),
        pytest.param(
            lambda: HighwayUnit(gate_bias_initializer=1.0), "Received", id="positive-gate-bias"
        ),
        pytest.param(lambda: HighwayUnit(fused="no"), "Received: fused='no'", id="fused-str"),
        pytest.param(
            lambda: DenseBlock(3, 4, output_mode="x"), "Received: output_mode='x'", id="output-mode"
        ),
        pytest.param(lambda: DenseBlock(0, 4), "Received: num_layers=0", id="num-layers-0"),
        pytest.param(lambda: TransitionLayer(0), "Received: compression=0", id="compression-0"),
        pytest.param(
            lambda: TransitionLayer(1.5), "Received: compression=1.5", id="compression-1.5"
        ),
        # Text for a bool is truthy: "False" once built a bottleneck unit. A bool is no
        # count (True once made a 1-filter unit), and a float is no kernel size.
        pytest.param(
            lambda: ResUnit(4, bottleneck="False"), "Received: bottleneck='False'", id="text-bool"
        ),
        pytest.param(lambda: ResUnit(True), "Received: filters=True", id="filters-bool"),
        pytest.param(lambda: ResUnit(8, 2.5), "Received: kernel_size=2.5", id="kernel-float"),
        pytest.param(lambda: ResUnit(8, expansion=1.5), "Received: expansion=1.5", id="expansion"),
        pytest.param(
            lambda: HighwayUnit(use_batch_norm="False"),
            "Received: use_batch_norm='False'",
            id="highway-text-bool",
        ),
        pytest.param(
            lambda: HighwayUnit(gate_bias_initializer="-1"),
            "Received: gate_bias_initializer='-1'",
            id="gate-bias-text",
        ),
        pytest.param(lambda: HighwayUnit("16"), "Received: filters='16'", id="highway-filters"),
        pytest.param(
            lambda: DenseBlock(2, 4, memory_efficient="no"),
            "Received: memory_efficient='no'",
            id="dense-text-bool",
        ),
        pytest.param(lambda: DenseBlock(True, 4), "Received: num_layers=True", id="layers-bool"),
        pytest.param(
            lambda: DenseBlock(2, 4, bottleneck_width=2.5),
            "Received: bottleneck_width=2.5",
            id="bottleneck-width",
        ),
        pytest.param(
            lambda: DenseBlock(2, 4, dropout_rate="0.2"),
            "Received: dropout_rate='0.2'",
            id="dropout-text",
        ),
        pytest.param(lambda: TransitionLayer("0.5"), "Received: compression='0.5'", id="text"),
        pytest.param(lambda: TransitionLayer(pool="False"), "Received: pool='False'", id="pool"),
    ],
)
def test_bad_constructor_arguments(make, match):
    with pytest.raises(ValueError, match=match) as error:
        make()
    assert "\n" not in str(error.value)


def test_kernel_sizes_may_be_pairs_as_keras_takes_them():
    # A `.keras` file stores a pair as a list: both must load, as Conv2D's do.
    unit = ResUnit.from_config({**ResUnit(8, (3, 3)).get_config(), "kernel_size": [3, 3]})
    assert unit.kernel_size == (3, 3)
    assert HighwayUnit(None, (3, 3)).kernel_size == (3, 3)
    with pytest.raises(ValueError, match=r"Received: kernel_size=\(3, 0\)"):
        ResUnit(8, (3, 0))


def test_numpy_integer_counts_are_counts():
    # NumPy integers (from a config sweep, say) build the same layers as Python ints.
    assert ResUnit(np.int64(8)).get_config()["filters"] == 8
    assert DenseBlock(np.int32(2), np.int64(4)).get_config()["growth_rate"] == 4
    assert keras_resnets.build("cifar_resnet", depth=8, classes=np.int64(5)).output_shape == (
        None,
        5,
    )


def test_a_transition_that_would_pool_to_nothing_is_named():
    with pytest.raises(ValueError, match="needs height and width of at least 2"):
        TransitionLayer(0.5)(keras.Input((1, 1, 16)))
    assert TransitionLayer(0.5, pool=False)(keras.Input((1, 1, 16))).shape == (None, 1, 1, 8)


def test_a_compression_that_leaves_no_channel_is_named():
    # int(0.01 * 16) = 0 filters: Keras's own message named `filters`, which no one passed.
    with pytest.raises(ValueError, match=r"Received: compression=0.01$"):
        TransitionLayer(0.01)(keras.Input((8, 8, 16)))


def test_highway_filters_must_match_input_channels():
    unit = HighwayUnit(filters=CHANNELS + 1)
    with pytest.raises(ValueError, match=f"Received: filters={CHANNELS + 1}"):
        unit(np.zeros((1, SIZE, SIZE, CHANNELS), "float32"))
    with pytest.raises(ValueError, match="Received"):
        HighwayUnit(filters=3)(keras.Input((SIZE, SIZE, CHANNELS)))


def test_shortcut_a_cannot_narrow():
    with pytest.raises(ValueError, match="Received"):
        ResUnit(4, shortcut="A")(np.zeros((1, SIZE, SIZE, CHANNELS), "float32"))


# --------------------------------------------------------------------------------------
# BatchNormalization: Keras's layer, with TensorFlow's fused training kernel
# --------------------------------------------------------------------------------------


def test_batch_norm_layer_contract():
    run_layer_test(
        BatchNormalization,
        {"momentum": 0.9, "epsilon": 1e-5},
        (4, 5, 5, 3),
        expected_output_shape=(4, 5, 5, 3),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=2,
    )


def _np_bn_training(x, gamma, beta, axis, epsilon):
    """Training-mode BN in float64: batch mean and biased variance over all but `axis`."""
    axes = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    shape = [1] * x.ndim
    shape[axis] = -1
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + epsilon)
    return y * gamma.reshape(shape) + beta.reshape(shape), mean, var


@pytest.mark.parametrize(
    "policy, axis",
    [
        ("float32", -1),
        pytest.param("float32", 1, marks=pytest.mark.skipif(JAX, reason="XLA CPU: no NCHW conv")),
        ("mixed_bfloat16", -1),
        ("mixed_float16", -1),
    ],
)
def test_batch_norm_training_matches_keras_and_numpy(policy, axis):
    """Outputs, input and parameter gradients, and moving statistics equal Keras's own
    BatchNormalization, and the statistics equal a NumPy reference."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        rng = np.random.default_rng(0)
        x = rng.normal(2.0, 3.0, (8, 5, 6, 4)).astype("float32")
        kwargs = dict(axis=axis, momentum=0.9, epsilon=1e-5)
        ours = BatchNormalization(**kwargs)
        ref = keras.layers.BatchNormalization(**kwargs)
        ours.build(x.shape)
        ref.build(x.shape)
        channels = x.shape[axis]
        gamma = rng.normal(1.0, 0.5, channels).astype("float32")
        beta = rng.normal(0.0, 0.5, channels).astype("float32")
        for layer in (ours, ref):
            layer.gamma.assign(gamma)
            layer.beta.assign(beta)
        upstream = rng.standard_normal(x.shape).astype("float32")

        def forward_and_grads(layer):
            # Gradients of sum(y * upstream) by the backend's own autodiff.
            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                xs = tf.constant(x)
                with tf.GradientTape() as tape:
                    tape.watch(xs)
                    y = layer(xs, training=True)
                    loss = tf.reduce_sum(tf.cast(y, "float32") * upstream)
                grads = tape.gradient(loss, [xs, layer.gamma.value, layer.beta.value])
                return y, [g.numpy() for g in grads]
            import jax

            def loss_fn(xs, g, b):
                trainable = [g, b]
                non_trainable = [v.value for v in layer.non_trainable_variables]
                y, _ = layer.stateless_call(trainable, non_trainable, xs, training=True)
                return (y.astype("float32") * upstream).sum()

            y = layer(x, training=True)
            grads = jax.grad(loss_fn, argnums=(0, 1, 2))(x, gamma, beta)
            return y, [np.asarray(g) for g in grads]

        y_ours, g_ours = forward_and_grads(ours)
        y_ref, g_ref = forward_and_grads(ref)
        assert keras.backend.standardize_dtype(y_ours.dtype) == ours.compute_dtype
        y_ours = ops.convert_to_numpy(ops.cast(y_ours, "float32"))
        y_ref = ops.convert_to_numpy(ops.cast(y_ref, "float32"))
        # Outputs in a 16-bit dtype may differ by one rounding step.
        tol = 1e-5 if policy == "float32" else 2e-2
        np.testing.assert_allclose(y_ours, y_ref, rtol=tol, atol=tol)
        for a, b in zip(g_ours, g_ref):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * np.abs(b).max())
        for a, b in zip(ours.non_trainable_weights, ref.non_trainable_weights):
            np.testing.assert_allclose(
                ops.convert_to_numpy(a), ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6
            )

        # The moving statistics moved 10% of the way to the batch's mean and biased variance.
        # The layer sees its input in its compute dtype (bfloat16/float16 under mixed policies).
        x_seen = ops.convert_to_numpy(ops.cast(ops.cast(x, ours.compute_dtype), "float32"))
        y_np, mean, var = _np_bn_training(x_seen.astype("float64"), gamma, beta, axis, 1e-5)
        np.testing.assert_allclose(
            ops.convert_to_numpy(ours.moving_mean), 0.1 * mean, rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            ops.convert_to_numpy(ours.moving_variance), 0.9 + 0.1 * var, rtol=1e-5
        )
        np.testing.assert_allclose(y_ours, y_np, rtol=tol, atol=tol * np.abs(y_np).max())
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_models_use_the_package_batch_norm():
    import keras_resnets

    model = keras_resnets.build("cifar_resnet", depth=20)
    bns = [
        layer
        for layer in sublayers(model, include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert bns and all(type(layer) is BatchNormalization for layer in bns)
