#!/usr/bin/env bash
# What a person with an NVIDIA GPU runs to check nasctl on it (CI has no GPU,
# so this is not part of "make test"):
#
#   1. nasctl doctor --device cuda: the library, its CUDA provider and each
#      shared library that provider needs, the GPUs; it stops here, saying
#      what is missing, when CUDA cannot run;
#   2. one short training on the CPU (the CPU library of "make setup", all
#      cores) and the same on CUDA (the GPU build of "make setup-cuda", or
#      $ONNXRUNTIME_LIB when set);
#   3. their agreement (largest difference of a loss and of a weight) and the
#      speed-up of CUDA over the CPU, in training images per second.
#
# The network, image size and length can be changed through the environment:
#   ARCH, SIZE, COUNT, EPOCHS, BATCH, TOL (see the defaults below).
# TOL is looser than the 1e-5 the tests hold the CPU builds to: cuDNN's
# convolutions round differently from the CPU's, and Adam's normalised steps
# carry such differences through every update (docs/gpu.md).
#
# Usage: scripts/gpu-check.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"

ARCH="${ARCH:-C(64,3,1) - C(64,3,1) - P(2,2) - C(128,3,1) - C(128,3,1) - P(2,2) - GAP()}"
SIZE="${SIZE:-64}"
COUNT="${COUNT:-600}"
EPOCHS="${EPOCHS:-2}"
BATCH="${BATCH:-64}"
TOL="${TOL:-1e-2}"

make -s setup setup-cuda build
nasctl=bin/nasctl
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

echo "== nasctl doctor --device cuda"
"${nasctl}" doctor --device cuda

train=(doctor train --arch "${ARCH}" --size "${SIZE}" --count "${COUNT}" --epochs "${EPOCHS}" --batch "${BATCH}")
echo
echo "== training on the CPU (${EPOCHS} epochs of ${COUNT} images of ${SIZE}x${SIZE}: ${ARCH})"
ONNXRUNTIME_LIB="${repo}/.cache/onnxruntime/libonnxruntime.so.1" "${nasctl}" "${train[@]}" --device cpu --out "${work}/cpu.json"
echo "== the same on CUDA"
"${nasctl}" "${train[@]}" --device cuda --out "${work}/cuda.json"
echo
echo "== CUDA (B) against the CPU (A)"
"${nasctl}" doctor compare --tol "${TOL}" "${work}/cpu.json" "${work}/cuda.json"
