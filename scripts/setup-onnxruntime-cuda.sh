#!/usr/bin/env bash
# Installs a GPU build of ONNX Runtime and its CUDA execution provider beside
# the CPU library of "make setup", never in its place.
#
# Two npm packages repackage Microsoft's MIT-licensed ONNX Runtime 1.29.0
# binaries: com.github.asus4.onnxruntime holds the GPU build of
# libonnxruntime.so, com.github.asus4.onnxruntime.linux-x64-gpu the CUDA
# provider plug-in and the shared provider library it needs (329 MB of
# tarballs, 258 MB installed). The three files end up in
# .cache/onnxruntime-cuda/ (git-ignored), where runtime.InitDevice looks first
# for --device cuda; their SHA-256 are recorded in
# runtime/onnxruntime-cuda.sha256 and checked on every run (when all three are
# there and match, this script only hashes them).
#
# Running the provider needs the host's NVIDIA driver, CUDA 13's runtime,
# cuBLAS and cuRAND, and cuDNN 9 (docs/gpu.md); installing it does not.
#
# Usage: scripts/setup-onnxruntime-cuda.sh   (normally through "make setup-cuda")
set -euo pipefail

ORT_VERSION=1.29.0
MAIN_PACKAGE=com.github.asus4.onnxruntime@0.4.9
GPU_PACKAGE=com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9
PLUGINS=package/Plugins/Linux/x64

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=npm-libs.sh
source "${repo}/scripts/npm-libs.sh"

if [[ "$(uname -s)/$(uname -m)" != Linux/x86_64 ]]; then
	echo "setup-onnxruntime-cuda: these packages carry the CUDA build for Linux/x86_64 only; this machine is $(uname -s)/$(uname -m)" >&2
	exit 1
fi

# The library is installed under its soname, as the CPU library is.
npm_install_libs setup-onnxruntime-cuda "${repo}/.cache/onnxruntime-cuda" "${repo}/runtime/onnxruntime-cuda.sha256" \
	"ONNX Runtime ${ORT_VERSION} (GPU build) with its CUDA provider" \
	"libonnxruntime.so.1=${MAIN_PACKAGE}:${PLUGINS}/libonnxruntime.so" \
	"libonnxruntime_providers_cuda.so=${GPU_PACKAGE}:${PLUGINS}/libonnxruntime_providers_cuda.so" \
	"libonnxruntime_providers_shared.so=${GPU_PACKAGE}:${PLUGINS}/libonnxruntime_providers_shared.so"
