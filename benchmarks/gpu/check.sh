#!/usr/bin/env bash
# The GPU measurements of the benchmarks issue, in one device call of about 8 minutes.
#
# The GPU machines have JAX and PyTorch but no TensorFlow, so everything runs on the JAX
# backend, with the NumPy input pipeline and Pillow decoding. Prepare once on the CPU machine
# with benchmarks/gpu/prepare.sh, then call the device tool with
#   command: bash benchmarks/gpu/check.sh    carry: [".gpu"]    timeout_s: 580
# Outputs ($OUT, at most 8 files): env.txt, benchmarks.{json,md,png} (ResNet-50 bf16 training
# beside torchvision AMP channels_last, and the matmul peak), r56_{summary.json,history.csv,
# errors.png} (CIFAR ResNet-56 to 93%), check.log.
#
# GPU_CHECK_QUICK=1 shrinks everything to a smoke test; PY="python3 tests/without_tensorflow.py"
# rehearses it on a CPU machine with TensorFlow hidden.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
exec > >(tee "$OUT/check.log") 2>&1
PY=${PY:-python3}
QUICK=${GPU_CHECK_QUICK:-0}

# shellcheck source=benchmarks/gpu/env.sh
source "$(dirname "$0")/env.sh"

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  $PY -c "import jax, keras, numpy, torch; print('jax', jax.__version__, jax.devices()); print('keras', keras.__version__, 'numpy', numpy.__version__, 'torch', torch.__version__)"
} | tee "$OUT/env.txt"

if [ "$QUICK" = 1 ]; then
  R50="--model cifar_resnet20 --batch-size 32 --steps 1 --repeats 2 --warmup-steps 1"
  MATMUL="--size 512 --repeats 2"
  R56="--depth 20 --epochs 2 --steps-per-epoch 5 --train-limit 2000 --test-limit 500"
else
  R50="--model resnet50 --batch-size 256 --steps 10 --repeats 5 --warmup-steps 3"
  MATMUL="--size 8192 --repeats 10"
  R56="--depth 56 --epochs 40"
fi

echo "== matmul peak, then ResNet-50 bf16 training: ours (JAX, XLA) vs torchvision AMP =="
timeout 150 $PY -m benchmarks matmul $MATMUL --out "$OUT" --no-append
timeout 240 $PY -m benchmarks throughput $R50 --peers torch --precision bfloat16 \
  --modes train --out "$OUT"

echo "== CIFAR ResNet-56, fast recipe, bf16, JPEG q75 training images: time to 93% =="
rm -rf /tmp/r56
timeout 330 $PY -m keras_resnets train --model cifar_resnet $R56 --recipe fast \
  --mixed-precision mixed_bfloat16 --data .gpu/cifar10-gpu --out /tmp/r56 --verbose 2
for f in summary.json history.csv errors.png; do
  cp "/tmp/r56/$f" "$OUT/r56_$f" 2>/dev/null
done
$PY -m benchmarks time-to-accuracy --target 0.93 --run /tmp/r56 2>/dev/null | tail -5
ls -la "$OUT"
