"""The old name of `keras_resnets.accounting`, kept so that `keras_resnets.utils.count_params`
and `keras_resnets.utils.count_macs` (the README's and the benchmarks' spelling) keep working.
New code imports `keras_resnets.accounting`."""

from keras_resnets.accounting import count_macs, count_params, sublayers

# The old private spelling of `sublayers`.
_sublayers = sublayers

__all__ = ["count_macs", "count_params", "sublayers"]
