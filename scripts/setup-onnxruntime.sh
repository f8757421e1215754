#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that package runtime loads.
#
# The library comes from the npm registry (onnxruntime-node ships the CPU
# build of libonnxruntime for linux/x64), so no network beyond the package
# registries is needed. It ends up in .cache/onnxruntime/libonnxruntime.so.1
# (git-ignored), where runtime.FindLibrary looks for it. The SHA-256 of the
# extracted library is recorded in runtime/onnxruntime.sha256 and checked on
# every run; when the library is already there and matches, this script only
# hashes it and exits (scripts/npm-libs.sh does the fetching and checking).
#
# Usage: scripts/setup-onnxruntime.sh   (normally through "make setup")
set -euo pipefail

ORT_VERSION=1.30.0
NPM_PACKAGE="onnxruntime-node@${ORT_VERSION}"
MEMBER=package/bin/napi-v6/linux/x64/libonnxruntime.so.1

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${repo}/.cache/onnxruntime"
sumfile="${repo}/runtime/onnxruntime.sha256"
# shellcheck source=npm-libs.sh
source "${repo}/scripts/npm-libs.sh"

die() {
	echo "setup-onnxruntime: $*" >&2
	exit 1
}

# The npm package carries a linux/x64 build only. Elsewhere, point
# ONNXRUNTIME_LIB at a build of ONNX Runtime for this machine.
os="$(uname -s)"
arch="$(uname -m)"
if [[ "${os}" != Linux || "${arch}" != x86_64 ]]; then
	if [[ -n "${ONNXRUNTIME_LIB:-}" && -f "${ONNXRUNTIME_LIB}" ]]; then
		echo "setup-onnxruntime: ${os}/${arch}: no download; using ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB}"
		exit 0
	fi
	die "this machine is ${os}/${arch}, but ${NPM_PACKAGE} ships libonnxruntime for Linux/x86_64 only.
  Install ONNX Runtime ${ORT_VERSION} for this machine (https://github.com/microsoft/onnxruntime/releases)
  and set ONNXRUNTIME_LIB to the path of its libonnxruntime shared library."
fi

npm_install_libs setup-onnxruntime "${cache}" "${sumfile}" "ONNX Runtime ${ORT_VERSION} (${NPM_PACKAGE})" \
	"libonnxruntime.so.1=${NPM_PACKAGE}:${MEMBER}"
