"""Every registered model, and the papers' parameter and FLOP counts.

The reference figures come from outside this package: the papers' tables, torchvision's
published weight metadata, and `keras.applications` models built in the test.
"""

import functools
import inspect
import os

import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.accounting import count_macs, count_params, sublayers
from keras_resnets.layers import DenseBlock, HighwayUnit, ResUnit
from keras_resnets.models import get_builder

# Too slow to build for the default run; CI runs them with -m slow. (resnet152_v2 is as big
# as resnet152; resnet101_v2 repeats resnet50_v2's units.)
SLOW_MODELS = {"resnet152", "resnet152_v2", "resnet200_v2", "densenet264", "resnet101_v2"}
# Saving and loading costs several times the build. The default run round-trips one model of
# each family and unit type; deeper variants of the same layers run with -m slow.
SLOW_ROUND_TRIPS = SLOW_MODELS | {
    "resnet34",
    "plain34",
    "resnet101",
    "resnet101_v2",
    "densenet169",
    "densenet201",
    "cifar_preact_resnet",  # resnet50_v2's units
    "cifar_densenet_bc",  # densenet121's blocks and transitions
    "densenet121",  # its blocks are cifar_densenet_bc's; the default run must stay ~10 min
}
# ImageNet models, as the registry declares them; everything else is a CIFAR-10 network
# (the CIFAR families and the article's nets) with a (32, 32, 3) default input and 10 classes.
IMAGENET_MODELS = {
    n for n in keras_resnets.list_models() if keras_resnets.models.get_info(n).dataset == "imagenet"
}
SMALL_INPUT = (32, 32, 3)


def _param(value, slow=False):
    return pytest.param(value, marks=pytest.mark.slow) if slow else value


def _model_params(slow):
    return [_param(name, name in slow) for name in keras_resnets.list_models()]


def _built(name, **kwargs):
    """Build each model once per module: several tests read the same one.

    Arguments equal to the builder's defaults are dropped, so that `depth=20` and no depth
    share one model.
    """
    defaults = inspect.signature(get_builder(name)).parameters
    kwargs = {k: v for k, v in kwargs.items() if k not in defaults or defaults[k].default != v}
    return _build_cached(name, **kwargs)


@functools.lru_cache(maxsize=None)
def _build_cached(name, **kwargs):
    keras.utils.set_random_seed(0)
    return keras_resnets.build(name, **kwargs)


def _small(name):
    """The registry model at the small input the tests use."""
    return _built(name, input_shape=SMALL_INPUT) if name in IMAGENET_MODELS else _built(name)


@pytest.fixture(scope="module", autouse=True)
def _free_models():
    yield
    _build_cached.cache_clear()


def _images(batch=2, shape=SMALL_INPUT, seed=0):
    """Raw pixels: uint8 values as float32, as the models' preprocessing expects."""
    return np.random.default_rng(seed).integers(0, 256, (batch,) + shape).astype("float32")


