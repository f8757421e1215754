#!/usr/bin/env bash
# Installs what the tests need besides Go and ONNX Runtime, from Debian's
# packages:
#   python3-onnx  the ONNX reference checker that onnxgen's tests run the
#                 exported graphs through
#   chromium      the headless browser the dashboard's tests drive (chromedp);
#                 skipped when $CHROMIUM names another Chromium binary
# Fast when already installed.
set -euo pipefail

missing=()
py=/usr/bin/python3
if ! { [[ -x "${py}" ]] && "${py}" -c 'import onnx' 2>/dev/null; }; then
	missing+=(python3-onnx)
fi
if [[ -z "${CHROMIUM:-}" ]] && ! command -v chromium >/dev/null 2>&1; then
	missing+=(chromium)
fi
if ((${#missing[@]} == 0)); then
	exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
	echo "setup-test-deps: the tests need Debian's ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "setup-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
"${py}" -c 'import onnx; print("setup-test-deps: python3-onnx", onnx.__version__)'
if [[ -z "${CHROMIUM:-}" ]]; then
	echo "setup-test-deps: $(chromium --version 2>/dev/null)"
fi
