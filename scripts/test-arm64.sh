#!/usr/bin/env bash
# Runs the linux/arm64 build of nasctl under QEMU user emulation and checks
# its answers against the host build's on the same inputs (docs/arm64.md,
# "What runs under QEMU"): arch inspect must print the same text, predict
# the same classes with probabilities within 1e-5, and a short bench the same
# test accuracy with onnx-go agreeing. Emulated timings mean nothing and are
# not looked at. A tiny latency table is measured under emulation and must
# be accepted by "nasctl bench latency-table --check" on the host.
#
# Usage: scripts/test-arm64.sh   (normally through "make test-arm64", which
# builds bin/nasctl and bin/linux-arm64/nasctl first)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host="${repo}/bin/nasctl"
arm="${repo}/bin/linux-arm64/nasctl"
lib="${repo}/.cache/onnxruntime-arm64/libonnxruntime.so.1"
die() {
	echo "test-arm64: FAIL: $*" >&2
	exit 1
}
for f in "${host}" "${arm}" "${lib}"; do
	[[ -f "${f}" ]] || die "${f} is missing; run \"make test-arm64\" (it builds both nasctl binaries and installs the arm64 library)"
done

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
cd "${work}"
# ONNX Runtime's arm64 build reads /proc/cpuinfo as it loads. Under user
# emulation that file describes the x86 host, and the library crashes on it
# (docs/arm64.md, "A machine where emulation crashes"). As root, each
# emulated command gets a mount namespace of its own (unshare -m) in which
# /proc/cpuinfo describes two Cortex-A72 cores; nothing else on the machine
# sees it.
cpuinfo=""
if grep -q '^vendor_id' /proc/cpuinfo && [[ "$(id -u)" == 0 ]] && command -v unshare >/dev/null; then
	cpuinfo="${work}/cpuinfo-arm64"
	for core in 0 1; do
		printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n' "${core}"
		printf 'CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
	done >"${cpuinfo}"
	echo "test-arm64: the emulated commands see an arm64 /proc/cpuinfo (${cpuinfo}), in a mount namespace of their own"
fi
# The arm64 build must load the arm64 library: $ONNXRUNTIME_LIB is the only
# place it looks at then (the repository's .cache/onnxruntime holds the x64 one).
emu() {
	local run=(qemu-aarch64-static -L /usr/aarch64-linux-gnu "${arm}" "$@")
	if [[ -n "${cpuinfo}" ]]; then
		run=(unshare -m sh -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' "${cpuinfo}" "${run[@]}")
	fi
	ONNXRUNTIME_LIB="${lib}" "${run[@]}" 2>emu.err || { cat emu.err >&2; die "arm64: nasctl $*"; }
}
start=${SECONDS}

arch="C(8,3,1) - P(2,2) - C(16,3,1) - P(3,3) - FC(32) - SM()"
emu arch inspect "${arch}" --input 32x32x1 >inspect.arm64
"${host}" arch inspect "${arch}" --input 32x32x1 >inspect.host
diff -u inspect.host inspect.arm64 || die "arch inspect differs between the host and arm64 builds"
echo "test-arm64: arch inspect: same output as the host build ($(wc -l <inspect.arm64) lines)"

"${host}" dataset generate --out data --count 200 --size 32 --seed 1 >/dev/null
"${host}" train --arch "${arch}" --data data --epochs 2 --batch 32 --threads 1 --out m.onnx >/dev/null 2>&1 || die "host: nasctl train"
images=(data/LEAF_000{0..4}.png data/NO_000{0..4}.png)
emu predict m.onnx "${images[@]}" --json >predict.arm64
"${host}" predict m.onnx "${images[@]}" --json >predict.host
python3 - predict.host predict.arm64 <<'PY' || die "predict differs between the host and arm64 builds"
import json, sys
host, arm = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(host) == len(arm) == 10, (len(host), len(arm))
worst = 0.0
for h, a in zip(host, arm):
    assert (h["image"], h["class"]) == (a["image"], a["class"]), (h, a)
    for k, p in h["probabilities"].items():
        worst = max(worst, abs(p - a["probabilities"][k]))
assert worst <= 1e-5, worst
print(f"test-arm64: predict: same classes for 10 images, probabilities within {worst:.2g} of the host build's")
PY

emu bench m.onnx --data data --runs 20 --warmup 2 --batch 8 --threads 1 --out bench --json >bench.arm64
"${host}" bench m.onnx --data data --runs 20 --warmup 2 --batch 8 --threads 1 --out bench-host --json >bench.host 2>/dev/null
python3 - bench.host bench.arm64 <<'PY' || die "bench differs between the host and arm64 builds"
import json, sys
(host,), (arm,) = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("arch", "params", "macs", "file_bytes", "accuracy"):
    assert host[k] == arm[k], (k, host[k], arm[k])
assert arm["latency_ms"]["runs"] == 20 and arm["latency_ms"]["p50"] > 0, arm["latency_ms"]
assert arm["pure_go"]["agree"], arm["pure_go"]
print(f"test-arm64: bench: accuracy {arm['accuracy']:.4f} as on the host, {arm['latency_ms']['runs']} timed runs, onnx-go agrees "
      f"(max |diff| {arm['pure_go']['max_abs_diff']:.2g})")
PY

emu bench latency-table --space cpu --networks 20 --runs 3 --out table.json >/dev/null
"${host}" bench latency-table --check table.json --space cpu >check.host || die "the arm64 latency table is not accepted on the host"
echo "test-arm64: latency table measured under emulation and accepted: $(head -1 check.host)"
echo "test-arm64: ok in $((SECONDS - start)) s"
