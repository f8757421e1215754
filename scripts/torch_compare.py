#!/usr/bin/python3
"""Compare nasctl's training step and exported-model latency with PyTorch's.

For each architecture, runs "nasctl bench train-step --inference --json" and
torch_train_step.py --inference (NCHW and channels_last) in interleaved
rounds (A B A B ..., the order alternating between rounds so that neither
side always follows the other), each run a fresh process timing --steps
steps after --warmup. Per architecture it prints the median over rounds of
each side's median step, PyTorch's best layout, the ratio ORT / best
PyTorch, ORT's GFLOP/s and its share of the machine's float32 peak (a large
MatMul through ONNX Runtime with the same threads, measured once at the
start), and batch-1 latency of the exported model (ONNX Runtime, weights
baked in) against PyTorch eager (its faster layout). It also checks that
PyTorch's network has as many parameters and the same dropout rates, in the
same order, as "nasctl arch inspect" reports,
and reports the load average before, during and after the rounds (the
machine may be shared; medians of interleaved rounds are robust to a
neighbour's bursts, not to a steady load). With --baseline, another nasctl
build (an earlier commit, say) is timed in the same rounds, and each
architecture's line gives its step and the median over rounds of the ratio
nasctl / baseline.

Usage (see "make bench-train"; without --arch, the reference networks below):
  /usr/bin/python3 scripts/torch_compare.py --nasctl bin/nasctl --input 32x32x1 \\
      [--arch "C(16,3,1) - P(3,3) - SM()" --arch ...] [--rounds 5] [--json out.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# The reference networks: architectures that the CPU preset's MetaQNN search
# actually trained (32x32x1 input, filters {8,16,32,64}, kernels {1,3,5},
# non-overlapping pooling, at most 4M MACs per image), small to large. The
# trial numbers are those of the run they were picked from (runs/leaves-cpu
# of an earlier nasctl, before the sampling order and the dropout streams
# changed); a new "make search" samples other trials.
REFERENCE = [
    "C(16,3,1) - P(3,3) - C(16,3,1) - C(16,3,1) - SM()",  # trial 149: 0.59M MACs, small
    "C(32,3,1) - P(2,2) - C(16,3,1) - C(16,3,1) - SM()",  # trial 77: 1.82M MACs, medium
    # trial 85: 2.94M MACs, eight layers of 8-16 channels at 15x15 (deep)
    "C(16,3,1) - P(2,2) - C(16,3,1) - C(16,5,1) - C(16,3,1) - C(16,1,1) - C(8,3,1) - C(8,1,1) - GAP()",
    # trial 74: 3.83M MACs, large, that search's best (validation accuracy 0.961);
    # the run of 657662b trained it too (its rank 3 after fine-tuning)
    "P(2,2) - C(8,3,1) - C(64,3,1) - P(2,2) - C(64,3,1) - FC(64) - FC(128) - SM()",
]


def run_json(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"torch_compare: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout)


def load():
    return os.getloadavg()[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nasctl", default="bin/nasctl")
    ap.add_argument("--arch", action="append", help="architecture (repeat for several; default: the reference networks)")
    ap.add_argument("--input", default="32x32x1")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter with PyTorch")
    ap.add_argument("--json", help="also write every measurement to this file")
    ap.add_argument("--baseline", help="another nasctl binary to time in the same rounds (compared with --nasctl)")
    args = ap.parse_args()
    if not args.arch:
        args.arch = REFERENCE

    common = ["--input", args.input, "--batch", str(args.batch), "--threads", str(args.threads),
              "--steps", str(args.steps), "--warmup", str(args.warmup), "--inference"]
    loads = [("start", load())]
    problems = []
    params, dropout = {}, {}
    for a in args.arch:
        rep = run_json([args.nasctl, "arch", "inspect", "--json", "--input", args.input, a])
        params[a] = rep["params"]
        dropout[a] = [l["dropout"] for l in rep["layers"] if l.get("dropout")]
    peak = None
    results = {a: {"ort": [], "torch": [], "base": []} for a in args.arch}
    started = time.time()
    for r in range(args.rounds):
        for a in args.arch:
            ort_cmd = [args.nasctl, "bench", "train-step", "--arch", a, "--json"] + common
            if peak is not None:
                ort_cmd += ["--peak-gflops", str(peak)]
            torch_cmd = [args.python, os.path.join(HERE, "torch_train_step.py"), "--arch", a] + common
            order = [("ort", ort_cmd), ("torch", torch_cmd)]
            if args.baseline:
                # Its peak is not reported: 1 skips measuring it.
                base_cmd = [args.baseline, "bench", "train-step", "--arch", a, "--json", "--peak-gflops", "1"] + [c for c in common if c != "--inference"]
                order.insert(1, ("base", base_cmd))
            if r % 2 == 1:
                order.reverse()
            for side, cmd in order:
                out = run_json(cmd)
                if side == "base":
                    results[a]["base"].append(out["ms_per_step"])
                    continue
                results[a][side].append(out)
                if side == "ort" and peak is None:
                    peak = out["peak_gflops"]
                if side == "torch" and r == 0:
                    # The same network every round: check it once.
                    if out["params"] != params[a]:
                        problems.append(f"{a}: PyTorch has {out['params']} parameters, nasctl arch inspect {params[a]}")
                    if len(out["dropout"]) != len(dropout[a]) or \
                            any(abs(x - y) > 1e-9 for x, y in zip(out["dropout"], dropout[a])):
                        problems.append(f"{a}: PyTorch's dropout rates {out['dropout']}, nasctl arch inspect {dropout[a]}")
        loads.append((f"round {r + 1}", load()))
    loads.append(("end", load()))

    blas = results[args.arch[0]]["torch"][0]["blas"]
    torch_version = results[args.arch[0]]["torch"][0]["torch"]
    print(f"ONNX Runtime (nasctl) vs PyTorch {torch_version}, batch {args.batch}, input {args.input}, "
          f"{args.threads} threads, {args.rounds} interleaved rounds of {args.steps} timed steps after {args.warmup} warm-up")
    print(f"PyTorch BLAS: {', '.join(os.path.basename(b) for b in blas) or 'none found'}")
    print(f"peak: {peak:.1f} GFLOP/s (float32 MatMul 2048^3 through ONNX Runtime, {args.threads} threads, fastest of 10 runs)")
    print("load average (1 min): " + ", ".join(f"{k} {v:.2f}" for k, v in loads)
          + f"; {time.time() - started:.0f} s")
    print()
    hdr = ("arch", "MACs", "ORT ms", "PT NCHW", "PT CL", "PT best", "ORT/PT", "GFLOP/s", "of peak",
           "inf ORT", "inf PT", "inf ratio")
    rows = []
    summary = []
    for a in args.arch:
        ort = [o["ms_per_step"] for o in results[a]["ort"]]
        ort_ms = statistics.median(ort)
        pt = {}
        for layout in results[a]["torch"][0]["train"]:
            pt[layout] = statistics.median(t["train"][layout]["ms_per_step"] for t in results[a]["torch"])
        best = min(pt, key=pt.get)
        gflops = 3 * 2 * results[a]["ort"][0]["macs"] * args.batch / (ort_ms / 1000) / 1e9
        inf_ort = statistics.median(o["inference"]["ms"] for o in results[a]["ort"])
        inf_pt_layouts = {l: statistics.median(t["inference"][l]["ms"] for t in results[a]["torch"])
                          for l in results[a]["torch"][0]["inference"]}
        inf_best = min(inf_pt_layouts, key=inf_pt_layouts.get)
        row = dict(arch=a, macs=results[a]["ort"][0]["macs"], params=params[a], ort_ms=ort_ms, ort_rounds=ort,
                   torch_ms=pt, torch_rounds={l: [t["train"][l]["ms_per_step"] for t in results[a]["torch"]] for l in pt},
                   torch_best=best, ratio=ort_ms / pt[best], gflops=gflops, peak_share=gflops / peak,
                   inference_ort_ms=inf_ort, inference_torch_ms=inf_pt_layouts, inference_torch_best=inf_best,
                   inference_ratio=inf_ort / inf_pt_layouts[inf_best])
        summary.append(row)
        rows.append((a, f"{row['macs'] / 1e6:.2f}M", f"{ort_ms:.1f}", f"{pt.get('nchw', float('nan')):.1f}",
                     f"{pt.get('channels_last', float('nan')):.1f}", "CL" if best == "channels_last" else "NCHW",
                     f"{row['ratio']:.2f}", f"{gflops:.1f}", f"{100 * row['peak_share']:.1f}%",
                     f"{inf_ort:.3f}", f"{inf_pt_layouts[inf_best]:.3f}", f"{row['inference_ratio']:.2f}"))
    widths = [max(len(str(x[i])) for x in rows + [hdr]) for i in range(len(hdr))]
    for x in [hdr] + rows:
        print("  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(x, widths))))
    print()
    print("ORT ms, PT ms: medians over rounds of each run's median training step (ms); ORT/PT: ORT over PyTorch's "
          "best layout; inf: batch-1 prediction, ms (ORT: exported model; PT: eager, faster layout)")
    if args.baseline:
        print(f"baseline {args.baseline} in the same rounds:")
        for row in summary:
            a = row["arch"]
            base = results[a]["base"]
            ratios = [o["ms_per_step"] / b for o, b in zip(results[a]["ort"], base)]
            row["baseline_ms"], row["baseline_rounds"] = statistics.median(base), base
            row["baseline_ratio"] = statistics.median(ratios)
            print(f"  {a}: {row['baseline_ms']:.1f} ms; nasctl / baseline, median over rounds {row['baseline_ratio']:.3f} "
                  f"(rounds {min(ratios):.2f}-{max(ratios):.2f})")
    for p in problems:
        print("PROBLEM:", p)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peak_gflops": peak, "loads": loads, "blas": blas, "torch": torch_version, "rows": summary,
                       "raw": results, "problems": problems}, f, indent=1)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
