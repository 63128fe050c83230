"""The highway unit's gated mix, `x + sigmoid(z) * (h - x)`, as one fused kernel when
TensorFlow trains it.

The mix is four elementwise ops forward (sigmoid, subtract, multiply, add) and about as many
backward. XLA (the JAX backend, or `jit_compile=True`) fuses them into one loop, but
TensorFlow's graph runtime runs each as its own pass over the activations, and under
`mixed_bfloat16` on a CPU those passes are slow: on 2 AMX cores the mix and its gradient cost
the article's 25-unit HighwayNet about a sixth of its training step, which is most of why it
trained slower than the ResNet of the same multiply-adds (docs/benchmarks.md: `highway25`
beside its `unfused` peer). Keras has no fused op for it, and XLA on the whole model is
several times slower on a CPU (its convolutions are not oneDNN's), so on the TensorFlow
backend this module compiles the mix alone with XLA (`tf.function(jit_compile=True)`, one
small cluster forward and its gradient) for training: `HighwayUnit(fused=True)`.

Only training takes that path: inference, and so every export, stays plain TensorFlow ops,
since TF Serving's CPU build refuses XLA-compiled functions unless started with
`--xla_cpu_compilation_enabled`. Other backends take the `keras.ops` form.
"""

import functools

import keras


def gated_mix(inputs, gate_logits, transformed):
    """`inputs + sigmoid(gate_logits) * (transformed - inputs)`, in `keras.ops`."""
    gate = keras.ops.sigmoid(gate_logits)
    return inputs + gate * (transformed - inputs)


@functools.cache
def _xla_gated_mix():
    import tensorflow as tf

    return tf.function(gated_mix, jit_compile=True, reduce_retracing=True)


def gated_mix_training(inputs, gate_logits, transformed):
    """`gated_mix`, fused by XLA on the TensorFlow backend (the same function elsewhere)."""
    if keras.backend.backend() != "tensorflow":
        return gated_mix(inputs, gate_logits, transformed)
    return _xla_gated_mix()(inputs, gate_logits, transformed)