def _predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _layers(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


# --------------------------------------------------------------------------------------
# Every registered model
# --------------------------------------------------------------------------------------


def test_the_registry_is_populated():
    # Guards the parametrisation below against an empty registry.
    names = keras_resnets.list_models()
    assert {
        "resnet50",
        "densenet121",
        "cifar_resnet",
        "highway",
        "resnet",
        "densenet",
        "plain",
    } <= set(names)
    assert SLOW_MODELS <= set(names)


@pytest.mark.parametrize("name", _model_params(SLOW_MODELS))
def test_registered_model(name):
    """Builds at a small input; a batch of raw pixels gives finite class probabilities."""
    model = _small(name)
    classes = 1000 if name in IMAGENET_MODELS else 10
    y = _predict(model, _images())
    assert y.shape == (2, classes)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", _model_params(SLOW_ROUND_TRIPS))
def test_save_load_round_trip(name, tmp_path):
    model = _small(name)
    x = _images(seed=1)
    y = _predict(model, x)
    path = os.path.join(tmp_path, f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects: every layer is registered
    assert loaded.name == model.name
    assert [lyr.name for lyr in loaded.layers] == [lyr.name for lyr in model.layers]
    np.testing.assert_array_equal(_predict(loaded, x), y)


@pytest.mark.parametrize("name", _model_params(SLOW_MODELS))
def test_registry_facts_match_the_built_model(name):
    """The dataset facts declared beside each builder are what the builder builds."""
    info = keras_resnets.models.get_info(name)
    model = _built(name)
    assert tuple(model.input_shape[1:]) == info.input_shape
    assert model.output_shape == (None, info.classes)
    normalization = model.get_layer("normalization")
    np.testing.assert_allclose(
        np.ravel(keras.ops.convert_to_numpy(normalization.mean)),
        [255 * m for m in info.mean],
        rtol=1e-6,
    )


def test_readme_weights_table_is_generated_from_the_registry(tmp_path):
    # The weights table builds no model (the model table builds all 45, which is too slow
    # for a test): regenerating it must change nothing.
    from keras_resnets import model_table

    readme = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")
    copy = tmp_path / "README.md"
    copy.write_text(open(readme).read())
    changed = model_table.update_readme(copy, tables=["weights-table"])
    assert changed is False, "run python -m keras_resnets.model_table --weights-only"


def _kernels(model):
    return [(w.path, keras.ops.convert_to_numpy(w)) for w in model.weights if w.name == "kernel"]


def _copies(kernels):
    """Paths of kernels that equal an earlier kernel of the same shape (all-zero kernels,
    the zero-initialised residual branches, are not draws and are left out)."""
    seen, copies = {}, []
    for path, k in kernels:
        if not k.any():
            continue
        key = (k.shape, k.tobytes())
        if key in seen:
            copies.append((path, seen[key]))
        seen.setdefault(key, path)
    return copies


@pytest.mark.parametrize("name", _model_params(SLOW_MODELS))
def test_no_two_kernels_start_equal(name):
    """Each sublayer draws its own kernel: Keras 3 returns identical values from one
    unseeded initializer instance, so a shared one made every unit's conv1 and conv2 equal."""
    kernels = _kernels(_small(name))
    assert len(kernels) > 3
    assert _copies(kernels) == []


@pytest.mark.parametrize(
    "name",
    [
        "cifar_resnet",
        "highway",
        pytest.param("cifar_densenet_bc", marks=pytest.mark.slow),
        "resnet18",
    ],
)
def test_set_random_seed_makes_a_build_reproducible(name):
    def build():
        keras.utils.set_random_seed(7)
        kwargs = {"input_shape": SMALL_INPUT} if name in IMAGENET_MODELS else {}
        return _kernels(keras_resnets.build(name, **kwargs))

    first, second = build(), build()
    assert [p for p, _ in first] == [p for p, _ in second]
    for (path, a), (_, b) in zip(first, second):
        np.testing.assert_array_equal(a, b, err_msg=path)
    keras.utils.set_random_seed(8)
    other = _kernels(
        keras_resnets.build(
            name, **({"input_shape": SMALL_INPUT} if name in IMAGENET_MODELS else {})
        )
    )
    assert not np.array_equal(first[0][1], other[0][1])


def test_a_seeded_initializer_gives_distinct_reproducible_draws():
    def unit_kernels():
        x = keras.Input((8, 8, 16))
        y = ResUnit(16, kernel_initializer=keras.initializers.HeNormal(seed=3), name="u1")(x)
        y = ResUnit(16, kernel_initializer=keras.initializers.HeNormal(seed=3), name="u2")(y)
        y = HighwayUnit(kernel_initializer=keras.initializers.HeNormal(seed=3), name="h")(y)
        return _kernels(keras.Model(x, y))

    first = unit_kernels()
    keras.utils.set_random_seed(99)  # an explicit seed does not depend on the global one
    second = unit_kernels()
    assert len(first) == 6 and _copies(first) == []
    for (path, a), (_, b) in zip(first, second):
        np.testing.assert_array_equal(a, b, err_msg=path)


# --------------------------------------------------------------------------------------
# Parameter counts against independent figures
# --------------------------------------------------------------------------------------

# torchvision.models, `num_params` of each model's IMAGENET1K_V1 weights (the same
# architectures: no conv biases, the stride on the first bottleneck conv makes no count
# difference). Exact.
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
}


@pytest.mark.parametrize("name", [_param(n, n in SLOW_MODELS) for n in TORCHVISION_PARAMS])
def test_params_match_torchvision(name):
    assert count_params(_small(name)) == TORCHVISION_PARAMS[name]


def _conv_bias_sizes(model):
    return sum(
        int(np.prod(layer.bias.shape))
        for layer in sublayers(model)
        if isinstance(layer, keras.layers.Conv2D) and layer.use_bias
    )


@pytest.mark.parametrize(
    "application, ours, keras_total",
    [
        # keras.applications' ResNets carry conv biases (redundant before BN); Caffe's and
        # torchvision's do not. Its documented total is 25,636,712.
        ("ResNet50", "resnet50", 25_636_712),
        # ResNet50V2 strides the last unit of a stage, we the first (He et al. 2016's code):
        # the count does not depend on where the stride sits.
        ("ResNet50V2", "resnet50_v2", None),
        ("DenseNet121", "densenet121", None),
    ],
)
def test_params_match_keras_applications(application, ours, keras_total):
    reference = getattr(keras.applications, application)(weights=None, include_top=True)
    if keras_total is not None:
        assert reference.count_params() == keras_total
    expected = count_params(reference) - _conv_bias_sizes(reference)
    # At 224x224, shared with the multiply-add tests; the count does not depend on the size.
    assert count_params(_built(ours)) == expected
    if application == "ResNet50":
        # Same stride placement (Caffe's: on the first 1x1), hence the same multiply-adds.
        assert count_macs(_built(ours)) == count_macs(reference)


def _assert_paper_millions(count, printed):
    """`count` rounds to the paper's printed figure (in millions): within half its last digit."""
    text = repr(printed)
    decimals = len(text.split(".")[1]) if "." in text else 0
    assert abs(count / 1e6 - printed) <= 0.5 * 10**-decimals + 1e-12, (count, printed)


# He et al. 2015, "Deep Residual Learning", Table 6 (CIFAR-10), "# params".
CIFAR_RESNET_PAPER = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7, 1202: 19.4}


