#!/usr/bin/env bash
# Installs what the tests need besides Go, a C compiler and ONNX Runtime, from
# Debian's packages:
#   python3-onnx  the ONNX reference checker that onnxgen's tests run the
#                 exported graphs through
#   chromium      the headless browser the dashboard's tests drive (chromedp);
#                 skipped when $CHROMIUM names another Chromium binary
# Fast when already installed. What it cannot install it names, with the
# command that would, and it exits 0 so that every other test still runs; the
# tests that need the missing package fail saying what to install.
set -uo pipefail

say() { echo "setup-test-deps: $*" >&2; }

# has_onnx: a Python that imports onnx, looked up as onnxgen's checker test
# does (Debian's first, then the python3 on PATH).
has_onnx() {
	local p
	for p in /usr/bin/python3 python3; do
		if command -v "${p}" >/dev/null 2>&1 && "${p}" -c 'import onnx' 2>/dev/null; then
			return 0
		fi
	done
	return 1
}

has_chromium() {
	[[ -n "${CHROMIUM:-}" ]] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

missing=()
has_onnx || missing+=(python3-onnx)
has_chromium || missing+=(chromium)
if ((${#missing[@]} == 0)); then
	exit 0
fi

why=""
sudo=()
if ! command -v apt-get >/dev/null 2>&1; then
	why="apt-get is not here (not Debian or Ubuntu?)"
elif [[ "$(id -u)" != 0 ]]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo=(sudo -n)
	else
		why="installing needs root (run as root, or allow sudo without a password)"
	fi
fi
if [[ -z "${why}" ]]; then
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! { "${sudo[@]}" apt-get update -qq >/dev/null && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
		why="apt-get install ${missing[*]} failed (see above)"
	fi
fi

left=()
has_onnx || left+=(python3-onnx)
has_chromium || left+=(chromium)
if ((${#left[@]} == 0)); then
	say "installed ${missing[*]}"
	exit 0
fi
say "could not install ${left[*]}: ${why:-they are still missing after apt-get}"
say "install them with: sudo apt-get install -y ${left[*]} (or point \$CHROMIUM at a Chromium binary)"
say "the other tests run; those that need ${left[*]} will fail"
exit 0
