#!/usr/bin/python3
"""Check nasctl's cell networks against an independent PyTorch build.

For each cell network (the CELLS below, or --arch), the network is built
twice: by nasctl (genotype/cellbuild.go, compiled by onnxgen) and by
torch_net.CellNet (this directory), which implements the same semantics
(docs/study.md, section 4) without sharing code. The check compares

  - the parameter counts: `nasctl arch inspect --json` against PyTorch's;
  - the outputs: nasctl trains the network for one epoch on a small leaves
    dataset and exports it (batch normalisation folded into the
    convolutions); PyTorch loads the exported weights by node name and both
    predict the same images: the largest difference of the probabilities.

Run from the repository root, after make build and with Debian's
python3-torch and python3-onnx:

    /usr/bin/python3 scripts/cell_reference.py --nasctl bin/nasctl

PyTorch is a reference for nasctl's tests and benchmarks, not a dependency.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_net  # noqa: E402

PAIR = ("normal: b0 = add(sep_conv_3x3(h1), identity(h0)); b1 = concat(max_pool_3x3(b0), conv_1x3_3x1(h0)) | "
        "reduction: b0 = add(dil_conv_3x3(h0), avg_pool_3x3(h1)); b1 = add(identity(b0), sep_conv_5x5(h1))")
PAIR2 = ("normal: b0 = concat(conv_1x7_7x1(h0), avg_pool_3x3(h1)); b1 = add(sep_conv_7x7(b0), max_pool_5x5(h0)) | "
         "reduction: b0 = concat(max_pool_7x7(h1), conv_3x3(h0)); b1 = add(conv_1x1(b0), sep_conv_3x3(b0))")
# PAIR3's reduction cell reads only h0: the normal cell before it is unread.
PAIR3 = ("normal: b0 = add(identity(h1), dil_conv_3x3(h0)); b1 = concat(avg_pool_3x3(h1), max_pool_3x3(h1)) | "
         "reduction: b0 = concat(conv_1x1(h0), conv_1x1(h0)); b1 = add(conv_1x7_7x1(h0), conv_1x7_7x1(b0))")
CELLS = [f"net(stem={s}, filters={f}, normal={n}, reductions={r}, style={st}) {p}"
         for st in ("study", "nasnet")
         for (s, f, n, r, p) in ((8, 8, 1, 1, PAIR), (6, 4, 2, 2, PAIR2), (5, 3, 0, 1, PAIR2), (8, 8, 1, 1, PAIR3))]


def read_gray_png(path):
    """The pixels of an 8-bit grayscale PNG (as nasctl's generator writes
    them) as floats in [0, 1]: zlib-compressed rows, each with its filter."""
    with open(path, "rb") as f:
        b = f.read()
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(b):
        n = int.from_bytes(b[pos:pos + 4], "big")
        kind, chunk = b[pos + 4:pos + 8], b[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h = int.from_bytes(chunk[0:4], "big"), int.from_bytes(chunk[4:8], "big")
            if chunk[8] != 8 or chunk[9] != 0 or chunk[12] != 0:
                raise ValueError(f"{path}: not an 8-bit grayscale non-interlaced PNG")
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + n
    raw, rows, prev = zlib.decompress(idat), [], bytearray(w)
    for y in range(h):
        ft, line = raw[y * (w + 1)], bytearray(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
        for x in range(w):
            a, up, c = line[x - 1] if x else 0, prev[x], prev[x - 1] if x else 0
            if ft == 1:
                line[x] = (line[x] + a) & 255
            elif ft == 2:
                line[x] = (line[x] + up) & 255
            elif ft == 3:
                line[x] = (line[x] + (a + up) // 2) & 255
            elif ft == 4:
                p = a + up - c
                pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return np.array(rows, dtype=np.float32) / 255


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout


def load_exported(model, path):
    """Loads nasctl's exported weights into model, by node name."""
    init = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    convs = [i for i, m in enumerate(model.mods) if isinstance(m, torch.nn.Sequential) and any(isinstance(x, torch.nn.Conv2d) for x in m)]
    with torch.no_grad():
        for i, m in enumerate(model.mods):
            name = f"n{i + 1}"
            if i in convs:
                conv = next(x for x in m if isinstance(x, torch.nn.Conv2d))
                w = init.get(name + ".weight.folded", init.get(name + ".weight"))
                b = init.get(name + ".weight.folded_bias", init.get(name + ".bias"))
                if w is None or tuple(w.shape) != tuple(conv.weight.shape):
                    raise ValueError(f"{name}: nasctl exported {None if w is None else w.shape}, PyTorch has {tuple(conv.weight.shape)}")
                conv.weight.copy_(torch.from_numpy(w))
                if b is not None:
                    conv.bias = torch.nn.Parameter(torch.from_numpy(b))
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.weight.fill_(1), m.bias.zero_(), m.running_mean.zero_(), m.running_var.fill_(1 - 1e-3)
            elif isinstance(m, torch.nn.Linear):
                m.weight.copy_(torch.from_numpy(init["classifier.weight"]).T)
                m.bias.copy_(torch.from_numpy(init["classifier.bias"]))


def check(nasctl, arch, data, tmp):
    info = json.loads(run([nasctl, "arch", "inspect", arch, "--input", "32x32x1", "--json"]))
    model = torch_net.build_any(arch, 1, 32, 32)
    count = torch_net.param_count(model)  # before the folded biases come in
    out = os.path.join(tmp, "m.onnx")
    run([nasctl, "train", "--arch", arch, "--data", data, "--input", "32x32x1", "--epochs", "1", "--batch", "32",
         "--threads", "1", "--out", out, "--json"])
    load_exported(model, out)
    model.eval()
    images = sorted(os.path.join(data, f) for f in os.listdir(data))[:16]
    classes = json.loads({p.key: p.value for p in onnx.load(out).metadata_props}["nasctl.classes"])
    pred = [json.loads(line) for line in run([nasctl, "predict", out, *images, "--json"]).splitlines()]
    x = torch.stack([torch.from_numpy(read_gray_png(p))[None] for p in images])
    with torch.no_grad():
        ref = torch_net.probabilities(model(x), 2).numpy()
    got = np.array([[p["probabilities"][c] for c in classes] for p in pred])
    return info["params"], count, float(np.abs(got - ref).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nasctl", default="bin/nasctl")
    ap.add_argument("--arch", action="append", help="a cell network to check (default: a set covering every operation)")
    args = ap.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "leaves")
        run([args.nasctl, "dataset", "generate", "--out", data, "--count", "200", "--size", "32", "--seed", "3"])
        for arch in args.arch or CELLS:
            ours, theirs, diff = check(args.nasctl, arch, data, tmp)
            ok = ours == theirs and diff < 1e-4
            failed = failed or not ok
            print(f"{'ok  ' if ok else 'FAIL'} params nasctl {ours} pytorch {theirs}, max |probability difference| {diff:.2e}: {arch[:60]}...")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
