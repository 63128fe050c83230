#!/usr/bin/env bash
# Run once on the CPU machine, in the repository root, before a GPU (device) session:
# fills .gpu/ (ignored by git; ~40 MB, within the 64 MiB `carry` takes) with what the GPU
# machine lacks, for `carry`:
#   - Keras and its two dependencies that machine does not have (Python 3.12 wheels);
#   - CIFAR-10 (../shared does not travel to that machine) in .gpu/cifar10-gpu/: the JPEG q75
#     copy's training archive (15 MB) and the real, PNG test archive (22 MB), so that runs
#     there train on JPEG images but are scored, every epoch, on the same test images as here.
# Then run benchmarks/gpu/check.sh there; see benchmarks/README.md.
set -euo pipefail
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
mkdir -p .gpu/whl
KERAS_VERSION=$(python3 -c "from importlib.metadata import version; print(version('keras'))")
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/whl \
  "keras==${KERAS_VERSION}" namex optree
rm -rf .gpu/cifar10-jpeg .gpu/cifar10-gpu
mkdir -p .gpu/cifar10-gpu
cp "${SHARED:-../shared}/cifar10-jpeg/cifar10-jpeg-train.tar.xz" \
  "${SHARED:-../shared}/cifar10/cifar10-test.tar.xz" .gpu/cifar10-gpu/
du -sh .gpu
ls .gpu/whl
