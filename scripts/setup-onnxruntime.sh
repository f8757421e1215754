#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that package runtime loads.
#
# The library comes from the npm registry (onnxruntime-node ships the CPU
# build of libonnxruntime for linux/x64 and linux/arm64), so no network
# beyond the package registries is needed. The SHA-256 of each build is
# recorded in runtime/onnxruntime.sha256 (x64) and
# runtime/onnxruntime-arm64.sha256 (arm64) and checked on every run; when the
# library is already there and matches, this script only hashes it and exits
# (scripts/npm-libs.sh does the fetching and checking).
#
# Usage: scripts/setup-onnxruntime.sh [TARGET]
#   (no TARGET)  the build for this machine, in .cache/onnxruntime, where
#                runtime.FindLibrary looks for it ("make setup"; on an arm64
#                Linux machine that is the arm64 build)
#   arm64        the linux/arm64 build for a cross-compiled nasctl, in
#                .cache/onnxruntime-arm64 ("make build-arm64", docs/arm64.md)
set -euo pipefail

ORT_VERSION=1.30.0
NPM_PACKAGE="onnxruntime-node@${ORT_VERSION}"
MEMBER_DIR=package/bin/napi-v6/linux

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=npm-libs.sh
source "${repo}/scripts/npm-libs.sh"

die() {
	echo "setup-onnxruntime: $*" >&2
	exit 1
}

# install ARCH CACHE: the package's linux/ARCH build into CACHE, checked
# against runtime/onnxruntime[-ARCH].sha256 (x64 keeps the original name).
install() {
	local arch="$1" cache="$2" sumfile="${repo}/runtime/onnxruntime.sha256"
	[[ "${arch}" == x64 ]] || sumfile="${repo}/runtime/onnxruntime-${arch}.sha256"
	npm_install_libs setup-onnxruntime "${cache}" "${sumfile}" "ONNX Runtime ${ORT_VERSION} for linux/${arch} (${NPM_PACKAGE})" \
		"libonnxruntime.so.1=${NPM_PACKAGE}:${MEMBER_DIR}/${arch}/libonnxruntime.so.1"
}

case "${1:-}" in
arm64)
	install arm64 "${repo}/.cache/onnxruntime-arm64"
	exit 0
	;;
"") ;;
*) die "unknown target '$1' (valid: no argument for this machine, or arm64)" ;;
esac

# A library the user chose wins on every machine: nothing is downloaded.
if [[ -n "${ONNXRUNTIME_LIB:-}" ]]; then
	[[ -f "${ONNXRUNTIME_LIB}" ]] || die "ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB} is not a file; point it at a libonnxruntime shared library, or unset it to install ONNX Runtime ${ORT_VERSION} into .cache/onnxruntime"
	echo "setup-onnxruntime: using ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB}; nothing downloaded"
	exit 0
fi

# The npm package carries linux/x64 and linux/arm64 builds. Elsewhere, point
# ONNXRUNTIME_LIB at a build of ONNX Runtime for this machine.
os="$(uname -s)"
arch="$(uname -m)"
case "${os}/${arch}" in
Linux/x86_64) install x64 "${repo}/.cache/onnxruntime" ;;
Linux/aarch64 | Linux/arm64) install arm64 "${repo}/.cache/onnxruntime" ;;
*)
	die "this machine is ${os}/${arch}, but ${NPM_PACKAGE} ships libonnxruntime for Linux on x86_64 and aarch64 only.
  Install ONNX Runtime ${ORT_VERSION} for this machine (https://github.com/microsoft/onnxruntime/releases)
  and set ONNXRUNTIME_LIB to the path of its libonnxruntime shared library."
	;;
esac
