"""Runs Python as if TensorFlow were not installed, as on the GPU machines (JAX, PyTorch).

    python tests/without_tensorflow.py -m keras_resnets train ...
    python tests/without_tensorflow.py -c "code" [args]

A meta-path finder makes importing `tensorflow`, `tensorflow_datasets` or `tf_keras` raise
ModuleNotFoundError; nothing is put into `sys.modules`, where Keras would take a `None` entry
for an imported TensorFlow.
"""

import importlib.abc
import importlib.machinery
import runpy
import sys

BLOCKED = ("tensorflow", "tensorflow_datasets", "tf_keras")


class _NoTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # A spec whose loading fails, rather than an error from find_spec: code that only probes
    # with importlib.util.find_spec (torch does, for many modules) must not break.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {spec.name!r}", name=spec.name)

    def exec_module(self, module):
        raise AssertionError("unreachable")


sys.meta_path.insert(0, _NoTensorFlow())

if __name__ == "__main__":
    if sys.argv[1] == "-m":
        sys.argv = sys.argv[2:]
        sys.path.insert(0, "")  # as `python -m` does: the working directory first
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    elif sys.argv[1] == "-c":
        code, sys.argv = sys.argv[2], ["-c", *sys.argv[3:]]
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
    else:
        raise SystemExit(__doc__)