@pytest.mark.parametrize("depth", [_param(d, d == 1202) for d in CIFAR_RESNET_PAPER])
def test_cifar_resnet_params_match_he_2015_table6(depth):
    model = _built("cifar_resnet", depth=depth)
    _assert_paper_millions(count_params(model), CIFAR_RESNET_PAPER[depth])


@pytest.mark.parametrize("depth", [20, 56])
def test_cifar_plain_has_the_resnet_count(depth):
    # Option A adds no parameters (He et al. 2015, section 4.2): plain and residual nets
    # have the same counts.
    resnet = _built("cifar_resnet", depth=depth)
    plain = _built("cifar_plain", depth=depth)
    assert all(u.shortcut == "none" for u in _layers(plain, ResUnit))
    assert count_params(plain) == count_params(resnet)


# He et al. 2016, "Identity Mappings in Deep Residual Networks", Table 3 / section 4
# (CIFAR-10, "#params").
PREACT_PAPER = {110: 1.7, 164: 1.7, 1001: 10.2}


def _conv_dense_params(model):
    return sum(
        int(np.prod(w.shape))
        for layer in sublayers(model, include_self=False)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
        for w in layer.trainable_weights
    )


def _lua_preact_bottleneck_params(depth):
    """The parameters of the authors' released ResNet-164/1001 (KaimingHe/resnet-1k-layers,
    resnet-pre-act.lua), counted from that file's layer list: a 3x3 stem to 16 channels; three
    stages of (depth - 2) / 9 bottleneck units with outputs 64, 128, 256 and a quarter of that
    inside; BN(in) first in every unit, a 1x1 projection where the width changes; a final BN
    and a 256-to-10 linear layer. Convolutions have no bias (cuDNN >= 4); BN has 2 per channel.
    """
    n = (depth - 2) // 9

    def unit(c_in, c_out):
        b = c_out // 4
        convs = c_in * b + 9 * b * b + b * c_out + (c_in * c_out if c_in != c_out else 0)
        return convs + 2 * (c_in + b + b)

    total = 3 * 3 * 3 * 16
    for c_in, c_out in ((16, 64), (64, 128), (128, 256)):
        total += unit(c_in, c_out) + (n - 1) * unit(c_out, c_out)
    return total + 2 * 256 + 256 * 10 + 10


