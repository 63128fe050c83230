"""Which input-pipeline engine runs here: tf.data where TensorFlow is installed, else NumPy."""

ENGINES = ("auto", "tf.data", "numpy")


def tensorflow(required=None):
    """The `tensorflow` module, or None where it is not installed.

    With `required` (what needs it), a missing TensorFlow raises an ImportError saying so.
    """
    try:
        import tensorflow as tf
    except ImportError:
        if required:
            raise ImportError(
                f"{required} needs TensorFlow, which is not installed here. Install it "
                '(`pip install tensorflow`) or use the NumPy pipeline (engine="numpy").'
            ) from None
        return None
    return tf


def resolve_engine(engine=None):
    """`"tf.data"` or `"numpy"`: what `make_pipeline(engine=engine)` builds here."""
    if engine is None or engine == "auto":
        return "tf.data" if tensorflow() is not None else "numpy"
    if engine not in ENGINES[1:]:
        raise ValueError(
            f"`engine` must be one of 'auto', 'tf.data', 'numpy'. Received: engine={engine!r}"
        )
    return engine
