#!/usr/bin/env bash
# Installs what the tests need besides Go and ONNX Runtime: Debian's
# python3-onnx, the ONNX reference checker that onnxgen's tests run the
# exported graphs through. Fast when already installed.
set -euo pipefail

py=/usr/bin/python3
if [[ -x "${py}" ]] && "${py}" -c 'import onnx' 2>/dev/null; then
	exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
	echo "setup-test-deps: the tests need Debian's python3-onnx; install it with: sudo apt-get install -y python3-onnx" >&2
	exit 1
fi
echo "setup-test-deps: installing python3-onnx (the ONNX checker the tests use)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends python3-onnx >/dev/null
"${py}" -c 'import onnx; print("setup-test-deps: python3-onnx", onnx.__version__)'
