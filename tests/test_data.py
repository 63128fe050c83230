"""Tests of `keras_resnets.data`: the sources, the cache, the errors and `load_cifar10`.

The pipelines are tested in test_data_pipeline.py, CIFAR-100 in test_data_cifar100.py.

The real CIFAR-10 copy in ../shared/cifar10 is read through the default cache
(`$KERAS_RESNETS_CACHE` or `~/.cache/keras_resnets`, as the CLI does), so only the first run
on a machine pays the 20-40 s decode; everything else uses tiny synthetic data sets in
temporary folders.
"""

import io
import pickle
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_resnets import data

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CLASSES = ("emu", "cat", "dog")  # Deliberately unsorted: labels follow the sorted names.


def _png(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _synthetic(seed=0, n_train=4, n_test=2, size=(32, 32)):
    """`{split: [(class, index, image)]}` of random images, in no particular order."""
    rng = np.random.default_rng(seed)
    return {
        split: [
            (name, i, rng.integers(0, 256, (*size, 3), dtype=np.uint8))
            for name in CLASSES
            for i in range(n)
        ]
        for split, n in (("train", n_train), ("test", n_test))
    }


def _expected(images, split):
    """Arrays in the loader's order (sorted class, then file name) with sorted-name labels."""
    rows = sorted(images[split], key=lambda row: (row[0], row[1]))
    names = sorted(CLASSES)
    return np.stack([r[2] for r in rows]), np.array([names.index(r[0]) for r in rows])


def _members(images, prefix=""):
    for split, rows in images.items():
        for name, i, image in rows:
            yield f"{prefix}{split}/{name}/{i:04d}.png", _png(image)


def _write_folder(root, images):
    for member, content in _members(images):
        (root / member).parent.mkdir(parents=True, exist_ok=True)
        (root / member).write_bytes(content)
    return root


def _write_tar(path, members, mode):
    with tarfile.open(path, mode) as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


def _assert_round_trip(arrays, images):
    for split in ("train", "test"):
        x, y = _expected(images, split)
        np.testing.assert_array_equal(getattr(arrays, f"x_{split}"), x)
        np.testing.assert_array_equal(getattr(arrays, f"y_{split}"), y)
        assert getattr(arrays, f"x_{split}").dtype == np.uint8
    assert arrays.class_names == sorted(CLASSES)


# --- the real CIFAR-10 copy -----------------------------------------------------------------


@pytest.fixture(scope="session")
def cifar10():
    source = SHARED / "cifar10"
    if not (source / "cifar10-train.tar.xz").is_file():
        pytest.skip(f"the shared CIFAR-10 copy is not at {source}")
    return data.load_arrays(source)


def test_real_cifar10_counts_shapes_and_classes(cifar10):
    arrays = cifar10
    assert arrays.x_train.shape == (50000, 32, 32, 3)
    assert arrays.x_test.shape == (10000, 32, 32, 3)
    assert arrays.x_train.dtype == arrays.x_test.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(arrays.y_train), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(arrays.y_test), [1000] * 10)
    assert arrays.class_names == list(data.CIFAR10_CLASSES)
    assert "cifar10" in arrays.source


def test_real_cifar10_matches_the_independent_jpeg_copy(cifar10):
    """Pixels and labels line up with the JPEG copy (a different file, decoded by Pillow)."""
    arrays = cifar10
    archive_path = SHARED / "cifar10-jpeg" / "cifar10-jpeg-test.tar.xz"
    if not archive_path.is_file():
        pytest.skip(f"the shared JPEG copy is not at {archive_path}")
    label = data.CIFAR10_CLASSES.index("airplane")  # The archive's first class folder.
    ours = arrays.x_test[arrays.y_test == label][:20].astype(np.float32)
    wanted = {f"test/airplane/{i:04d}.jpg": i for i in range(20)}
    jpegs = [None] * 20
    with tarfile.open(archive_path) as archive:
        for member in archive:
            if member.name in wanted:
                image = Image.open(archive.extractfile(member)).convert("RGB")
                jpegs[wanted[member.name]] = np.asarray(image, np.float32)
    differences = np.abs(ours - np.stack(jpegs)).mean(axis=(1, 2, 3))
    # JPEG q75 is a few grey levels off; a different image is ~50 off.
    assert differences.max() < 15, differences


