"""`run_layer_test`: the Keras layer contract, checked for one layer configuration.

In the spirit of Keras's own `run_layer_test` (keras/src/testing/test_case.py), cut down to
what a package layer must honour (STYLE.md, "Layers are real Keras layers").
"""

import json
import os
import tempfile

import keras
import numpy as np

# Arguments whose config entry is a serialised object, not the value passed in.
_SERIALISED_ARGS = {"kernel_initializer", "kernel_regularizer", "activation", "dtype"}


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_shape,
    *,
    expected_output_shape,
    expected_num_trainable_weights,
    expected_num_non_trainable_weights,
    run_training_check=True,
    expect_all_trainable_weights_updated=True,
    run_eagerly=None,
    seed=0,
):
    """Check one configuration of `layer_cls` against the Keras layer contract.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict, the constructor's arguments.
        input_shape: the full input shape, batch included, e.g. `(2, 8, 8, 4)`.
        expected_output_shape: the full output shape for that input.
        expected_num_trainable_weights, expected_num_non_trainable_weights: int, the number
            of weight tensors (not of scalars) the built layer owns.
        run_training_check: whether to run one `fit` step of a tiny model around the layer
            and save and load that model.
        expect_all_trainable_weights_updated: whether every trainable weight must move in
            that step. False for layers that start with a zero branch (zero_init_residual),
            whose other branch weights get exactly zero gradient at the first step.
        run_eagerly: passed to `compile`. Defaults to True on TensorFlow, where tracing a
            `fit` step costs seconds a case and building the functional model has already
            traced `call` in a graph; False elsewhere (JAX jit-compiles the step).
        seed: seed of the random input.

    Checks:
    - the eager output shape, `compute_output_shape` and the symbolic (functional) output
      shape agree with `expected_output_shape`;
    - the weight counts;
    - `get_config` is JSON-serialisable, records each simple constructor argument under its
      own name, and `from_config(get_config())` has the same config and, after copying the
      weights, the same inference outputs;
    - one `fit` step of Input -> layer -> GlobalAveragePooling2D -> Dense runs with a finite
      loss, moves the trainable weights (and the BN moving statistics, if any);
    - that model survives a `.keras` save/load without `custom_objects`, with identical
      predictions.
    """
    rng = np.random.default_rng(seed)
    input_shape = tuple(input_shape)
    expected_output_shape = tuple(expected_output_shape)
    x = rng.standard_normal(input_shape).astype("float32")

    # Shapes: eager call, compute_output_shape and the symbolic path must agree.
    layer = layer_cls(**init_kwargs)
    y = layer(x, training=False)
    assert tuple(y.shape) == expected_output_shape, (tuple(y.shape), expected_output_shape)
    assert tuple(layer.compute_output_shape(input_shape)) == expected_output_shape
    symbolic = layer_cls(**init_kwargs)(keras.Input(batch_shape=(None,) + input_shape[1:]))
    assert tuple(symbolic.shape) == (None,) + expected_output_shape[1:]

    # Weight counts.
    assert len(layer.trainable_weights) == expected_num_trainable_weights, [
        w.path for w in layer.trainable_weights
    ]
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights, [
        w.path for w in layer.non_trainable_weights
    ]
    # Unique weight paths: sublayers with fixed, distinct role names.
    paths = [w.path for w in layer.weights]
    assert len(set(paths)) == len(paths), paths

    # Config round trip.
    config = layer.get_config()
    json.dumps(config)  # a .keras file stores it as JSON
    for key, value in init_kwargs.items():
        if key in _SERIALISED_ARGS or not (
            value is None or isinstance(value, (bool, int, float, str))
        ):
            continue
        assert key in config, f"get_config() lacks {key!r}"
        assert config[key] == value, (key, config[key], value)
    revived = layer_cls.from_config(config)
    assert revived.get_config() == config
    revived.build(input_shape)
    revived.set_weights(layer.get_weights())
    np.testing.assert_allclose(_numpy(revived(x, training=False)), _numpy(y), rtol=1e-6, atol=1e-6)

    if run_training_check:
        if run_eagerly is None:
            run_eagerly = keras.backend.backend() == "tensorflow"
        _check_training_and_saving(
            layer_cls, init_kwargs, x, expect_all_trainable_weights_updated, run_eagerly
        )


def _check_training_and_saving(layer_cls, init_kwargs, x, expect_all_updated, run_eagerly):
    data_format = init_kwargs.get("data_format")
    layer = layer_cls(**init_kwargs)
    inputs = keras.Input(shape=x.shape[1:])
    h = layer(inputs)
    h = keras.layers.GlobalAveragePooling2D(data_format=data_format)(h)
    outputs = keras.layers.Dense(3)(h)
    model = keras.Model(inputs, outputs)
    # Adam moves every weight with a non-zero gradient by about the learning rate, so "did
    # not change" means "got no gradient", not "got a small one".
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss="mse", run_eagerly=run_eagerly
    )

    trainable_before = [_numpy(w) for w in layer.trainable_weights]
    non_trainable_before = [_numpy(w) for w in layer.non_trainable_weights]
    target = np.random.default_rng(1).standard_normal((x.shape[0], 3)).astype("float32")
    history = model.fit(x, target, batch_size=x.shape[0], epochs=1, verbose=0)
    loss = history.history["loss"][0]
    assert np.isfinite(loss), loss

    changed = [
        not np.array_equal(before, _numpy(w))
        for before, w in zip(trainable_before, layer.trainable_weights)
    ]
    if expect_all_updated:
        stuck = [w.path for w, c in zip(layer.trainable_weights, changed) if not c]
        assert not stuck, f"trainable weights unchanged by a fit step: {stuck}"
    else:
        assert any(changed), "no trainable weight changed in a fit step"
    # BN moving statistics update only if `training` reaches the BN layers.
    for before, w in zip(non_trainable_before, layer.non_trainable_weights):
        assert not np.array_equal(before, _numpy(w)), f"{w.path} unchanged by a fit step"

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)  # no custom_objects: the layer is registered
    assert type(loaded.layers[1]) is layer_cls
    assert loaded.layers[1].get_config() == layer.get_config()
    np.testing.assert_array_equal(
        _numpy(loaded(x, training=False)), _numpy(model(x, training=False))
    )