@pytest.mark.parametrize("depth", [_param(d, d == 1001) for d in PREACT_PAPER])
def test_preact_resnet_params_match_he_2016(depth):
    # The 2016 paper's "#params" counts convolution and linear weights only: ResNet-1001 has
    # 10.18M of those (printed 10.2M) and 10.33M with BN's scale and offset. Its ResNet-164
    # (1.68M / 1.70M) and ResNet-110 (1.73M / 1.73M) round to 1.7M either way. (The 2015
    # paper counts BN: its ResNet-1202 is 19.42M with BN, 19.33M without, printed 19.4M.)
    model = _built("cifar_preact_resnet", depth=depth)
    _assert_paper_millions(_conv_dense_params(model), PREACT_PAPER[depth])


@pytest.mark.parametrize("depth", [164, _param(1001, True)])
def test_preact_bottleneck_params_match_the_authors_code(depth):
    model = _built("cifar_preact_resnet", depth=depth)
    assert count_params(model) == _lua_preact_bottleneck_params(depth)


# Huang et al. 2017, "Densely Connected Convolutional Networks", Table 2, "Params".
DENSENET_PAPER = [
    # (builder, depth, growth rate k, millions, slow)
    ("cifar_densenet", 40, 12, 1.0, False),
    ("cifar_densenet", 100, 12, 7.0, False),
    ("cifar_densenet", 100, 24, 27.2, True),
    ("cifar_densenet_bc", 100, 12, 0.8, False),
    ("cifar_densenet_bc", 250, 24, 15.3, True),
    ("cifar_densenet_bc", 190, 40, 25.6, True),
]


@pytest.mark.parametrize(
    "builder, depth, k, millions",
    [
        pytest.param(b, d, k, m, marks=[pytest.mark.slow] if slow else [], id=f"{b}-L{d}-k{k}")
        for b, d, k, m, slow in DENSENET_PAPER
    ],
)
def test_cifar_densenet_params_match_huang_2017_table2(builder, depth, k, millions):
    if builder == "cifar_densenet_bc" and depth == 100:
        # The registry default (k=12); its growth_rate default is None, "the paper's".
        model = _built(builder, depth=depth)
    else:
        model = _built(builder, depth=depth, growth_rate=k)
    _assert_paper_millions(count_params(model), millions)


# --------------------------------------------------------------------------------------
# Depths outside the papers' tables: every depth of a family's formula builds
# --------------------------------------------------------------------------------------


def _cifar_resnet_params(depth):
    """He et al. 2015's 6n+2 CIFAR ResNet with shortcut A, counted by hand: a 3x3 stem to 16
    channels with BN; n basic units (two 3x3 convs, each with BN) per stage of widths 16,
    32, 64; A adds no parameters; a 64-to-10 dense layer."""
    n = (depth - 2) // 6

    def unit(c_in, c_out):
        return 9 * c_in * c_out + 9 * c_out * c_out + 2 * 2 * c_out

    total = 3 * 3 * 3 * 16 + 2 * 16
    for c_in, c_out in ((16, 16), (16, 32), (32, 64)):
        total += unit(c_in, c_out) + (n - 1) * unit(c_out, c_out)
    return total + 64 * 10 + 10


def test_utils_is_the_old_name_of_accounting():
    from keras_resnets import accounting, utils

    assert utils.count_params is accounting.count_params
    assert utils.count_macs is accounting.count_macs
    assert utils._sublayers is accounting.sublayers


def test_the_hand_count_matches_the_papers_resnet20():
    # The formula above is checked on a paper depth before it judges the others.
    assert _cifar_resnet_params(20) == count_params(_built("cifar_resnet", depth=20))


@pytest.mark.parametrize("depth", [8, 14, 26])
def test_cifar_resnet_builds_every_6n_plus_2(depth):
    for name in ("cifar_resnet", "cifar_plain"):
        model = _built(name, depth=depth)
        assert len(_layers(model, ResUnit)) == 3 * (depth - 2) // 6
        assert count_params(model) == _cifar_resnet_params(depth)
        assert model.name == f"{name}{depth}"


