"""TF Serving's warm-up file: `assets.extra/tf_serving_warmup_requests`.

At load, before it marks a version available, TF Serving replays each request of this TFRecord
file (serialized `tensorflow.serving.PredictionLog`s) against the new version, so the first
real request does not pay for graph optimisation, oneDNN primitive creation and memory
allocation. One request per signature: each signature is its own function in the graph, with
its own first-call cost.

The protos come from `tensorflow-serving-api` (the `export` extra), TF Serving's own Python
package, so the records are the server's messages and not a re-implementation of them.
"""

import warnings

from keras_resnets.export import _common

# TF Serving reads at most this many warm-up records.
MAX_RECORDS = 1000
_GREY = 128


def write(path, inputs, *, image_size, batch_size=1):
    """Write one `PredictionLog` per entry of `inputs` (`[{signature, name, dtype, shape}]`).

    Returns whether the file was written: without `tensorflow-serving-api` the export goes on
    without it (TF Serving then serves the first requests slowly) and warns once.
    """
    try:
        predict = _common.require(
            "tensorflow_serving.apis.predict_pb2", purpose="TF Serving's warm-up file"
        )
        prediction_log = _common.require(
            "tensorflow_serving.apis.prediction_log_pb2", purpose="TF Serving's warm-up file"
        )
    except _common.MissingExtraError as error:
        warnings.warn(f"{error}; exported without it.", stacklevel=3)
        return False
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for entry in inputs[:MAX_RECORDS]:
            request = predict.PredictRequest()
            request.model_spec.signature_name = entry["signature"]
            request.inputs[entry["name"]].CopyFrom(
                tf.make_tensor_proto(
                    example_input(entry, image_size=image_size, batch_size=batch_size)
                )
            )
            log = prediction_log.PredictionLog(
                predict_log=prediction_log.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return True


def example_input(entry, *, image_size, batch_size=1):
    """A valid request value for a signature input: mid-grey images, or PNG files of them."""
    import numpy as np

    if entry["dtype"] == "string":
        import tensorflow as tf

        # The model's own size: the bytes path warms up decoding and the model.
        png = tf.io.encode_png(np.full(tuple(image_size) + (3,), _GREY, "uint8")).numpy()
        return np.array([png] * batch_size, dtype=object)
    shape = [batch_size] + list(entry["shape"][1:])
    return np.full(shape, _GREY, dtype=entry["dtype"])
