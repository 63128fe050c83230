"""Tests of `keras_resnets.data.pipeline` and `.augment`: both engines' batches, shuffles,
augmentation, determinism and resumption."""

import numpy as np
import pytest

from keras_resnets import data

# --- pipelines ------------------------------------------------------------------------------


def _arrays(n=40, size=(32, 32), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *size, 3), dtype=np.uint8), np.arange(n, dtype=np.int32)


ENGINES = ("tf.data", "numpy")


@pytest.mark.parametrize(
    "change, message",
    [
        # A cast to uint8 once turned [0, 1] float images into zeros silently.
        ({"x": lambda x: x / 255.0}, "must be uint8 pixels in [0, 255]. Received: dtype float64"),
        ({"x": lambda x: x[..., 0]}, "must be images [N, H, W, C]"),
        ({"batch_size": "4"}, "Received: batch_size='4'"),
        ({"batch_size": 2.5}, "Received: batch_size=2.5"),
        ({"batch_size": True}, "Received: batch_size=True"),
        ({"seed": "0"}, "Received: seed='0'"),
        ({"drop_remainder": "no"}, "Received: drop_remainder='no'"),
        ({"augment": "False"}, "Received: augment='False'"),
        ({"steps_per_epoch": 2.5}, "Received: steps_per_epoch=2.5"),
        ({"first_epoch": -1}, "Received: first_epoch=-1"),
        # Keras's fit ran no step and said nothing: 40 examples, batches of 64, remainder
        # dropped.
        ({"batch_size": 64}, "has no batch: use a batch_size of at most 40"),
    ],
)
@pytest.mark.parametrize("engine", ENGINES)
def test_bad_pipeline_arguments_are_one_line(change, message, engine):
    # (A negative seed is a seed: both engines fold it into 64 bits.)
    x, y = _arrays()
    kwargs = {"batch_size": 8, "training": True, "engine": engine}
    if "x" in change:
        x = change["x"](x)
    else:
        kwargs.update(change)
    with pytest.raises(ValueError) as error:
        data.make_pipeline(x, y, **kwargs)
    assert message in str(error.value) and "\n" not in str(error.value)


def _first_batches(ds, count=2, *, repeat=False):
    """The first `count` batches of one pass over `ds` (of passes, if `repeat`), as NumPy.

    An `ArrayBatches` moves to its next epoch when Keras calls `on_epoch_end`, as fit does
    after each pass, and a tf.data pipeline at each new iteration: so each call of this
    helper starts a new epoch, for both.
    """
    if isinstance(ds, data.ArrayBatches):
        batches = []
        while len(batches) < count:
            batches.extend(ds[i] for i in range(min(len(ds), count - len(batches))))
            if not repeat:
                break
            ds.on_epoch_end()
        if not repeat:
            ds.on_epoch_end()
        return batches
    return [(x.numpy(), y.numpy()) for x, y in (ds.repeat() if repeat else ds).take(count)]


@pytest.mark.parametrize("engine", ENGINES)
def test_test_pipeline_is_exact_and_in_order(engine):
    x, y = _arrays(n=40)
    ds = data.make_pipeline(x, y, batch_size=16, training=False, engine=engine)
    batches = _first_batches(ds, 5)
    assert [len(b[1]) for b in batches] == [16, 16, 8]  # Last partial batch kept.
    images = np.concatenate([b[0] for b in batches])
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images, x.astype(np.float32))
    labels = np.concatenate([b[1] for b in batches])
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, y)


def _match_pad_crop_flip(output, original, pad=4):
    """All `(dy, dx, flipped)` for which the NumPy reference equals `output`."""
    padded = np.pad(original, [(pad, pad), (pad, pad), (0, 0)])
    height, width = original.shape[:2]
    matches = []
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[dy : dy + height, dx : dx + width]
            for flipped in (False, True):
                if np.array_equal(output, crop[:, ::-1] if flipped else crop):
                    matches.append((dy, dx, flipped))
    return matches


