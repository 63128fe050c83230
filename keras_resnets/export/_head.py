"""The model as ONNX and LiteRT serve it: float32 `images` in, `probabilities` and `classes`
out, as one functional Keras model that Keras's and tf2onnx's converters take as it is."""

import keras

from keras_resnets.export.signatures import DEFAULT


class ArgMax(keras.layers.Layer):
    """`classes`: int64 argmax over the last axis, with `tf.argmax`.

    Not `keras.ops.argmax`: on TensorFlow it adds Bitcast and BitwiseAnd ops (so that -0.0
    ranks like +0.0), which tf2onnx cannot convert. Export runs on TensorFlow only.
    """

    def call(self, inputs):
        import tensorflow as tf

        return tf.argmax(inputs, axis=-1, output_type=tf.int64)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape[:-1], dtype="int64")


def serving_model(model, contract):
    """`model` wrapped: the default signature's input (`images` float32 `[batch, H, W, 3]`)
    -> `{"probabilities", "classes"}`."""
    import numpy as np

    shape = DEFAULT.input_entry(contract.height, contract.width)["shape"]
    images = keras.Input(tuple(shape[1:]), name=DEFAULT.input, dtype=DEFAULT.dtype)
    x = (
        keras.ops.cast(images, model.inputs[0].dtype)
        if model.inputs[0].dtype != "float32"
        else images
    )
    outputs = keras.ops.cast(model(x, training=False), "float32")
    probabilities = (
        keras.layers.Softmax(name="probabilities")(outputs) if contract.apply_softmax else outputs
    )
    serving = keras.Model(
        images,
        {"probabilities": probabilities, "classes": ArgMax(name="classes")(probabilities)},
        name=f"{model.name}_serving",
    )
    # Keras's exporters refuse a model that was never called.
    serving(np.zeros((1, contract.height, contract.width, 3), "float32"))
    return serving


def input_entry(contract):
    """The metadata's entry for the one input of ONNX and LiteRT: the default signature's."""
    return DEFAULT.input_entry(contract.height, contract.width)
