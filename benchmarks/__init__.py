"""Speed and memory benchmarks of keras_resnets against its peers: `python -m benchmarks`.

See benchmarks/README.md.
"""