@pytest.mark.parametrize("engine", ENGINES)
def test_augmentation_is_a_padded_crop_and_flip(engine):
    x, y = _arrays(n=64, size=(32, 24))  # Non-square, to catch swapped axes.
    ds = data.make_pipeline(x, y, batch_size=32, training=True, seed=3, engine=engine)
    if engine == "tf.data":
        assert ds.element_spec[0].dtype.name == "float32"
        assert ds.element_spec[1].dtype.name == "int32"
    seen = set()
    for images, labels in _first_batches(ds, 4, repeat=True):
        assert images.shape == (32, 32, 24, 3)
        assert images.dtype == np.float32
        assert images.min() >= 0 and images.max() <= 255
        for image, label in zip(images, labels):
            matches = _match_pad_crop_flip(image.astype(np.uint8), x[label])
            assert len(matches) == 1, (label, matches)
            seen.add(matches[0])
    assert {flipped for _, _, flipped in seen} == {False, True}
    assert len({(dy, dx) for dy, dx, _ in seen}) > 20  # Offsets vary per image.


@pytest.mark.parametrize("engine", ENGINES)
def test_pipelines_are_deterministic_given_the_seed(engine):
    x, y = _arrays(n=64)

    def batches(seed):
        ds = data.make_pipeline(x, y, batch_size=16, training=True, seed=seed, engine=engine)
        return _first_batches(ds, 2) + _first_batches(ds, 2)  # Two epochs.

    first, again, other = batches(7), batches(7), batches(8)
    for (xa, ya), (xb, yb) in zip(first, again):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(first[0][1], other[0][1])  # Another shuffle...
    assert not np.array_equal(first[0][0], other[0][0])  # ...and other crops.
    assert not np.array_equal(first[0][1], first[2][1])  # Reshuffled each epoch.


@pytest.mark.parametrize("engine", ENGINES)
def test_each_epoch_is_a_permutation(engine):
    x, y = _arrays(n=48)
    ds = data.make_pipeline(
        x, y, batch_size=16, training=True, seed=1, engine=engine, augment=False
    )
    for _ in range(2):
        labels = np.concatenate([b[1] for b in _first_batches(ds, 3)])
        assert sorted(labels) == list(y)
        assert not np.array_equal(labels, y)


@pytest.mark.parametrize("engine", ENGINES)
def test_resumed_stream_repeats_the_uninterrupted_batches(engine):
    x, y = _arrays(n=64)

    def stream(first_epoch, batches):
        ds = data.make_pipeline(
            x,
            y,
            batch_size=8,
            training=True,
            seed=4,
            engine=engine,
            first_epoch=first_epoch,
            steps_per_epoch=3,
        )
        return _first_batches(ds, batches, repeat=True)

    uninterrupted, resumed = stream(0, 9), stream(2, 3)
    assert len(uninterrupted) == 9 and len(resumed) == 3
    for (xa, ya), (xb, yb) in zip(uninterrupted[6:], resumed):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(uninterrupted[0][1], uninterrupted[3][1])  # Epochs differ.
    with pytest.raises(ValueError, match="steps_per_epoch.*Received: steps_per_epoch=9"):
        data.make_pipeline(x, y, batch_size=8, training=True, steps_per_epoch=9, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_train_pipeline_drops_the_remainder_unless_asked(engine):
    x, y = _arrays(n=40)
    dropped = data.make_pipeline(x, y, batch_size=16, training=True, engine=engine)
    assert len(_first_batches(dropped, 5)) == 2
    kept = data.make_pipeline(
        x,
        y,
        batch_size=16,
        training=True,
        drop_remainder=False,
        shuffle=False,
        augment=False,
        engine=engine,
    )
    labels = np.concatenate([b[1] for b in _first_batches(kept, 5)])
    np.testing.assert_array_equal(labels, y)


def test_numpy_batches_slice_the_rows_of_one_process():
    x, y = _arrays(n=48)
    whole = data.make_pipeline(x, y, batch_size=12, training=True, seed=2, engine="numpy")
    parts = [
        data.make_pipeline(
            x, y, batch_size=12, training=True, seed=2, engine="numpy"
        ).process_slice(3, index)
        for index in range(3)
    ]
    for step in range(len(whole)):
        joined = [np.concatenate(arrays) for arrays in zip(*(part[step] for part in parts))]
        for got, want in zip(joined, whole[step]):
            np.testing.assert_array_equal(got, want)
        assert len(parts[1][step][1]) == 4


def test_engine_is_validated_and_defaults_to_tf_data():
    assert data.resolve_engine(None) == "tf.data"  # TensorFlow is installed here.
    assert data.resolve_engine("numpy") == "numpy"
    with pytest.raises(ValueError, match="'auto', 'tf.data', 'numpy'. Received: engine='torch'"):
        data.make_pipeline(*_arrays(n=8), batch_size=4, training=True, engine="torch")
