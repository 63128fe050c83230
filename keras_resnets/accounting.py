"""Model accounting: parameter counts and multiply-adds, and the walk over every sublayer.

`keras_resnets.utils` is the old name of this module, kept as an alias.
"""

import keras
import numpy as np


def count_params(model, trainable_only=True):
    """Number of (trainable) parameters, as torchvision and the papers count them."""
    weights = model.trainable_weights if trainable_only else model.weights
    return int(sum(np.prod(w.shape) for w in weights))


def sublayers(layer, *, include_self=True):
    """Every layer inside `layer`, nested ones too (a `ResUnit`'s convs, a model's units),
    each once, breadth-first; `layer` itself first with `include_self`.

    Keras 3 has no public recursive walk (`Model.layers` lists the top level only), so this
    calls `Layer._flatten_layers`, the private walk that Keras's own `count_params`,
    `summary` and trainers use; it is the one call to it in the package.
    """
    return list(layer._flatten_layers(include_self=include_self, recursive=True))


def count_macs(model, input_shape=None):
    """Multiply-accumulates of one forward pass for one image (the papers' "FLOPs").

    Counts convolutions and dense layers, the operations He et al. 2015 (Table 1) and Huang et
    al. 2017 count; BN, activations, pooling and additions are left out, as there. Shapes
    are recorded by running the model once on a zero image, since nested layers only know
    their output sizes once called; TF's profiler would count every op and needs graph mode.

    Args:
        model: a built `keras.Model` with a single image input.
        input_shape: (H, W, C) to count at; defaults to the model's input shape.
    """
    input_shape = tuple(input_shape or model.input_shape[1:])
    if any(d is None for d in input_shape):
        raise ValueError(
            f"count_macs needs a fixed input size. Received: input_shape={input_shape}"
        )
    counted = (keras.layers.Conv2D, keras.layers.Dense, keras.layers.DepthwiseConv2D)
    macs = []
    patched = []

    def recorder(layer, call):
        def wrapped(*args, **kwargs):
            out = call(*args, **kwargs)
            positions = int(np.prod(out.shape[1:-1])) if len(out.shape) > 2 else 1
            macs.append(positions * int(np.prod(layer.kernel.shape)))
            return out

        return wrapped

    for layer in sublayers(model):
        if isinstance(layer, counted):
            patched.append(layer)
            layer.call = recorder(layer, layer.call)
    try:
        model(np.zeros((1,) + input_shape, "float32"), training=False)
    finally:
        for layer in patched:
            del layer.call  # back to the class's method
    return int(sum(macs))