def _no_decoding(*args, **kwargs):
    raise AssertionError("decoded although a cache exists")


def test_second_load_is_served_from_the_cache(cifar10, monkeypatch):
    arrays = cifar10
    monkeypatch.setattr(data.decode, "decode_all", _no_decoding)
    again = data.load_arrays(SHARED / "cifar10")
    for first, second in zip(arrays[:4], again[:4]):
        np.testing.assert_array_equal(first, second)
    assert again.class_names == arrays.class_names
    cached = [
        p for p in data.cache.default_cache_dir().glob("cifar10-*.npz") if str(p) in again.source
    ]
    assert len(cached) == 1


def test_cache_is_written_once_atomically_and_reused(tmp_path, monkeypatch):
    images = _synthetic()
    source = _write_folder(tmp_path / "set", images)
    cache_dir = tmp_path / "cache"
    data.load_arrays(source, cache_dir=cache_dir)
    assert len(list(cache_dir.glob("set-*.npz"))) == 1
    assert list(cache_dir.iterdir()) == list(cache_dir.glob("*.npz"))  # No temporary left.
    monkeypatch.setattr(data.decode, "decode_all", _no_decoding)
    _assert_round_trip(data.load_arrays(source, cache_dir=cache_dir), images)


def test_unreadable_cache_is_decoded_again(tmp_path):
    images = _synthetic()
    source = _write_tar(tmp_path / "set.tar", _members(images), "w")
    cache_dir = tmp_path / "cache"
    data.load_arrays(source, cache_dir=cache_dir)
    (cache_file,) = cache_dir.glob("*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:1000])  # As if cut off mid-write.
    with pytest.warns(UserWarning, match="unreadable cache"):
        _assert_round_trip(data.load_arrays(source, cache_dir=cache_dir), images)


# --- synthetic sources ----------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["folder", "tar.gz", "archive pair", "npz"])
def test_image_sources_round_trip(tmp_path, layout):
    images = _synthetic()
    if layout == "folder":
        source = _write_folder(tmp_path / "set", images)
    elif layout == "tar.gz":
        source = _write_tar(tmp_path / "set.tar.gz", _members(images, prefix="set/"), "w:gz")
    elif layout == "archive pair":  # The layout of ../shared/cifar10.
        source = tmp_path / "set"
        source.mkdir()
        for split in ("train", "test"):
            _write_tar(source / f"set-{split}.tar.xz", _members({split: images[split]}), "w:xz")
    else:
        source = tmp_path / "set.npz"
        x_train, y_train = _expected(images, "train")
        x_test, y_test = _expected(images, "test")
        np.savez(
            source,
            x_train=x_train,
            y_train=y_train,
            x_test=x_test,
            y_test=y_test,
            class_names=sorted(CLASSES),
        )
    arrays = data.load_arrays(source, cache_dir=tmp_path / "cache")
    _assert_round_trip(arrays, images)
    assert arrays.y_train.dtype == np.int32


@pytest.mark.parametrize(
    "change, message",
    [
        # Float images in [0, 1] once became all zeros in the pipeline's uint8 cast.
        ({"x_train": lambda x: x / 255.0}, "x_train must be uint8 pixels in [0, 255]"),
        ({"x_test": lambda x: x.transpose(0, 3, 1, 2)}, "x_test must be RGB images [N, height"),
        # Labels beyond the named classes trained to 0% without a word.
        ({"y_train": lambda y: y + 3}, "y_train must be labels 0 to 2 (3 classes)"),
        ({"y_test": lambda y: y - 1}, "Received: labels -1 to"),
        ({"y_train": lambda y: y[:-1]}, "y_train must be 4 integer labels, one per image"),
    ],
)
def test_an_npz_of_the_wrong_kind_is_named_in_one_line(tmp_path, change, message):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 0]),
        "x_test": rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8),
        "y_test": np.array([2, 1, 0]),
    }
    ((key, edit),) = change.items()
    arrays[key] = edit(arrays[key])
    np.savez(tmp_path / "set.npz", class_names=["a", "b", "c"], **arrays)
    with pytest.raises(data.DataSourceError) as error:
        data.load_arrays(tmp_path / "set.npz")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_npz_with_keras_datasets_label_columns_loads(tmp_path):
    # keras.datasets.cifar10.load_data() gives labels of shape [N, 1].
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    y = np.array([[0], [1], [2], [0]], dtype=np.uint8)
    np.savez(tmp_path / "set.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    arrays = data.load_arrays(tmp_path / "set.npz")
    assert arrays.y_train.tolist() == [0, 1, 2, 0] and arrays.class_names == ["0", "1", "2"]


def test_load_cifar10_names_its_own_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"Received: train_limit=0$"):
        data.load_cifar10(tmp_path, train_limit=0)
    with pytest.raises(ValueError, match=r"Received: test_limit=4.0$"):
        data.load_cifar10(tmp_path, test_limit=4.0)
    with pytest.raises(ValueError, match=r"`source` must be a path.*Received: source=123$"):
        data.load_cifar10(123)
    with pytest.raises(ValueError, match=r"`source` must be a path.*Received: source=123$"):
        data.load_arrays(123)
    # Checked before the data loads: tmp_path holds none, and the error is the argument's.
    with pytest.raises(ValueError, match=r"Received: batch_size='128'$"):
        data.load_cifar10(tmp_path, batch_size="128")
    with pytest.raises(ValueError, match=r"Received: shuffle='no'$"):
        data.load_cifar10(tmp_path, shuffle="no")


