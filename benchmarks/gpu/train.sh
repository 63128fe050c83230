#!/usr/bin/env bash
# Train the CIFAR-10 networks that issue 12 still lacks, on a lent GPU, in one device call.
#
# The GPU machines have JAX but no TensorFlow: training runs on the JAX backend with the NumPy
# pipeline, on the JPEG q75 copy of CIFAR-10's training images (../shared does not travel),
# scored every epoch on the real (PNG) test set, as here (.gpu/cifar10-gpu). Prepare once on the
# CPU machine with benchmarks/gpu/prepare.sh, then call the device tool with
#   command: bash benchmarks/gpu/train.sh    carry: [".gpu"]    timeout_s: 590
# Jobs run TRAIN_PARALLEL at a time on the one GPU (small CIFAR nets leave most of it idle)
# and all stop by TRAIN_BUDGET_S seconds after the start. Each job comes back as one file,
# $OUT/<job>.tar: its run.json, summary.json (only if it finished), history.csv, errors.png
# and last.weights.h5 (float32, the last finished epoch); the device tool returns at most 8
# files of 16 MiB, so at most 7 jobs. Back on the CPU machine, for each finished job:
#   mkdir -p runs/gpu/JOB && tar -xf /work/.device/.../JOB.tar -C runs/gpu/JOB
#   python -m keras_resnets.weights.ship runs/gpu/JOB --data ../shared/cifar10 --commit SHA
# which scores the weights on the PNG test set with TensorFlow and records the GPU and the
# JPEG training images.
#
# TRAIN_JOBS replaces the list below (one job a line: name, then `keras-resnets train`
# arguments). GPU_TRAIN_QUICK=1 shrinks every job to a few steps; with
# PY="python3 tests/without_tensorflow.py" it rehearses the script on a CPU machine.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_train}
mkdir -p "$OUT"
exec > >(tee "$OUT/train.log") 2>&1
PY=${PY:-python3}
BUDGET=${TRAIN_BUDGET_S:-540}
PARALLEL=${TRAIN_PARALLEL:-3}
START=$SECONDS

# Issue 12's networks that no CPU run has trained yet, with the papers' own recipes (He et al.,
# Table 6; Huang et al.), then ResNet-56 (0.20 points short after 60 CPU epochs of 'fast')
# and -44, -32 and -20 (above the paper after 60 CPU epochs) with He et al.'s 164 epochs. The
# article's four trained on the CPU. The precision is the GPU's native bf16. Shipping a run
# replaces the file of the same model and depth (the manifest's key): ship one only where it
# scores higher.
DEFAULT_JOBS="cifar_resnet110 --model cifar_resnet --depth 110 --recipe paper
cifar_densenet_bc100 --model cifar_densenet_bc --depth 100 --recipe densenet
cifar_resnet56 --model cifar_resnet --depth 56 --recipe paper
cifar_resnet44 --model cifar_resnet --depth 44 --recipe paper
cifar_resnet32 --model cifar_resnet --depth 32 --recipe paper
cifar_resnet20 --model cifar_resnet --depth 20 --recipe paper"
JOBS=${TRAIN_JOBS:-$DEFAULT_JOBS}
QUICK_ARGS=""
if [ "${GPU_TRAIN_QUICK:-0}" = 1 ]; then
  QUICK_ARGS="--epochs 2 --steps-per-epoch 2 --batch-size 32 --train-limit 256 --test-limit 128"
fi

# shellcheck source=benchmarks/gpu/env.sh
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
# Decode the archives once, before the jobs all try to at the same time.
$PY -c "from keras_resnets import data; print(data.load_arrays('.gpu/cifar10-gpu').x_train.shape)"

pack() {  # pack JOB: the job's run folder as $OUT/JOB.tar, with its weights alone
  local run=/tmp/gpu_runs/$1
  if [ -f "$run/last.keras" ]; then
    $PY -c "import sys, keras, keras_resnets; keras.saving.load_model(sys.argv[1], \
compile=False).save_weights(sys.argv[2])" "$run/last.keras" "$run/last.weights.h5"
  fi
  (cd "$run" && tar -cf "$OUT/$1.tar" --ignore-failed-read run.json summary.json history.csv \
    errors.png last.weights.h5 2>/dev/null)
}

train() {  # train JOB ARGS...: one `keras-resnets train`, cut at the budget's end
  local job=$1
  shift
  local left=$((BUDGET - (SECONDS - START)))
  if [ "$left" -lt 30 ]; then
    echo "== $job: skipped, ${left}s of the budget left"
    return
  fi
  echo "== $job: $* (at most ${left}s)"
  # shellcheck disable=SC2086
  timeout "$left" $PY -m keras_resnets train "$@" $QUICK_ARGS --mixed-precision mixed_bfloat16 \
    --data .gpu/cifar10-gpu --out "/tmp/gpu_runs/$job" --verbose 2 >"/tmp/gpu_runs/$job.log" 2>&1
  echo "== $job: exit $? after $((SECONDS - START))s; $(tail -n 1 "/tmp/gpu_runs/$job.log")"
  pack "$job"
}

mkdir -p /tmp/gpu_runs
while read -r job args; do
  [ -z "$job" ] && continue
  while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do wait -n; done
  # shellcheck disable=SC2086
  train "$job" $args &
  sleep 2
done <<<"$JOBS"
# The jobs by their ids: a bare `wait` would also wait for the `tee` above, which never ends.
# shellcheck disable=SC2046
wait $(jobs -p)
echo "== done after $((SECONDS - START))s"
ls -la "$OUT"
