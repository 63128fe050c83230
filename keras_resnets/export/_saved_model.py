"""The SavedModel that TensorFlow Serving loads as it is, with its warm-up requests.

Its signatures are the table `signatures.SIGNATURES`, which drives the functions below,
their saved names, the warm-up file and the metadata:

- `serving_default`: `images`, float32 `[batch, height, width, 3]` raw RGB pixel values 0..255.
- `serving_uint8`: `images`, uint8, the same shape.
- `serving_bytes`: `image_bytes`, string `[batch]` of encoded JPEG/PNG/GIF/BMP/WebP files
  (TF Serving REST: `{"b64": "..."}`), decoded and resized inside the graph.

All return `probabilities` (float32 `[batch, classes]`), `classes` (int64 `[batch]`, the
argmax) and, when class names were given, `class_names` (string `[batch]`). The model's own
normalisation runs inside the graph, so clients send raw pixels and never normalise.
"""

from pathlib import Path

from keras_resnets.export import _common, signatures
from keras_resnets.export import _warmup as warmup_lib
from keras_resnets.export.signatures import SIGNATURES

WARMUP_PATH = Path("assets.extra") / "tf_serving_warmup_requests"


def write(model, folder, *, version, contract, warmup=True):
    """Write the SavedModel (and its warm-up file) into `folder`. See `export`."""
    import tensorflow as tf  # only export needs TensorFlow: imported on use

    module = _serving_module(model, contract)
    tf.saved_model.save(
        module, str(folder), signatures={name: getattr(module, name) for name in SIGNATURES}
    )
    inputs = signatures.inputs(contract.height, contract.width)
    wrote_warmup = False
    if warmup:
        wrote_warmup = warmup_lib.write(
            folder / WARMUP_PATH, inputs, image_size=(contract.height, contract.width)
        )
    _common.write_metadata(
        folder,
        model=model,
        version=version,
        contract=contract,
        fmt="saved_model",
        inputs=inputs,
        extra={"warmup_requests": str(WARMUP_PATH) if wrote_warmup else None},
    )


def describe(version_dir):
    """The signatures of a SavedModel, loaded with plain `tf.saved_model.load`."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(version_dir))
    signatures = {}
    for name in sorted(loaded.signatures.keys()):
        function = loaded.signatures[name]
        _, input_specs = function.structured_input_signature
        signatures[name] = {
            "inputs": {key: _describe(spec) for key, spec in sorted(input_specs.items())},
            "outputs": {
                key: _describe(spec) for key, spec in sorted(function.structured_outputs.items())
            },
        }
    return signatures


def _serving_module(model, contract):
    """The `tf.Module` holding the signatures.

    A plain `tf.Module` with `tf.function`s rather than `keras.export.ExportArchive`: the
    archive's endpoints are equally possible, but here the signature input names, the
    in-graph checks and the tracked variables are all explicit in a few lines.

    The module tracks the `tf.Variable`s under the Keras variables, not the Keras model: a
    tracked Keras 3 variable is saved through a copy (`Variable_N`) that the restore op fills
    while the serving graph reads the original, so TF Serving, which loads through that
    restore op (TF1-style session), fails with "Could not find variable ...".
    """
    import tensorflow as tf

    height, width, class_names = contract.height, contract.width, contract.class_names
    module = tf.Module()
    module.model_variables = [variable.value for variable in model.variables]
    input_dtype = model.inputs[0].dtype

    def predict(images):
        outputs = model(tf.cast(images, input_dtype), training=False)
        # float32 outputs also under a mixed_float16 / mixed_bfloat16 policy.
        outputs = tf.cast(outputs, tf.float32)
        probabilities = tf.nn.softmax(outputs, axis=-1) if contract.apply_softmax else outputs
        classes = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        results = {"probabilities": probabilities, "classes": classes}
        if class_names is not None:
            results["class_names"] = tf.gather(tf.constant(list(class_names)), classes)
        return results

    # The graph's preprocessing of each signature's input: `signatures.PREPROCESSING`.
    preprocessing = {
        "pixels": lambda images: _finite(
            _checked_images(images, height=height, width=width, dtype="float32")
        ),
        "uint8_pixels": lambda images: tf.cast(
            _checked_images(images, height=height, width=width, dtype="uint8"), tf.float32
        ),
        "encoded_images": lambda image_bytes: _decoded_images(
            image_bytes, height=height, width=width
        ),
    }

    def serving_function(signature):
        prepare = preprocessing[signature.preprocessing]
        shape = signature.input_entry(height, width)["shape"]
        spec = tf.TensorSpec(shape, tf.dtypes.as_dtype(signature.dtype), name=signature.input)

        # The spec's name, not the argument's, is the signature's input name.
        @tf.function(input_signature=[spec])
        def serve(inputs):
            return predict(prepare(inputs))

        return serve

    for signature in SIGNATURES.values():
        setattr(module, signature.name, serving_function(signature))
    return module


def _checked_images(images, *, height, width, dtype):
    """`images` after a run-time check of its shape, with the static shape set.

    Neither TF Serving nor a loaded signature called from Python checks a request against the
    signature's shape, so without this a wrong request fails deep in the network ("input depth
    must be evenly divisible by filter depth") or, for a wrong height and width, is silently
    classified. The check reads `tf.shape` at run time, which Grappler cannot fold.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    # Padding makes a rank < 4 request a mismatch rather than a slicing error; the trailing 0
    # requires rank 4 (a rank 5 request is then caught by `ensure_shape` below).
    received = tf.pad(shape, [[0, 5]])[1:5]
    # The other signatures, from the table: pixels of the other dtype, and encoded files.
    other = next(s for s in SIGNATURES.values() if s.input == "images" and s.dtype != dtype)
    encoded = next(s for s in SIGNATURES.values() if s.preprocessing == "encoded_images")
    check = tf.debugging.Assert(
        tf.reduce_all(tf.equal(received, [height, width, 3, 0])),
        [
            f"`images` must be {dtype} of shape [batch, {height}, {width}, 3]: RGB pixel "
            f"values 0..255 (the `{other.name}` signature takes them as {other.dtype}; send "
            f"encoded files to the `{encoded.name}` signature to have them resized). "
            "Received shape:",
            shape,
        ],
        summarize=8,
    )
    with tf.control_dependencies([check]):
        images = tf.identity(images)
    # A static channel count also keeps Keras's TF conv off its XLA path (which it takes when
    # channels are unknown), so the graph needs no XLA at serving time.
    return tf.ensure_shape(images, [None, height, width, 3])


