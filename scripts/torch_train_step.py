#!/usr/bin/python3
"""Time a training step of a nasctl architecture in PyTorch (CPU), as JSON.

The step is the one "nasctl bench train-step" times: forward pass with
dropout in training mode, the loss (binary cross-entropy from logits for 2
classes, softmax cross-entropy for more), the number correct, the backward
pass and an Adam update with the study's settings (beta1 0.5, beta2 0.999,
eps 1e-7), on one batch of random images. The network is built from the
study's text form by torch_net.py. Both memory layouts are timed, NCHW and
channels_last (NHWC, which PyTorch's oneDNN convolutions prefer), each for
--steps steps after --warmup untimed ones; the median is reported. With
--inference, batch-1 prediction in eager mode (inference_mode, class
probabilities as nasctl's exported models give them) is timed too.

Run it with Debian's interpreter: /usr/bin/python3 scripts/torch_train_step.py
--arch "C(16,3,1) - P(2,2) - SM()" --input 32x32x1. With --profile N it also
reports where PyTorch's step spends its time (its N costliest operators per
step). The BLAS PyTorch uses for its fully connected layers is Debian's
libblas.so.3 alternative; the "blas" field names the library actually loaded
(install libopenblas0-pthread for OpenBLAS, several times faster than the
reference BLAS).

PyTorch is a reference for nasctl's benchmarks, not a dependency of nasctl.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_net  # noqa: E402

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def loaded_blas():
    """The BLAS and LAPACK libraries mapped into this process (resolved paths)."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))  # make sure BLAS is loaded
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            name = os.path.basename(path)
            if "blas" in name or "lapack" in name or "mkl" in name:
                libs.add(os.path.realpath(path))
    return sorted(libs)


def parse_input(s):
    parts = [int(p) for p in s.lower().split("x")]
    if len(parts) == 2:
        parts.append(1)
    h, w, c = parts
    return c, h, w


def data(batch, c, h, w, classes, layout):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, c, h, w, generator=g).contiguous(memory_format=LAYOUTS[layout])
    if classes == 2:
        y = (torch.arange(batch) % 2).float().reshape(batch, 1)
    else:
        y = torch.arange(batch) % classes
    return x, y


def time_train(args, c, h, w, layout):
    torch.manual_seed(1)
    model = torch_net.build_any(args.arch, c, h, w, args.classes).to(memory_format=LAYOUTS[layout])
    model.train()
    # foreach: one multi-tensor update instead of a loop over the parameters,
    # measured a little faster on this CPU (not the default of 1.13 on CPU).
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.999), eps=1e-7, foreach=True)
    x, y = data(args.batch, c, h, w, args.classes, layout)

    def step():
        opt.zero_grad(set_to_none=True)
        z = model(x)
        if args.classes == 2:
            loss = F.binary_cross_entropy_with_logits(z, y)
            correct = ((z > 0) == (y > 0.5)).sum()
        else:
            loss = F.cross_entropy(z, y)
            correct = (z.argmax(1) == y).sum()
        loss.backward()
        opt.step()
        return loss.item(), correct.item()

    samples = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        step()
        if i >= args.warmup:
            samples.append((time.perf_counter() - t0) * 1000)
    out = {"ms_per_step": statistics.median(samples), "samples_ms": samples}
    if args.profile:
        out["profile"] = profile_steps(step, args.steps, args.profile)
    return out


def profile_steps(step, steps, top):
    """PyTorch's operators by self CPU time over further steps, ms per step."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in ops)
    return {
        "ms_per_step": total / 1000 / steps,
        "top": [{"op": e.key, "ms_per_step": e.self_cpu_time_total / 1000 / steps,
                 "share": e.self_cpu_time_total / total, "calls_per_step": e.count / steps}
                for e in ops[:top]],
    }


def time_inference(args, c, h, w, layout):
    torch.manual_seed(1)
    model = torch_net.build_any(args.arch, c, h, w, args.classes).to(memory_format=LAYOUTS[layout])
    model.eval()
    x, _ = data(1, c, h, w, args.classes, layout)
    samples = []
    with torch.inference_mode():
        for i in range(args.infer_warmup + args.infer_runs):
            t0 = time.perf_counter()
            torch_net.probabilities(model(x), args.classes)
            if i >= args.infer_warmup:
                samples.append((time.perf_counter() - t0) * 1000)
    return {"ms": statistics.median(samples)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", required=True, help="architecture in the study's text form")
    ap.add_argument("--input", default="64x64x1", help="HEIGHTxWIDTHxCHANNELS (default: the study's 64x64x1)")
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--layouts", default="nchw,channels_last", help="comma-separated: nchw, channels_last")
    ap.add_argument("--inference", action="store_true", help="also time batch-1 eager prediction")
    ap.add_argument("--infer-runs", type=int, default=200)
    ap.add_argument("--infer-warmup", type=int, default=20)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after timing, profile --steps more steps and report the N operators with the most "
                         "self CPU time per step (profiling slows the steps; the timing above is unaffected)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    c, h, w = parse_input(args.input)
    layouts = [l.strip() for l in args.layouts.split(",") if l.strip()]
    for l in layouts:
        if l not in LAYOUTS:
            ap.error(f"--layouts: unknown layout {l!r} (valid: {', '.join(LAYOUTS)})")
    model = torch_net.build_any(args.arch, c, h, w, args.classes)
    out = {
        "arch": args.arch, "input": args.input, "batch": args.batch, "threads": args.threads,
        "torch": torch.__version__, "blas": loaded_blas(),
        "params": torch_net.param_count(model),
        "dropout": [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)],
        "train": {l: time_train(args, c, h, w, l) for l in layouts},
    }
    if args.inference:
        out["inference"] = {l: time_inference(args, c, h, w, l) for l in layouts}
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
