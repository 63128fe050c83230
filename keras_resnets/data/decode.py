"""Decoding images to uint8 arrays: TensorFlow's decoder in chunks, else Pillow's, in threads.

Corrupt images and images of another shape are errors that name each file, never skipped:
a data set that silently lost images would give results that cannot be compared.
"""

import concurrent.futures
import functools
import io
import os
import re

import numpy as np

from keras_resnets.data import engines
from keras_resnets.data.arrays import (
    HOW_TO_POINT,
    SPLITS,
    Arrays,
    CorruptImageError,
    DataSourceError,
)

# What tf.io.decode_image (and Pillow) read.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@functools.cache
def _tf_decoder():
    """The chunk decoder, a `tf.function` made on first use (TensorFlow is optional)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def decode_many(encoded):
        # One graph call per chunk: TF decodes in C++ threads without holding the GIL, so it
        # overlaps with the archive readers, and skips eager per-call overhead.
        return tf.map_fn(
            _tf_decode_one,
            encoded,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
            parallel_iterations=16,
        )

    return decode_many


def _tf_decode_one(encoded):
    import tensorflow as tf

    # tf.io.decode_image reads PNG, JPEG, GIF, BMP and WebP; channels=3 turns greyscale,
    # palette and RGBA images into RGB.
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def _decode_chunk(chunk):
    """Decodes `[(split, class, path, bytes)]` to `[(split, class, path, image or error)]`.

    With TensorFlow, the fast path decodes the whole chunk at once. It fails as a whole if
    any image is corrupt or sized differently; the chunk is then decoded one image at a time
    to find out which, so that errors name each bad file. Without TensorFlow, Pillow decodes.
    """
    tf = engines.tensorflow()
    if tf is None:
        return _pil_decode_chunk(chunk)
    try:
        images = _tf_decoder()(tf.constant([data for *_, data in chunk])).numpy()
        return [(split, name, path, image) for (split, name, path, _), image in zip(chunk, images)]
    except tf.errors.OpError:
        pass
    decoded = []
    for split, class_name, path, data in chunk:
        try:
            result = _tf_decode_one(tf.constant(data)).numpy()
        except tf.errors.OpError as error:
            result = _DecodeError(re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w+\]", "", error.message))
        decoded.append((split, class_name, path, result))
    return decoded


def _pil_decode_one(data):
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            # The first frame of an animation, in RGB, as tf.io.decode_image(channels=3) gives.
            return np.asarray(image.convert("RGB"))
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, ...
        return _DecodeError(f"{type(error).__name__}: {error}")


def _pil_decode_chunk(chunk):
    # Pillow releases the GIL while it decodes, so threads decode in parallel.
    with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        images = list(pool.map(_pil_decode_one, [data for *_, data in chunk]))
    return [(split, name, path, image) for (split, name, path, _), image in zip(chunk, images)]


class _DecodeError(str):
    """Why an image could not be decoded."""


def decode_all(members, description, chunk_size=1024):
    """Decodes `(split, class, path, bytes)` members into `Arrays`, sorted by path.

    Corrupt images and images of a different shape are errors, never skipped: a data set
    that silently lost images would give results that cannot be compared.
    """
    from tqdm import tqdm

    decoded = {split: [] for split in SPLITS}
    failures = []
    progress = tqdm(desc=f"Decoding {description}", unit=" images", disable=None)
    if progress.disable:  # no terminal for a bar (a log file, CI): one line instead
        print(f"Decoding {description} (once; later runs read the cache)...")
    for chunk in _chunks(members, chunk_size):
        for split, class_name, path, image in _decode_chunk(chunk):
            if isinstance(image, _DecodeError):
                failures.append((path, image))
            else:
                decoded[split].append((class_name, path, image))
        progress.update(len(chunk))
    progress.close()
    if failures:
        failures.sort()
        total = len(failures) + sum(len(v) for v in decoded.values())
        listing = "\n".join(f"  {path}: {why}" for path, why in failures[:5])
        raise CorruptImageError(
            f"{len(failures)} of {total} images in {description} could not be decoded; the "
            f"first is {failures[0][0]}. Fix or remove them:\n{listing}"
        )
    for split in SPLITS:
        if not decoded[split]:
            raise DataSourceError(
                f"No {split} images in {description}: expected {split}/<class>/<image> "
                f"({', '.join(IMAGE_EXTENSIONS)}). {HOW_TO_POINT}"
            )
        decoded[split].sort(key=lambda item: (item[0], item[1]))
    _check_shapes(decoded, description)

    class_names = sorted({class_name for class_name, _, _ in decoded["train"]})
    test_only = sorted({c for c, _, _ in decoded["test"]} - set(class_names))
    if test_only:
        raise DataSourceError(f"{description}: test classes {test_only} have no train images.")
    index = {name: i for i, name in enumerate(class_names)}
    arrays = []
    for split in SPLITS:
        arrays.append(np.stack([image for _, _, image in decoded[split]]))
        arrays.append(np.array([index[c] for c, _, _ in decoded[split]], dtype=np.int32))
    return Arrays(*arrays, class_names, description)


def _chunks(iterable, size):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_shapes(decoded, description):
    shapes = {}
    for split in SPLITS:
        for _, path, image in decoded[split]:
            shapes.setdefault(image.shape, []).append(path)
    if len(shapes) > 1:
        summary = "; ".join(
            f"{'x'.join(map(str, shape))}: {len(paths)} images, first {min(paths)}"
            for shape, paths in sorted(shapes.items(), key=lambda kv: -len(kv[1]))
        )
        raise CorruptImageError(
            f"Images in {description} differ in size ({summary}). All images must have the "
            "same height and width; resize them beforehand."
        )
