"""ONNX export: `model.onnx` for ONNX Runtime (and Triton's `onnxruntime` backend).

Keras's own `model.export(format="onnx")` is not used: on TensorFlow it hands the model's
concrete function to `tf2onnx.convert.from_function`, which lists the function's captured
tensors as graph inputs, so the mean and variance of the models' `Normalization` layer
(eager constants, not variables) become two required ONNX inputs and every request fails
with "Required inputs ... are missing". Freezing the function first
(`convert_variables_to_constants_v2`) makes them constants, and tf2onnx converts the frozen
graph. The ONNX names are then set to the contract's (`images`, `probabilities`, `classes`,
a `batch` dimension) and the class names written into the model's `metadata_props`, which
neither converter does.
"""

import json

from keras_resnets.export import _common, _head
from keras_resnets.export.signatures import DEFAULT

FILE = _common.MODEL_FILES["onnx"]
OPSET = 17
PURPOSE = "ONNX export"


def write(model, folder, *, version, contract, opset=OPSET):
    """Write `folder/model.onnx` and the metadata. See `keras_resnets.export.export`."""
    onnx = _common.require("onnx", purpose=PURPOSE)
    tf2onnx = _common.require("tf2onnx", purpose=PURPOSE)
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    serving = _head.serving_model(model, contract)
    entry = _head.input_entry(contract)
    spec = tf.TensorSpec(entry["shape"], tf.dtypes.as_dtype(entry["dtype"]), name=entry["name"])
    concrete = tf.function(lambda images: serving(images, training=False)).get_concrete_function(
        spec
    )
    frozen = convert_variables_to_constants_v2(concrete)
    # tf.nest flattens the output dict in sorted key order, the order of `frozen.outputs`.
    names = sorted(concrete.structured_outputs)
    proto, _ = tf2onnx.convert.from_graph_def(
        frozen.graph.as_graph_def(),
        input_names=[frozen.inputs[0].name],
        output_names=[tensor.name for tensor in frozen.outputs],
        opset=opset,
    )
    renames = {frozen.inputs[0].name: DEFAULT.input}
    renames.update({tensor.name: name for tensor, name in zip(frozen.outputs, names)})
    _rename(proto.graph, renames)
    onnx.helper.set_model_props(proto, metadata_props(contract, entry))
    proto.doc_string = (
        f"{model.name}: raw RGB pixel values 0..255 in (`images`, float32 [batch, "
        f"{contract.height}, {contract.width}, 3]); `probabilities` and `classes` out."
    )
    onnx.checker.check_model(proto)
    onnx.save(proto, str(folder / FILE))
    _common.write_metadata(
        folder,
        model=model,
        version=version,
        contract=contract,
        fmt="onnx",
        inputs=[entry],
        extra={"opset": opset},
    )


def metadata_props(contract, entry):
    """The ONNX model's `metadata_props` (strings only): class names and the input contract."""
    # The input without its signature name: ONNX has no signatures.
    props = {
        "input": json.dumps({key: entry[key] for key in ("name", "dtype", "shape")}),
        "pixel_range": "[0, 255]",
        "num_classes": str(contract.num_classes),
    }
    if contract.class_names is not None:
        props["class_names"] = json.dumps(list(contract.class_names))
    return props


def describe(version_dir):
    """Inputs, outputs and `metadata_props` of `model.onnx`, read with `onnx` (no runtime)."""
    onnx = _common.require("onnx", purpose="Reading an ONNX export")
    proto = onnx.load(str(version_dir / FILE), load_external_data=False)

    def value(info):
        tensor = info.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        return {"dtype": dtype, "shape": shape}

    return {
        "inputs": {i.name: value(i) for i in proto.graph.input},
        "outputs": {o.name: value(o) for o in proto.graph.output},
        "metadata_props": {p.key: p.value for p in proto.metadata_props},
        "opset": max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
    }


def _rename(graph, renames):
    """Rename tensors throughout `graph`, and call the dynamic first dimension `batch`."""
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        info.name = renames.get(info.name, info.name)
    for info in list(graph.input) + list(graph.output):
        dims = info.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