@pytest.mark.parametrize("depth", [11, 20])
def test_cifar_preact_resnet_builds_every_9n_plus_2_as_bottlenecks(depth):
    model = _built("cifar_preact_resnet", depth=depth)
    units = _layers(model, ResUnit)
    assert len(units) == 3 * (depth - 2) // 9
    assert all(u.bottleneck and u.preactivation for u in units)
    assert count_params(model) == _lua_preact_bottleneck_params(depth)


@pytest.mark.parametrize(
    "name, depth, layers_per_block",
    [("cifar_densenet", 13, 3), ("cifar_densenet", 22, 6), ("cifar_densenet_bc", 16, 2)],
)
def test_cifar_densenet_builds_every_depth_of_its_formula(name, depth, layers_per_block):
    model = _built(name, depth=depth)
    assert [b.num_layers for b in _layers(model, DenseBlock)] == [layers_per_block] * 3
    y = _predict(model, _images())
    assert y.shape == (2, 10) and np.isfinite(y).all()


def test_cifar_highway_builds_every_3n_plus_2():
    model = _built("cifar_highway", depth=8)
    assert len(_layers(model, HighwayUnit)) == 6


@pytest.mark.parametrize(
    "name, depth, formula, table",
    [
        ("cifar_resnet", 24, "6n+2", "20, 32, 44, 56, 110, 1202"),
        ("cifar_plain", 2, "6n+2", "20, 32, 44, 56, 110, 1202"),
        ("cifar_preact_resnet", 24, "9n+2", "110, 164, 1001"),
        ("cifar_densenet", 41, "3n+4", "40, 100"),
        ("cifar_densenet_bc", 101, "6n+4", "100, 190, 250"),
        ("cifar_highway", 24, "3n+2", "11, 20, 32, 47, 92"),
    ],
)
def test_an_impossible_depth_names_the_formula_and_the_table(name, depth, formula, table):
    with pytest.raises(ValueError) as excinfo:
        keras_resnets.build(name, depth=depth)
    message = str(excinfo.value)
    assert message.startswith(f"{name} defines depth {formula}, n >= 1 ")
    assert table in message
    assert message.endswith(f"Received: depth={depth!r}")
    _raised_here(excinfo)


@pytest.mark.parametrize("depth", [True, "20", 20.0, None])
@pytest.mark.parametrize("name", ["cifar_resnet", "cifar_densenet", "resnet"])
def test_a_depth_that_is_no_integer_is_named_so(name, depth):
    # 20.0 once got the formula's message, which lists 20 among the valid depths.
    with pytest.raises(ValueError, match=r"must be an integer\. Received: depth=") as excinfo:
        keras_resnets.build(name, depth=depth)
    assert str(excinfo.value).endswith(f"Received: depth={depth!r}")


def test_resnet34_shortcut_options_he_2015_table3():
    """Option A adds no parameters; B adds projections where shapes change; C everywhere."""
    plain = count_params(_small("plain34"))
    a = count_params(_built("resnet34", input_shape=SMALL_INPUT, shortcut="A"))
    b = count_params(_small("resnet34"))  # B is the default
    c = count_params(_built("resnet34", input_shape=SMALL_INPUT, shortcut="C"))
    assert a == plain
    assert plain < b < c


# --------------------------------------------------------------------------------------
# Multiply-adds against He et al. 2015, Table 1
# --------------------------------------------------------------------------------------

# He et al. 2015, Table 1, "FLOPs" (multiply-adds) at 224x224, in units of 1e9.
PAPER_GFLOPS = {
    "resnet18": 1.8,
    "resnet34": 3.6,
    "resnet50": 3.8,
    "resnet101": 7.6,
    "resnet152": 11.3,
}
# torchvision.models weight metadata, `_ops` (GFLOPS as multiply-adds, conv and linear) at
# 224x224: same architectures for the basic-block ResNets and DenseNets. (Its ResNet-50/101/152
# stride the 3x3, "v1.5", and so count more than Caffe's and ours.)
TORCHVISION_GFLOPS = {"resnet18": 1.814, "resnet34": 3.664, "densenet121": 2.834}


