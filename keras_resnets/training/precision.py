"""The dtype policy of a run: `train(mixed_precision=...)` and `--mixed-precision`.

Whether the hardware computes bfloat16 natively is `keras_resnets.machine`'s to say; this
module only turns the user's choice into a Keras dtype policy name.
"""

from keras_resnets import machine

MIXED_PRECISION = (None, "float32", "mixed_float16", "mixed_bfloat16", "auto")


def check_mixed_precision(mixed_precision):
    """Raise ValueError unless `mixed_precision` is one of `MIXED_PRECISION`."""
    if mixed_precision not in MIXED_PRECISION:
        raise ValueError(
            f"`mixed_precision` must be one of {list(MIXED_PRECISION)}. "
            f"Received: mixed_precision={mixed_precision!r}"
        )


def resolve_mixed_precision(mixed_precision):
    """The Keras dtype policy name for `mixed_precision` ("auto": mixed_bfloat16 where the
    hardware has native bfloat16, float32 elsewhere)."""
    check_mixed_precision(mixed_precision)
    if mixed_precision == "auto":
        return "mixed_bfloat16" if machine.has_native_bfloat16() else "float32"
    return "float32" if mixed_precision is None else mixed_precision
