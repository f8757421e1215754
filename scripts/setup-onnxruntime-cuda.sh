#!/usr/bin/env bash
# Installs a GPU build of ONNX Runtime and its CUDA execution provider beside
# the CPU library of "make setup", never in its place.
#
# Two npm packages repackage Microsoft's MIT-licensed ONNX Runtime 1.29.0
# binaries: com.github.asus4.onnxruntime holds the GPU build of
# libonnxruntime.so, com.github.asus4.onnxruntime.linux-x64-gpu the CUDA
# provider plug-in and the shared provider library it needs. The three files
# end up in .cache/onnxruntime-cuda/ (git-ignored), where runtime.FindLibrary
# looks first for --device cuda; their SHA-256 are recorded in
# runtime/onnxruntime-cuda.sha256 and checked on every run (when all three are
# there and match, this script only hashes them and exits).
#
# Running the provider needs the host's NVIDIA driver, CUDA 13's runtime,
# cuBLAS and cuRAND, and cuDNN 9 (docs/gpu.md); installing it does not.
#
# Usage: scripts/setup-onnxruntime-cuda.sh   (normally through "make setup-cuda")
set -euo pipefail

ORT_VERSION=1.29.0
PKG_VERSION=0.4.9
MAIN_PACKAGE="com.github.asus4.onnxruntime@${PKG_VERSION}"
GPU_PACKAGE="com.github.asus4.onnxruntime.linux-x64-gpu@${PKG_VERSION}"
PLUGINS=package/Plugins/Linux/x64

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${repo}/.cache/onnxruntime-cuda"
sumfile="${repo}/runtime/onnxruntime-cuda.sha256"

die() {
	echo "setup-onnxruntime-cuda: $*" >&2
	exit 1
}

[[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] ||
	die "these packages carry the CUDA build for Linux/x86_64 only; this machine is $(uname -s)/$(uname -m)"
[[ -r "${sumfile}" ]] || die "missing ${sumfile} (the recorded SHA-256 of the three libraries)"

# installed file name -> package and member it comes from
declare -A source=(
	[libonnxruntime.so.1]="${MAIN_PACKAGE} ${PLUGINS}/libonnxruntime.so"
	[libonnxruntime_providers_cuda.so]="${GPU_PACKAGE} ${PLUGINS}/libonnxruntime_providers_cuda.so"
	[libonnxruntime_providers_shared.so]="${GPU_PACKAGE} ${PLUGINS}/libonnxruntime_providers_shared.so"
)
declare -A want=()
while read -r sum name; do
	[[ -n "${sum}" ]] || continue
	[[ "${sum}" =~ ^[0-9a-f]{64}$ ]] || die "${sumfile}: '${sum}' is not a SHA-256 hex digest"
	[[ -n "${source[${name}]:-}" ]] || die "${sumfile}: unknown file ${name}"
	want[${name}]="${sum}"
done <"${sumfile}"
[[ ${#want[@]} -eq ${#source[@]} ]] || die "${sumfile} must list ${!source[*]}"

sha256() { sha256sum "$1" | awk '{ print $1 }'; }

# installed prints nothing and succeeds when every file is there and intact.
installed() {
	local name
	for name in "${!want[@]}"; do
		[[ -f "${cache}/${name}" && "$(sha256 "${cache}/${name}")" == "${want[${name}]}" ]] || return 1
	done
}

if installed; then
	echo "setup-onnxruntime-cuda: ${cache} is present (ONNX Runtime ${ORT_VERSION} GPU build and CUDA provider, SHA-256 ok)"
	exit 0
fi

command -v npm >/dev/null || die "npm not found on PATH; it is needed to fetch ${MAIN_PACKAGE} and ${GPU_PACKAGE} (apt-get install npm)"
mkdir -p "${cache}"

# Serialise concurrent runs on one checkout, then look again.
if command -v flock >/dev/null; then
	exec 9>"${cache}/.lock"
	flock 9
	if installed; then
		echo "setup-onnxruntime-cuda: ${cache} was installed by a concurrent run (SHA-256 ok)"
		exit 0
	fi
fi

# A private folder in the cache (same file system: the final mv is atomic),
# removed with the tarballs and npm's cache on any exit.
work="$(mktemp -d "${cache}/tmp.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

echo "setup-onnxruntime-cuda: fetching ${MAIN_PACKAGE} and ${GPU_PACKAGE} from the npm registry (about 330 MB, removed afterwards)"
start=${SECONDS}
(cd "${work}" && npm pack "${MAIN_PACKAGE}" "${GPU_PACKAGE}" --ignore-scripts --silent \
	--cache "${work}/npm-cache" --pack-destination "${work}" >/dev/null) ||
	die "npm pack ${MAIN_PACKAGE} ${GPU_PACKAGE} failed (is the npm registry reachable?)"

for name in "${!source[@]}"; do
	read -r pkg member <<<"${source[${name}]}"
	tarball="${work}/${pkg%@*}-${PKG_VERSION}.tgz"
	[[ -f "${tarball}" ]] || die "npm pack produced no ${tarball##*/}"
	tar --no-same-owner -xzf "${tarball}" -C "${work}" "${member}" || die "${tarball##*/} has no ${member}"
	got="$(sha256 "${work}/${member}")"
	if [[ "${got}" != "${want[${name}]}" ]]; then
		die "SHA-256 mismatch for ${member} from ${pkg}:
  recorded in ${sumfile}: ${want[${name}]}
  downloaded:            ${got}
  Nothing was installed. If the new build is trusted, update ${sumfile}."
	fi
	chmod 0755 "${work}/${member}"
	mv -f "${work}/${member}" "${work}/${name}"
done
for name in "${!source[@]}"; do
	mv -f "${work}/${name}" "${cache}/${name}"
done
echo "setup-onnxruntime-cuda: installed ONNX Runtime ${ORT_VERSION} (GPU build) and its CUDA provider in ${cache} in $((SECONDS - start)) s (SHA-256 ok)"