@pytest.mark.parametrize("name", [_param(n, n in ("resnet101", "resnet152")) for n in PAPER_GFLOPS])
def test_macs_match_he_2015_table1(name):
    macs = count_macs(_built(name)) / 1e9  # the default 224x224 input
    # The table truncates some figures and rounds others (ResNet-34's 3.66e9 reads "3.6",
    # ResNet-101's 7.57e9 reads "7.6"): within one unit of the last printed digit. The
    # torchvision figures below pin the count to three decimals.
    assert abs(macs - PAPER_GFLOPS[name]) < 0.1, macs
    if name in TORCHVISION_GFLOPS:
        assert abs(macs - TORCHVISION_GFLOPS[name]) <= 0.0005, macs


def test_densenet121_macs_match_torchvision():
    macs = count_macs(_built("densenet121")) / 1e9
    assert abs(macs - TORCHVISION_GFLOPS["densenet121"]) <= 0.0005, macs


# --------------------------------------------------------------------------------------
# Mixed precision
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, kwargs", [("cifar_resnet", {"depth": 20}), ("highway", {})])
def test_mixed_precision(mixed_float16, name, kwargs):
    model = keras_resnets.build(name, **kwargs)
    convs = [lyr for lyr in sublayers(model) if isinstance(lyr, keras.layers.Conv2D)]
    assert convs
    for conv in convs:
        assert conv.compute_dtype == "float16", conv.name
        assert conv.kernel.dtype == "float32", conv.name  # variables stay float32
    y = model(_images(), training=False)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    assert model.output.dtype == "float32"
    y = keras.ops.convert_to_numpy(y)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-3)


# --------------------------------------------------------------------------------------
# Bad arguments: a ValueError raised by this package, never from inside a backend
# --------------------------------------------------------------------------------------


def test_preprocessing_takes_numpy_statistics_and_numpy_bools():
    mean, std = np.array([0.5, 0.4, 0.3]), np.array([0.2, 0.25, 0.3])
    model = keras_resnets.build("cifar_resnet", depth=8, include_preprocessing=(mean, std))
    norm = model.get_layer("normalization")
    np.testing.assert_allclose(np.ravel(norm.mean), 255 * mean, rtol=1e-6)
    # NumPy's False is False: it once passed the check and still added the normalisation.
    plain = keras_resnets.build("cifar_resnet", depth=8, include_preprocessing=np.False_)
    assert "normalization" not in [layer.name for layer in plain.layers]


def test_article_backbones_take_any_size():
    # Without the flattening head, unknown sizes are fine (a backbone for larger images).
    backbone = keras_resnets.build(
        "highway", depth=5, include_top=False, input_shape=(None, None, 3)
    )
    assert backbone.output_shape == (None, None, None, 64)


