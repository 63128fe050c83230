"""CIFAR-100, end to end: a second data set with its own class names and statistics.

Small generated copies in CIFAR-100's official formats (the pickled `cifar-100-python.tar.gz`,
and an image-folder archive of its 100 class folders): loaded, identified as CIFAR-100 by
their class names, and trained on, with CIFAR-100's statistics in the model.
"""

import io
import json
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_resnets import data
from keras_resnets.data import datasets

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NAMES = datasets.CIFAR100_CLASSES


def _images(rng, per_class):
    x = rng.integers(0, 256, (100 * per_class, 32, 32, 3), dtype=np.uint8)
    y = np.repeat(np.arange(100), per_class)
    return x, y


def _add(archive, name, content):
    info = tarfile.TarInfo(name)
    info.size = len(content)
    archive.addfile(info, io.BytesIO(content))


def _write_pickles(path, seed=0):
    """The official cifar-100-python.tar.gz: pickled dicts of channel-major uint8 rows, with
    fine and coarse labels, and a meta file of the label names. Returns the arrays."""
    rng = np.random.default_rng(seed)
    (x_train, y_train), (x_test, y_test) = _images(rng, 2), _images(rng, 1)
    with tarfile.open(path, "w:gz") as archive:
        for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            batch = {
                b"filenames": [f"{i}.png".encode() for i in range(len(x))],
                b"batch_label": f"{split}ing batch 1 of 1".encode(),
                b"fine_labels": y.tolist(),
                b"coarse_labels": (y // 5).tolist(),
                b"data": x.transpose(0, 3, 1, 2).reshape(len(x), 3072),
            }
            _add(archive, f"cifar-100-python/{split}", pickle.dumps(batch))
        meta = {
            b"fine_label_names": [name.encode() for name in NAMES],
            b"coarse_label_names": [f"super{i}".encode() for i in range(20)],
        }
        _add(archive, "cifar-100-python/meta", pickle.dumps(meta))
    return x_train, y_train, x_test, y_test


def _png(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _assert_cifar100(arrays, x_train, y_train, x_test, y_test):
    assert arrays.class_names == list(NAMES)
    assert arrays.x_train.shape == (200, 32, 32, 3) and arrays.x_test.shape == (100, 32, 32, 3)
    np.testing.assert_array_equal(arrays.x_train, x_train)
    np.testing.assert_array_equal(arrays.y_train, y_train)
    np.testing.assert_array_equal(arrays.x_test, x_test)
    np.testing.assert_array_equal(arrays.y_test, y_test)
    assert arrays.y_train.dtype == np.int32
    assert arrays.dataset is datasets.CIFAR100


def test_the_record_has_cifar100s_own_names_and_statistics():
    cifar100 = datasets.get("cifar100")
    assert cifar100.num_classes == len(NAMES) == len(set(NAMES)) == 100
    assert NAMES[:3] == ("apple", "aquarium_fish", "baby") and NAMES[-1] == "worm"
    assert list(NAMES) == sorted(NAMES)  # so class folders sort into the official labels
    assert cifar100.normalization == ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
    assert cifar100.mean != datasets.CIFAR10.mean and cifar100.std != datasets.CIFAR10.std
    with pytest.raises(ValueError, match="Unknown dataset 'cifar1000'"):
        datasets.get("cifar1000")


@pytest.mark.parametrize("layout", ["archive", "folder"])
def test_official_pickles_load_with_the_fine_labels(tmp_path, layout):
    archive = tmp_path / "cifar-100-python.tar.gz"
    expected = _write_pickles(archive)
    source = archive
    if layout == "folder":
        with tarfile.open(archive) as opened:
            opened.extractall(tmp_path / "unpacked", filter="data")
        source = tmp_path / "unpacked"  # holds cifar-100-python/{train,test,meta}
    _assert_cifar100(data.load_arrays(source), *expected)


def test_an_image_folder_archive_of_the_100_classes_is_cifar100(tmp_path):
    x_train, y_train, x_test, y_test = _write_pickles(tmp_path / "unused.tar.gz")
    source = tmp_path / "cifar100-images.tar.gz"
    with tarfile.open(source, "w:gz") as archive:
        for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            for i, (image, label) in enumerate(zip(x, y)):
                _add(archive, f"cifar100/{split}/{NAMES[label]}/{i:04d}.png", _png(image))
    arrays = data.load_arrays(source, cache_dir=tmp_path / "cache")
    _assert_cifar100(arrays, x_train, y_train, x_test, y_test)
    assert "image archive" in arrays.source


def test_the_name_searches_the_keras_cache_and_fails_fast_offline(isolated, monkeypatch):
    start = time.perf_counter()
    with pytest.raises(data.DataSourceError) as raised:
        data.load_arrays("cifar100")
    assert time.perf_counter() - start < 60  # no waiting on a network
    message = str(raised.value)
    for expected in (
        "No CIFAR-100 data found",
        "no prepared cifar100",
        str(isolated / "home" / ".keras" / "datasets" / "cifar-100-python"),
        "TFDS download",
        "no network to download it",
        "--data PATH",
    ):
        assert expected in message
    assert raised.value.__cause__ is None
    assert not (isolated / "tfds").exists()  # the failed download left nothing behind
    cache = isolated / "home" / ".keras" / "datasets"
    cache.mkdir(parents=True)
    expected = _write_pickles(cache / "cifar-100-python.tar.gz")
    arrays = data.load_arrays("cifar100")
    _assert_cifar100(arrays, *expected)
    assert "keras.datasets cache" in arrays.source
    # An existing path of that name is read as the path.
    monkeypatch.chdir(cache)
    (cache / "cifar100").mkdir()
    with pytest.raises(data.DataSourceError, match="no images or archives found"):
        data.load_arrays("cifar100")


def test_a_custom_set_gets_statistics_measured_on_its_training_images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    x[..., 2] = 7  # a constant channel: the std of one grey level, not zero
    arrays = data.Arrays(x, np.arange(6) % 2, x[:2], np.arange(2), ["a", "b"], "test")
    dataset = arrays.dataset
    assert (dataset.name, dataset.num_classes, dataset.image_shape) == ("custom", 2, (8, 8, 3))
    np.testing.assert_allclose(dataset.mean[:2], x[..., :2].mean(axis=(0, 1, 2)) / 255)
    np.testing.assert_allclose(dataset.std[:2], x[..., :2].std(axis=(0, 1, 2)) / 255)
    assert dataset.mean[2] == pytest.approx(7 / 255) and dataset.std[2] == pytest.approx(1 / 255)


def test_measured_cifar10_statistics_are_the_published_ones():
    """The measurement is the literature's definition: CIFAR-10's train set gives its numbers."""
    source = SHARED / "cifar10"
    if not (source / "cifar10-train.tar.xz").is_file():
        pytest.skip(f"the shared CIFAR-10 copy is not at {source}")
    arrays = data.load_arrays(source)
    assert arrays.dataset is datasets.CIFAR10
    mean, std = datasets.measure_statistics(arrays.x_train)
    np.testing.assert_allclose(mean, datasets.CIFAR10_MEAN, atol=1e-4)
    np.testing.assert_allclose(std, datasets.CIFAR10_STD, atol=1e-4)


@pytest.mark.slow  # about 60 s idle, 190 s on a busy 2-core machine: CI's slow step runs it
def test_a_model_trained_on_cifar100_gets_its_names_and_statistics(tmp_path):
    import keras

    from keras_resnets.train import train

    archive = tmp_path / "cifar-100-python.tar.gz"
    _write_pickles(archive)
    out = tmp_path / "run"
    summary = train(
        "cifar_resnet",
        model_kwargs={"depth": 20, "classes": 100},
        data=str(archive),
        out=out,
        epochs=1,
        steps_per_epoch=1,
        batch_size=32,
        train_limit=100,
        test_limit=100,
        verbose=0,
    )
    assert summary["num_train"] == 100
    run = json.loads((out / "run.json").read_text())
    assert run["class_names"] == list(NAMES)
    model = keras.saving.load_model(out / "last.keras")
    assert model.output_shape == (None, 100)
    normalization = model.get_layer("normalization")
    mean = np.ravel(keras.ops.convert_to_numpy(normalization.mean))
    np.testing.assert_allclose(mean, [255 * m for m in datasets.CIFAR100_MEAN], rtol=1e-5)
    variance = np.ravel(keras.ops.convert_to_numpy(normalization.variance))
    np.testing.assert_allclose(variance, [(255 * s) ** 2 for s in datasets.CIFAR100_STD], rtol=1e-5)
