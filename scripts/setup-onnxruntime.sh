#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that package runtime loads.
#
# The library comes from the npm registry (onnxruntime-node ships the CPU
# build of libonnxruntime for linux/x64), so no network beyond the package
# registries is needed. It ends up in .cache/onnxruntime/libonnxruntime.so.1
# (git-ignored), where runtime.FindLibrary looks for it. The SHA-256 of the
# extracted library is recorded in runtime/onnxruntime.sha256 and checked on
# every run; when the library is already there and matches, this script only
# hashes it and exits.
#
# Usage: scripts/setup-onnxruntime.sh   (normally through "make setup")
set -euo pipefail

ORT_VERSION=1.30.0
NPM_PACKAGE="onnxruntime-node@${ORT_VERSION}"
MEMBER=package/bin/napi-v6/linux/x64/libonnxruntime.so.1

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${repo}/.cache/onnxruntime"
lib="${cache}/libonnxruntime.so.1"
sumfile="${repo}/runtime/onnxruntime.sha256"

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

[[ -r "${sumfile}" ]] || die "missing ${sumfile} (the recorded SHA-256 of libonnxruntime.so.1)"
want="$(awk 'NF { print $1; exit }' "${sumfile}")"
[[ "${want}" =~ ^[0-9a-f]{64}$ ]] || die "${sumfile}: first field is not a SHA-256 hex digest: '${want}'"

sha256() { sha256sum "$1" | awk '{ print $1 }'; }

# Fast path: already installed and intact.
if [[ -f "${lib}" && "$(sha256 "${lib}")" == "${want}" ]]; then
	echo "setup-onnxruntime: ${lib} is present (ONNX Runtime ${ORT_VERSION}, SHA-256 ok)"
	exit 0
fi

command -v npm >/dev/null || die "npm not found on PATH; it is needed to fetch ${NPM_PACKAGE} from the npm registry (apt-get install npm)"
mkdir -p "${cache}"

# Several people may share one checkout: serialise concurrent runs, then look
# again in case another run installed the library while this one waited.
if command -v flock >/dev/null; then
	exec 9>"${cache}/.lock"
	flock 9
	if [[ -f "${lib}" && "$(sha256 "${lib}")" == "${want}" ]]; then
		echo "setup-onnxruntime: ${lib} was installed by a concurrent run (SHA-256 ok)"
		exit 0
	fi
fi

# Work in a private folder inside the cache (same file system, so the final
# mv is atomic) and remove it, tarball and npm cache included, on any exit.
work="$(mktemp -d "${cache}/tmp.XXXXXX")"
trap 'rm -rf "${work}"' EXIT

echo "setup-onnxruntime: fetching ${NPM_PACKAGE} from the npm registry (about 113 MB, removed afterwards)"
start=${SECONDS}
(cd "${work}" && npm pack "${NPM_PACKAGE}" --ignore-scripts --silent \
	--cache "${work}/npm-cache" --pack-destination "${work}" >/dev/null) ||
	die "npm pack ${NPM_PACKAGE} failed (is the npm registry reachable?)"
tarballs=("${work}"/onnxruntime-node-*.tgz)
[[ -f "${tarballs[0]}" ]] || die "npm pack produced no tarball in ${work}"

tar -xzf "${tarballs[0]}" -C "${work}" "${MEMBER}" ||
	die "${tarballs[0]} has no ${MEMBER}"
rm -f "${tarballs[0]}"

got="$(sha256 "${work}/${MEMBER}")"
if [[ "${got}" != "${want}" ]]; then
	die "SHA-256 mismatch for ${MEMBER} from ${NPM_PACKAGE}:
  recorded in ${sumfile}: ${want}
  downloaded:            ${got}
  The file was not installed. If the new build is trusted, update ${sumfile};
  otherwise set ONNXRUNTIME_LIB to a libonnxruntime you trust."
fi

chmod 0755 "${work}/${MEMBER}"
mv -f "${work}/${MEMBER}" "${lib}"
echo "setup-onnxruntime: installed ${lib} (ONNX Runtime ${ORT_VERSION}, SHA-256 ok) in $((SECONDS - start)) s"