def _write_keras_batches(folder, rng):
    """The real cifar-10-batches-py format: pickled dicts of channel-major uint8 rows."""
    folder.mkdir(parents=True)
    images, labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, 3).tolist()
        batch = {
            b"batch_label": name.encode(),
            b"labels": y,
            b"data": x.transpose(0, 3, 1, 2).reshape(3, 3072),
        }
        (folder / name).write_bytes(pickle.dumps(batch))
        images.append(x)
        labels.append(y)
    meta = {b"label_names": [name.encode() for name in data.CIFAR10_CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return np.concatenate(images[:5]), np.concatenate(labels[:5]), images[5], labels[5]


@pytest.mark.parametrize("packed", [False, True])
def test_keras_cache_round_trip(isolated, packed):
    datasets = isolated / "home" / ".keras" / "datasets"
    x_train, y_train, x_test, y_test = _write_keras_batches(
        isolated / "unpacked" / "cifar-10-batches-py", np.random.default_rng(1)
    )
    if packed:
        datasets.mkdir(parents=True)
        with tarfile.open(datasets / "cifar-10-python.tar.gz", "w:gz") as archive:
            archive.add(isolated / "unpacked" / "cifar-10-batches-py", "cifar-10-batches-py")
    else:
        datasets.parent.mkdir(parents=True)
        (isolated / "unpacked").rename(datasets)
    for source in ("keras", None):  # Named, and found by the search.
        arrays = data.load_arrays(source)
        np.testing.assert_array_equal(arrays.x_train, x_train)
        np.testing.assert_array_equal(arrays.y_train, y_train)
        np.testing.assert_array_equal(arrays.x_test, x_test)
        np.testing.assert_array_equal(arrays.y_test, y_test)
        assert arrays.class_names == list(data.CIFAR10_CLASSES)
        assert "keras.datasets cache" in arrays.source


def test_environment_variable_selects_the_source(isolated, monkeypatch):
    images = _synthetic()
    monkeypatch.setenv("KERAS_RESNETS_DATA", str(_write_folder(isolated / "set", images)))
    _assert_round_trip(data.load_arrays(), images)
    monkeypatch.setenv("KERAS_RESNETS_DATA", str(isolated / "missing"))
    with pytest.raises(data.DataSourceError, match="KERAS_RESNETS_DATA.*does not exist"):
        data.load_arrays()


def test_search_prefers_prepared_tfds_over_the_keras_cache(isolated, monkeypatch):
    _write_keras_batches(
        isolated / "home/.keras/datasets/cifar-10-batches-py", np.random.default_rng(2)
    )
    assert "keras.datasets" in data.load_arrays().source
    (isolated / "tfds" / "cifar10").mkdir(parents=True)
    calls = []

    def fake_tfds(name="cifar10", *, download):
        calls.append(download)
        return data.Arrays(None, None, None, None, [], "fake TFDS")

    monkeypatch.setattr(data.tfds, "load", fake_tfds)
    assert data.load_arrays().source == "fake TFDS"
    assert calls == [False]  # Prepared data only; no download while a local copy exists.


def test_tfds_source_reads_the_builder(monkeypatch, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    # mock_data replaces the download, but not the one connection tried before it.
    monkeypatch.setattr(data.tfds, "_network_reachable", lambda *args, **kwargs: True)
    with tfds.testing.mock_data(num_examples=6):  # Random examples; no files, no network.
        arrays = data.load_arrays("tfds")
    assert arrays.x_train.shape == arrays.x_test.shape == (6, 32, 32, 3)
    assert arrays.x_train.dtype == np.uint8 and arrays.y_train.dtype == np.int32
    assert len(arrays.class_names) == 10 and "TFDS cifar10" in arrays.source


@pytest.fixture
def download_fails(isolated, monkeypatch):
    """`isolated`, but with a network on which TFDS's download fails."""
    monkeypatch.setattr(data.tfds, "_network_reachable", lambda *args, **kwargs: True)

    def no_network(builder):
        raise ConnectionError("network disabled by the test")

    monkeypatch.setattr(data.tfds, "_tfds_download", no_network)
    return isolated


def test_missing_data_lists_every_place_tried(download_fails):
    isolated = download_fails
    start = time.perf_counter()
    with pytest.raises(data.DataSourceError) as raised:
        data.load_arrays()
    assert time.perf_counter() - start < 60  # Failed fast, no waiting on a network.
    message = str(raised.value)
    assert isinstance(raised.value, ValueError)
    for expected in (
        "KERAS_RESNETS_DATA",
        str(isolated / "tfds"),
        str(isolated / "home" / ".keras" / "datasets" / "cifar-10-batches-py"),
        "TFDS download",
        "network disabled by the test",
        "--data PATH",
    ):
        assert expected in message
    assert "Traceback" not in message
    error = raised.value  # No chained TF/TFDS traceback either.
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_explicit_missing_path_names_it(tmp_path):
    with pytest.raises(data.DataSourceError, match="nowhere.*does not exist"):
        data.load_arrays(tmp_path / "nowhere")


def test_class_folders_without_split_are_refused(tmp_path):
    images = _synthetic()
    root = tmp_path / "set"
    for member, content in _members({"train": images["train"]}):
        (root / member).parent.mkdir(parents=True, exist_ok=True)
        (root / member).write_bytes(content)
    with pytest.raises(data.DataSourceError, match="train/ and test/"):
        data.load_arrays(root / "train", cache_dir=tmp_path / "cache")


@pytest.fixture(params=["tensorflow", "pillow"])
def decoder(request, monkeypatch):
    """Decode with TensorFlow, or with Pillow as on a machine without TensorFlow."""
    if request.param == "pillow":
        monkeypatch.setattr(data.engines, "tensorflow", lambda required=None: None)
    return request.param


def test_png_folders_round_trip_with_either_decoder(decoder, tmp_path):
    images = _synthetic(n_train=3, n_test=1)
    _assert_round_trip(
        data.load_arrays(_write_folder(tmp_path / "set", images), cache_dir=tmp_path / "cache"),
        images,
    )


def test_pillow_decodes_jpeg_as_tensorflow_does_within_a_few_levels():
    # The two libraries' IDCT and chroma upsampling may differ by a few levels.
    rng = np.random.default_rng(0)
    smooth = np.clip(np.cumsum(rng.normal(0, 8, (32, 32, 3)), axis=0) + 128, 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(smooth.astype(np.uint8)).save(buffer, format="JPEG", quality=75)
    chunk = [("train", "cat", "a.jpg", buffer.getvalue())]
    ((*_, by_tf),) = data.decode._decode_chunk(chunk)  # TensorFlow is installed here
    ((*_, by_pil),) = data.decode._pil_decode_chunk(chunk)
    assert by_pil.shape == by_tf.shape == (32, 32, 3) and by_pil.dtype == np.uint8
    difference = np.abs(by_tf.astype(int) - by_pil.astype(int))
    assert difference.max() <= 4 and difference.mean() < 1.5


def test_corrupt_images_are_counted_and_named(tmp_path, decoder):
    root = _write_folder(tmp_path / "set", _synthetic())
    good = (root / "train/cat/0000.png").read_bytes()
    (root / "train/dog/0001.png").write_bytes(good[: len(good) // 2])  # Truncated.
    (root / "test/emu/0000.png").write_bytes(b"not an image")
    with pytest.raises(data.CorruptImageError) as raised:
        data.load_arrays(root, cache_dir=tmp_path / "cache")
    message = str(raised.value)
    assert "2 of 18 images" in message
    assert f"first is {root / 'test/emu/0000.png'}" in message
    assert str(root / "train/dog/0001.png") in message
    assert not list((tmp_path / "cache").glob("*.npz"))  # Nothing cached.


def test_images_of_different_sizes_are_refused(tmp_path):
    root = _write_folder(tmp_path / "set", _synthetic())
    odd = np.zeros((28, 30, 3), np.uint8)
    (root / "test/dog/0001.png").write_bytes(_png(odd))
    with pytest.raises(data.CorruptImageError, match="differ in size.*28x30x3: 1 images"):
        data.load_arrays(root, cache_dir=tmp_path / "cache")


def test_changed_archive_is_decoded_again(tmp_path):
    images = _synthetic()
    source = _write_tar(tmp_path / "set.tar", _members(images), "w")
    cache_dir = tmp_path / "cache"
    data.load_arrays(source, cache_dir=cache_dir)
    changed = _synthetic(seed=5)
    _write_tar(source, _members(changed), "w")
    _assert_round_trip(data.load_arrays(source, cache_dir=cache_dir), changed)


# --- load_cifar10 --------------------------------------------------------------------------


def test_load_cifar10_returns_the_datasets_with_a_balanced_limit(tmp_path):
    images = _synthetic(n_train=4, n_test=2)
    source = _write_folder(tmp_path / "set", images)
    ds = data.load_cifar10(
        source, batch_size=2, cache_dir=tmp_path / "cache", train_limit=6, test_limit=3
    )
    assert (ds.num_train, ds.num_test) == (6, 3)
    assert ds.class_names == sorted(CLASSES)
    assert "image folder" in ds.source
    train_labels = np.concatenate([y.numpy() for _, y in ds.train])  # tf.data by default
    np.testing.assert_array_equal(np.bincount(train_labels), [2, 2, 2])
    test_labels = np.concatenate([y.numpy() for _, y in ds.test])
    np.testing.assert_array_equal(test_labels, [0, 1, 2])
    assert _benchmark_pipeline()(ds.train, steps=5) > 0


def _benchmark_pipeline():
    # A benchmark helper, outside the package; `pytest` (unlike `python -m pytest`) does not
    # put the repository root on sys.path.
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks.pipeline import benchmark_pipeline

    return benchmark_pipeline
