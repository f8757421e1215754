#!/usr/bin/env bash
# Installs what building nasctl for linux/arm64 on an x86_64 Debian machine
# needs, from Debian's packages (docs/arm64.md):
#   gcc-aarch64-linux-gnu   the C cross compiler cgo uses (package runtime)
#   libc6-dev-arm64-cross   the arm64 C library it links against
# and with "test", what running that build here under QEMU needs:
#   qemu-user-static        user-mode emulation (qemu-aarch64-static)
#   libstdc++6-arm64-cross  the arm64 C++ library libonnxruntime loads
# Fast when already installed; as root it installs what is missing, otherwise
# it prints the apt-get command.
#
# Usage: scripts/setup-cross-arm64.sh [test]
set -euo pipefail

want=(gcc-aarch64-linux-gnu:aarch64-linux-gnu-gcc libc6-dev-arm64-cross:/usr/aarch64-linux-gnu/lib/libc.so)
if [[ "${1:-}" == test ]]; then
	want+=(qemu-user-static:qemu-aarch64-static libstdc++6-arm64-cross:/usr/aarch64-linux-gnu/lib/libstdc++.so.6)
elif [[ -n "${1:-}" ]]; then
	echo "setup-cross-arm64: unknown argument '$1' (valid: none, or test)" >&2
	exit 1
fi

missing=()
for w in "${want[@]}"; do
	pkg="${w%%:*}" probe="${w#*:}"
	if [[ "${probe}" == /* ]]; then
		[[ -e "${probe}" ]] || missing+=("${pkg}")
	else
		command -v "${probe}" >/dev/null || missing+=("${pkg}")
	fi
done
if ((${#missing[@]} == 0)); then
	exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
	echo "setup-cross-arm64: building for arm64 needs Debian's ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "setup-cross-arm64: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
