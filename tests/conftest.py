"""Shared fixtures. The backend is chosen by the KERAS_BACKEND environment variable, never here."""

import keras_resnets.machine

# Keras and TensorFlow start quietly, as the CLI starts them: with two pytest-xdist workers,
# TensorFlow's C++ start-up lines ("I0000 ... cudart_stub.cc ...") otherwise reach the
# console. oneDNN stays at TensorFlow's default (None): turned on in the tests on a 2-core
# AVX2-only CPU, it sped some networks up and slowed the DenseNet down, no faster in all.
# numpy_only: on the JAX and torch backends TensorFlow stays out of the process (torchvision's
# CUDA build crashes when imported after it).
keras_resnets.machine.start_keras(onednn=None, numpy_only=True)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Tests marked `first` run first (the sort keeps the order otherwise). The default run
    has two workers, which take tests in collection order: a long test collected last would
    leave one worker running it alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("first") is None)


@pytest.fixture(autouse=True)
def _seed():
    """Same random weights and data in every test, whatever ran before it."""
    keras.utils.set_random_seed(1337)


@pytest.fixture
def rng():
    return np.random.default_rng(1337)


@pytest.fixture
def mixed_float16():
    """Run the test under the mixed_float16 policy; the previous policy is always restored."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No data anywhere: empty HOME, TFDS and Keras dirs, no env var, no network."""
    from keras_resnets import data

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setenv("KERAS_RESNETS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.delenv("KERAS_RESNETS_DATA", raising=False)
    # TFDS's download checks this first, so nothing is downloaded and nothing waits.
    monkeypatch.setattr(data.tfds, "_network_reachable", lambda *args, **kwargs: False)
    return tmp_path
