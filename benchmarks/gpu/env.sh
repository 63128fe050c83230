# Sourced by check.sh and train.sh: the JAX backend, and Keras from .gpu/whl where the GPU
# machine lacks it (benchmarks/gpu/prepare.sh downloads the wheels). Expects $PY.
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
# JAX shares the GPU (with PyTorch in check.sh, with the other jobs in train.sh): no up-front
# 75% grab of its memory by the first JAX process.
export XLA_PYTHON_CLIENT_PREALLOCATE=false

if ! $PY -c "import keras" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu/whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
