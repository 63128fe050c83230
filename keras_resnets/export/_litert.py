"""LiteRT (TFLite) export: `model.tflite` for the `ai_edge_litert` interpreter, phones and
edge devices, in float32 or with dynamic-range int8 weights.

Keras's own exporter (`model.export(format="litert")`) writes the file; the export adds only
what it lacks: the `probabilities`/`classes` outputs (a wrapping functional model), builtin
ops only, and the quantisation switch.
"""

from keras_resnets.export import _common, _head

FILE = _common.MODEL_FILES["litert"]
QUANTIZATIONS = (None, "int8")


def write(model, folder, *, version, contract, quantize=None):
    """Write `folder/model.tflite` and the metadata. See `keras_resnets.export.export`."""
    import tensorflow as tf

    serving = _head.serving_model(model, contract)
    # Builtin ops only: Keras's default also allows SELECT_TF_OPS, whose Flex ops the plain
    # `ai_edge_litert` interpreter (and most phone builds) cannot run; better to fail here.
    options = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if quantize == "int8":
        # Dynamic-range quantisation: int8 weights, float32 activations computed with int8
        # kernels where they exist. Needs no calibration data.
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
    serving.export(str(folder / FILE), format="litert", verbose=False, **options)
    _common.write_metadata(
        folder,
        model=model,
        version=version,
        contract=contract,
        fmt="litert",
        inputs=[_head.input_entry(contract)],
        extra={"quantization": "dynamic_range_int8" if quantize == "int8" else None},
    )


def describe(version_dir):
    """The signatures of `model.tflite`, read with the `ai_edge_litert` interpreter."""
    interpreter_lib = _common.require(
        "ai_edge_litert.interpreter", purpose="Reading a LiteRT export"
    )
    interpreter = interpreter_lib.Interpreter(model_path=str(version_dir / FILE))
    signatures = {}
    for name in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner(name)

        def describe_all(details):
            return {
                key: {
                    "dtype": d["dtype"].__name__,
                    "shape": [None if s < 0 else int(s) for s in d["shape_signature"]],
                }
                for key, d in sorted(details.items())
            }

        signatures[name] = {
            "inputs": describe_all(runner.get_input_details()),
            "outputs": describe_all(runner.get_output_details()),
        }
    return signatures
