"""Tests of `keras_resnets.data`: the sources, the cache, the errors and the pipelines.

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


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No data anywhere: empty HOME, TFDS and Keras dirs, no env var, no network."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setenv("KERAS_RESNETS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.delenv("KERAS_RESNETS_DATA", raising=False)

    def no_network(builder):
        raise ConnectionError("network disabled by the test")

    monkeypatch.setattr(data.tfds, "_tfds_download", no_network)
    return tmp_path


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


def test_missing_data_lists_every_place_tried(isolated):
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


# --- pipelines ------------------------------------------------------------------------------


def _arrays(n=40, size=(32, 32), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *size, 3), dtype=np.uint8), np.arange(n, dtype=np.int32)


ENGINES = ("tf.data", "numpy")


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
