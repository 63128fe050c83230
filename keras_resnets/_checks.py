"""One-line checks of argument values, shared by the layers, models, data and training.

They need only NumPy, so that the data pipelines and the CLI's argument checks use them
without importing Keras. Each raises a ValueError that names the argument and echoes the
value ("Received: batch_size=0"), and returns the value as a Python scalar (a NumPy
integer from a sweep becomes an int, so that configs stay JSON).
"""

import numbers

import numpy as np


def is_integer(value):
    """An integer, NumPy's included, and not a bool (True == 1) nor a float (20.0 == 20)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_bool(name, value):
    """`value` as a bool; a ValueError unless it is one (the string "False" is truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return bool(value)


def check_int(name, value, *, minimum=1):
    """`value` as an int; a ValueError unless it is an integer (NumPy's too) >= `minimum`
    (None: any integer)."""
    if not is_integer(value) or (minimum is not None and value < minimum):
        wanted = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise ValueError(f"`{name}` must be {wanted}. Received: {name}={value!r}")
    return int(value)


def check_kernel_size(name, value):
    """A positive int or a pair of them, as Keras's Conv2D takes (a `.keras` file stores a
    pair as a list); returned as an int or a tuple."""
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(is_integer(v) and v >= 1 for v in value)
    ):
        return tuple(int(v) for v in value)
    if is_integer(value) and value >= 1:
        return int(value)
    raise ValueError(
        f"`{name}` must be a positive integer or a pair of them. Received: {name}={value!r}"
    )


def check_number(name, value, *, interval, ok):
    """`value` as a float; a ValueError naming `interval` (e.g. "in [0, 1)") unless it is a
    real number (not a bool, not text) for which `ok(value)` holds."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) or not ok(value):
        raise ValueError(f"`{name}` must be a number {interval}. Received: {name}={value!r}")
    return float(value)