def _raised_here(excinfo):
    where = excinfo.traceback[-1].path
    assert "keras_resnets" in str(where), f"raised in {where}, not by keras_resnets"


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        pytest.param("cifar_resnet", dict(depth=24), "Received: depth=24", id="cifar-depth-24"),
        pytest.param(
            "resnet50", dict(input_shape=(16, 16, 3)), "Received: input_shape", id="too-small"
        ),
        pytest.param("resnet18", dict(shortcut="D"), "Received: shortcut='D'", id="shortcut-D"),
        pytest.param("highway", dict(depth=24), "Received: depth=24", id="article-depth-24"),
        pytest.param(
            "resnet", dict(input_shape=(64, 64, 3)), "Received: input_shape", id="article-64"
        ),
        pytest.param(
            "cifar_resnet", dict(input_shape=(32, 32, 1)), "Received: input_shape", id="channels"
        ),
        pytest.param(
            "densenet121", dict(input_shape=(224, 224, 4)), "Received: input_shape", id="channels-4"
        ),
        pytest.param("cifar_densenet", dict(depth=41), "Received: depth=41", id="densenet-depth"),
        pytest.param(
            "cifar_resnet",
            dict(pooling="mean", include_top=False),
            "Received: pooling",
            id="pooling",
        ),
        # `classes` is checked by every builder, the article's conv head included (it used
        # to complain about `filters`), and a bool is not a count (True built 1 class).
        pytest.param("highway", dict(classes=0), "Received: classes=0", id="article-classes-0"),
        pytest.param("plain", dict(classes=True), "Received: classes=True", id="classes-bool"),
        pytest.param(
            "cifar_densenet_bc", dict(classes=-3), "Received: classes=-3", id="classes-negative"
        ),
        pytest.param("resnet18", dict(classes=2.5), "Received: classes=2.5", id="classes-float"),
        # An empty or malformed input_shape once became the default (32, 32, 3) silently,
        # or failed inside Python's comparisons.
        pytest.param("cifar_resnet", dict(input_shape=()), r"input_shape=\(\)", id="shape-empty"),
        pytest.param("cifar_resnet", dict(input_shape=32), "input_shape=32", id="shape-int"),
        pytest.param(
            "cifar_resnet", dict(input_shape=("32", 32, 3)), "input_shape=", id="shape-text"
        ),
        # The article's head flattens a 1x1 map: unknown sizes gave 40 "classes" at 64x64.
        pytest.param(
            "highway",
            dict(depth=5, input_shape=(None, None, 3)),
            "needs a fixed height and width",
            id="article-unknown-size",
        ),
        pytest.param(
            "cifar_resnet",
            dict(include_preprocessing=((0.5, 0.5), (0.2, 0.2))),
            "pair of 3 numbers",
            id="preprocessing-2-channels",
        ),
        pytest.param(
            "cifar_resnet",
            dict(include_preprocessing=((0.5,) * 3, (0.2, 0.0, 0.2))),
            "std above 0",
            id="preprocessing-std-0",
        ),
        pytest.param(
            "cifar_resnet", dict(include_top=None), "Received: include_top=None", id="top-none"
        ),
    ],
)
def test_bad_arguments(name, kwargs, match):
    with pytest.raises(ValueError, match=match) as excinfo:
        keras_resnets.build(name, **kwargs)
    _raised_here(excinfo)


def test_unknown_model_name():
    with pytest.raises(ValueError) as excinfo:
        keras_resnets.build("resnet51")
    message = str(excinfo.value)
    assert "resnet51" in message
    for valid in keras_resnets.list_models():
        assert valid in message
    _raised_here(excinfo)


# --------------------------------------------------------------------------------------
# The article's networks (A. Juliani 2016: 25 units in five stages)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, cls, count",
    [
        ("highway", HighwayUnit, 25),
        ("resnet", ResUnit, 25),
        ("plain", ResUnit, 25),
        ("densenet", DenseBlock, 5),  # one block per stage
    ],
)
def test_article_nets(name, cls, count):
    model = _small(name)
    units = _layers(model, cls)
    assert len(units) == count
    if name == "plain":
        assert all(u.shortcut == "none" for u in units)
    if name == "resnet":
        assert all(u.shortcut != "none" for u in units)
    if name == "highway":
        for unit in units:
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(unit.gate.bias), -1.0)


@pytest.mark.parametrize(
    "name, cls",
    [("highway", HighwayUnit), ("resnet", ResUnit), ("plain", ResUnit), ("densenet", DenseBlock)],
)
def test_article_depth_10(name, cls):
    model = keras_resnets.build(name, depth=10)
    units = _layers(model, cls)
    if cls is DenseBlock:
        # Five blocks; the article's block for n units per stage has n + 1 conv layers.
        assert len(units) == 5
        assert sum(block.num_layers - 1 for block in units) == 10
    else:
        assert len(units) == 10
    y = _predict(model, _images())
    assert y.shape == (2, 10) and np.isfinite(y).all()


def test_article_plain_has_no_residual_addition(rng):
    """In `plain` a unit's output does not contain its input: zero its convs, get relu(BN(0))."""
    unit = _layers(_small("plain"), ResUnit)[0]
    probe = ResUnit.from_config(unit.get_config())
    x = rng.standard_normal((2, 8, 8, 64)).astype("float32")
    probe.build(x.shape)
    for w in probe.weights:
        if w.path.endswith("kernel"):
            w.assign(np.zeros(w.shape, "float32"))
    # With zero kernels (biases start at 0) the branch outputs 0 whatever its BNs do, so
    # the unit's output is 0, where a residual unit would give x.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(probe(x, training=False)), 0.0, atol=1e-6)