def _finite(images):
    """A NaN or infinite pixel would give NaN probabilities (and class 0): refuse it."""
    import tensorflow as tf

    return tf.debugging.assert_all_finite(
        images, "`images` holds NaN or infinite values: send RGB pixel values 0..255."
    )


def _decoded_images(image_bytes, *, height, width):
    """Decode a `[batch]` string tensor of encoded images to float32 `[batch, H, W, 3]`."""
    import tensorflow as tf

    shape = tf.shape(image_bytes)
    padded = tf.pad(shape, [[0, 2]])
    is_batch = tf.logical_and(tf.equal(tf.size(image_bytes), padded[0]), tf.equal(padded[1], 0))
    check_rank = tf.debugging.Assert(
        is_batch,
        [
            "`image_bytes` must be a 1-D batch of encoded images (over REST, one "
            '{"b64": "..."} per instance). Received shape:',
            shape,
        ],
    )

    def decode(data):
        # The usual REST mistake: base64 text sent as a plain string instead of {"b64": ...}.
        # The check sits on the decode op itself so that it runs first.
        prefix = tf.strings.substr(data, 0, 4)
        check_base64 = tf.debugging.Assert(
            tf.logical_not(tf.logical_or(tf.equal(prefix, "iVBO"), tf.equal(prefix, "/9j/"))),
            [
                "`image_bytes` holds base64 text, not image bytes: over REST send each image "
                'as {"b64": "<base64>"} so that TF Serving decodes the base64.'
            ],
        )
        # channels=3 turns greyscale into RGB and drops alpha; expand_animations=False takes
        # a GIF's first frame. Both keep one [h, w, 3] uint8 image per request element.
        with tf.control_dependencies([check_base64]):
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
        # antialias=True when shrinking a large photo (as Pillow does); at the model's own
        # size, resize returns the pixels unchanged. Values stay within 0..255.
        return tf.image.resize(image, [height, width], antialias=True)

    with tf.control_dependencies([check_rank]):
        image_bytes = tf.reshape(image_bytes, [-1])
    images = tf.map_fn(
        decode, image_bytes, fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32)
    )
    return tf.ensure_shape(images, [None, height, width, 3])


def _describe(spec):
    shape = spec.shape.as_list() if spec.shape.rank is not None else None
    return {"dtype": spec.dtype.name, "shape": shape}
