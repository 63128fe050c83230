"""The served signatures: one table, read by everything that describes them.

`SIGNATURES` drives the SavedModel's `tf.function`s and their saved names
(`_saved_model`), its warm-up requests (`_warmup`), the ONNX and LiteRT models' input and
outputs (`_head`, `_onnx`), and the `inputs` and `outputs` of the metadata file written
beside every export (`assets.extra/keras_resnets.json`). Clients read that file, not this
module: `examples/serving_client.py --metadata` runs without keras_resnets installed.

This module imports nothing but the standard library.
"""

import dataclasses

SERVING_DEFAULT = "serving_default"
SERVING_UINT8 = "serving_uint8"
SERVING_BYTES = "serving_bytes"

# What a signature's graph does to its input before the model: the metadata's names for it
# (the keys of the functions in `_saved_model`), and what each means.
PREPROCESSING = {
    "pixels": "checked shape, finite values: raw RGB pixel values 0..255",
    "uint8_pixels": "checked shape, cast to float32: raw RGB pixel values 0..255",
    "encoded_images": "decoded (JPEG, PNG, GIF, BMP, WebP) to RGB, resized to the model's size",
}


@dataclasses.dataclass(frozen=True)
class Signature:
    """One served signature.

    Attributes:
        name: the signature name (TF Serving's `signature_name`).
        input: the name of its one input tensor.
        dtype: the input's dtype: "float32", "uint8" or "string".
        shape: the input's shape, with "H" and "W" for the model's height and width.
        preprocessing: a key of `PREPROCESSING`, what the graph does before the model.
    """

    name: str
    input: str
    dtype: str
    shape: tuple
    preprocessing: str

    def input_entry(self, height, width):
        """The metadata's description of the input: `{signature, name, dtype, shape,
        preprocessing}`, the shape with the model's size filled in."""
        size = {"H": height, "W": width}
        return {
            "signature": self.name,
            "name": self.input,
            "dtype": self.dtype,
            "shape": [size.get(d, d) for d in self.shape],
            "preprocessing": self.preprocessing,
        }


# The SavedModel's signatures, in the order of the warm-up requests and of the metadata's
# `inputs`. A signature has one dtype per input, so the 8-bit form of the same pixels (4x
# smaller gRPC requests) is a signature of its own. ONNX and LiteRT serve the first only.
SIGNATURES = {
    signature.name: signature
    for signature in (
        Signature(SERVING_DEFAULT, "images", "float32", (None, "H", "W", 3), "pixels"),
        Signature(SERVING_UINT8, "images", "uint8", (None, "H", "W", 3), "uint8_pixels"),
        Signature(SERVING_BYTES, "image_bytes", "string", (None,), "encoded_images"),
    )
}
DEFAULT = SIGNATURES[SERVING_DEFAULT]

# Every signature's outputs: name -> (dtype, shape with "C" for the number of classes).
OUTPUTS = {
    "probabilities": ("float32", (None, "C")),  # float32 also under mixed precision
    "classes": ("int64", (None,)),  # the argmax
}
# With `class_names`, the SavedModel's signatures also return the predicted class's name
# (ONNX and LiteRT keep the names in their metadata instead).
CLASS_NAMES_OUTPUT = ("class_names", "string", (None,))


def inputs(height, width, signatures=None):
    """`[input_entry]` of `signatures` (names; defaults to all of `SIGNATURES`)."""
    return [SIGNATURES[name].input_entry(height, width) for name in signatures or SIGNATURES]


def outputs(num_classes):
    """The metadata's `outputs`: `{name: [dtype, shape]}`, the shape filled in."""
    return {
        name: [dtype, [num_classes if d == "C" else d for d in shape]]
        for name, (dtype, shape) in OUTPUTS.items()
    }
