"""Build a nasctl layer-sequence architecture in PyTorch, for benchmarks only.

The architecture text form and its semantics are the study's, as nasctl's
genotype package implements them (genotype/shape.go, Arch.Build):

  C(filters,kernel,stride)  convolution + ReLU; 'valid' padding when it is the
                            first layer, 'same' otherwise
  P(kernel,stride)          max-pooling, 'same' padding: output ceil(n/stride),
                            padding split with the extra cell after, padded
                            cells never win
  FC(units)                 fully connected + ReLU
  GAP()                     global average pooling, then the classifier (last)
  SM()                      the classifier alone (last)

A Flatten precedes the first FC or SM that follows a spatial layer; dropout
follows every layer i (0-based) with (i+1) % 2 == 0 except SM, the k-th with
rate k/(2D), D = floor(number of non-SM layers / 2); the classifier is one
logit (sigmoid, binary cross-entropy) for 2 classes and K logits (softmax
cross-entropy) for K > 2.

PyTorch is a reference to compare nasctl's speed with, not a dependency of
nasctl.
"""

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

_LAYER = re.compile(r"^(C|P|FC|GAP|SM)\(([0-9,\s]*)\)$")
_ARGS = {"C": 3, "P": 2, "FC": 1, "GAP": 0, "SM": 0}


def parse(text):
    """Returns the layers of an architecture as (kind, args) tuples."""
    layers = []
    for i, part in enumerate(text.split("-")):
        m = _LAYER.match(part.strip().replace(" ", ""))
        if not m:
            raise ValueError(f"layer {i + 1} {part.strip()!r}: want C(f,k,s), P(k,s), FC(u), GAP() or SM()")
        kind = m.group(1)
        args = [int(a) for a in m.group(2).split(",") if a.strip()]
        if len(args) != _ARGS[kind]:
            raise ValueError(f"layer {i + 1} {part.strip()!r}: {kind} takes {_ARGS[kind]} arguments")
        layers.append((kind, args))
    if not layers or layers[-1][0] not in ("GAP", "SM"):
        raise ValueError("the architecture must end with GAP() or SM()")
    return layers


def same(n, kernel, stride):
    """Output size and padding before and after of a 'same' window."""
    out = (n + stride - 1) // stride
    total = max((out - 1) * stride + kernel - n, 0)
    return out, total // 2, total - total // 2


def _torch_pool_out(n, k, s, p, ceil):
    """nn.MaxPool2d's output size (PyTorch's pooling_output_shape)."""
    num = n + 2 * p - k + (s - 1 if ceil else 0)
    out = num // s + 1
    if ceil and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool(k, s, h, w):
    """Max-pooling with 'same' padding on an h x w input, as nn modules.

    nn.MaxPool2d pads symmetrically (at most k//2) and, with ceil_mode, lets
    the last window run past the end; together they express most 'same'
    windows without a copy. Others get an explicit -inf pad first.
    """
    oh, top, bottom = same(h, k, s)
    ow, left, right = same(w, k, s)
    if top == left and top <= k // 2:
        for ceil in (False, True):
            if _torch_pool_out(h, k, s, top, ceil) == oh and _torch_pool_out(w, k, s, left, ceil) == ow:
                return [nn.MaxPool2d(k, s, padding=top, ceil_mode=ceil)], oh, ow
    return [nn.ConstantPad2d((left, right, top, bottom), -math.inf), nn.MaxPool2d(k, s)], oh, ow


def build(text, channels, height, width, classes=2):
    """Returns the network as an nn.Sequential producing the logits."""
    layers = parse(text)
    non_sm = sum(1 for kind, _ in layers if kind != "SM")
    dropouts = non_sm // 2
    mods = []
    c, h, w = channels, height, width
    flat = False
    k_drop = 0

    def flatten():
        nonlocal c, h, w, flat
        if not flat:
            mods.append(nn.Flatten())
            c, h, w, flat = c * h * w, 1, 1, True

    for i, (kind, args) in enumerate(layers):
        if kind in ("C", "P", "GAP") and flat:
            raise ValueError(f"layer {i + 1}: {kind} needs a spatial input")
        if kind == "C":
            f, k, s = args
            if i == 0:
                if k > h or k > w:
                    raise ValueError(f"layer 1: kernel {k} exceeds the {h}x{w} input")
                mods.append(nn.Conv2d(c, f, k, stride=s))
                h, w = (h - k) // s + 1, (w - k) // s + 1
            else:
                oh, top, bottom = same(h, k, s)
                ow, left, right = same(w, k, s)
                if top == bottom and left == right:
                    mods.append(nn.Conv2d(c, f, k, stride=s, padding=(top, left)))
                else:
                    mods += [nn.ZeroPad2d((left, right, top, bottom)), nn.Conv2d(c, f, k, stride=s)]
                h, w = oh, ow
            mods.append(nn.ReLU(inplace=True))
            c = f
        elif kind == "P":
            k, s = args
            pool, h, w = _pool(k, s, h, w)
            mods += pool
        elif kind == "FC":
            flatten()
            mods += [nn.Linear(c, args[0]), nn.ReLU(inplace=True)]
            c = args[0]
        elif kind == "GAP":
            mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            h, w, flat = 1, 1, True
        if kind != "SM" and (i + 1) % 2 == 0:
            k_drop += 1
            mods.append(nn.Dropout(k_drop / (2 * dropouts)))
        if kind in ("GAP", "SM"):
            flatten()
            mods.append(nn.Linear(c, 1 if classes == 2 else classes))
    return nn.Sequential(*mods)


# Cell networks ("net(stem=S, filters=F, normal=N, reductions=R,
# style=study|nasnet) normal: <cell> | reduction: <cell>"), built as nasctl's
# genotype package builds them (genotype/cellbuild.go, docs/study.md section
# 4): a 3x3 stem, then R times N normal cells and a reduction cell (N normal
# cells when R is 0), GAP and the classifier. Every operation outputs the
# cell's F channels (a pooling or identity that would not is followed by, or
# is, a 1x1 convolution); a cell brings its inputs to F channels with 1x1
# convolutions, strided when an input is twice the other's size; the
# reduction cell's operations on its inputs use stride 2; add sums, concat
# joins along the channels; the cell's output joins its unused blocks. Style
# study: convolution (bias) + ReLU, a depthwise convolution without either;
# style nasnet: ReLU, convolutions without bias, batch normalisation. The
# nodes are made in nasctl's order, so that weight i of the network is
# nasctl's "n<i+1>" (weights_from loads an exported model's).

_OPS = ["identity", "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3", "avg_pool_3x3", "max_pool_3x3", "max_pool_5x5",
        "max_pool_7x7", "conv_1x1", "conv_3x3", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7"]
_BLOCK = re.compile(r"^b(\d+)\s*=\s*(add|concat)\(\s*(\w+)\((\w+)\)\s*,\s*(\w+)\((\w+)\)\s*\)$")


def parse_cells(text):
    """Returns (macro dict, normal blocks, reduction blocks) of a cell network."""
    m = re.match(r"^\s*net\(([^)]*)\)(.*)$", text)
    if not m:
        raise ValueError("a cell network starts with net(...)")
    macro = {}
    for kv in m.group(1).split(","):
        k, v = (x.strip() for x in kv.split("="))
        macro[k] = v if k == "style" else int(v)
    cells = {}
    for part in m.group(2).split("|"):
        name, body = (x.strip() for x in part.split(":", 1))
        blocks = []
        for b in body.split(";"):
            bm = _BLOCK.match(b.strip())
            if not bm:
                raise ValueError(f"block {b.strip()!r}")
            _, comb, op1, in1, op2, in2 = bm.groups()
            idx = lambda n: int(n[1:]) + (0 if n[0] == "h" else 2)  # noqa: E731
            blocks.append((idx(in1), idx(in2), _OPS.index(op1), _OPS.index(op2), comb))
        cells[name] = blocks
    return macro, cells["normal"], cells["reduction"]


class _Pad(nn.Module):
    def __init__(self, left, right, top, bottom, value=0.0):
        super().__init__()
        self.pads, self.value = (left, right, top, bottom), value

    def forward(self, x):
        return F.pad(x, self.pads, value=self.value) if any(self.pads) else x


class _AvgPoolSame(nn.Module):
    """Average pooling with 'same' padding, padded cells not counted."""

    def __init__(self, k, s, h, w):
        super().__init__()
        oh, top, bottom = same(h, k, s)
        ow, left, right = same(w, k, s)
        self.pad = (left, right, top, bottom)
        self.k, self.s = k, s
        ones = F.pad(torch.ones(1, 1, h, w), self.pad)
        self.register_buffer("count", F.avg_pool2d(ones, k, s) * k * k)

    def forward(self, x):
        return F.avg_pool2d(F.pad(x, self.pad), self.k, self.s) * self.k * self.k / self.count


class _Join(nn.Module):
    """Adds two inputs, or concatenates inputs along the channels."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def forward(self, xs):
        return xs[0] + xs[1] if self.kind == "add" else torch.cat(xs, dim=1)


class CellNet(nn.Module):
    """A cell network as a list of nodes, each reading earlier ones."""

    def __init__(self, text, channels, height, width, classes=2):
        super().__init__()
        macro, normal, reduction = parse_cells(text)
        self.style = macro["style"]
        self.mods = nn.ModuleList()
        self.inputs, self.shapes = [], []
        self._input = (channels, height, width)
        f = macro["filters"]
        stem = self._unit(-1, [(macro["stem"], 3, 3, 1, 1, False)])
        prev2 = prev = stem
        for r in range(max(macro["reductions"], 1)):
            for _ in range(macro["normal"]):
                prev2, prev = prev, self._cell(normal, prev2, prev, f, False)
            if r < macro["reductions"]:
                f *= 2
                prev2, prev = prev, self._cell(reduction, prev2, prev, f, True)
        if self.style == "nasnet":
            prev = self._add(nn.ReLU(), [prev], self.shape(prev))
        c = self.shape(prev)[0]
        gap = self._add(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), [prev], (c, 1, 1))
        self._add(nn.Linear(c, 1 if classes == 2 else classes), [gap], (1, 1, 1))
        self._prune()

    def _prune(self):
        """Drops the nodes the output does not read (an unread cell input's
        projection, a cell no later cell reads)."""
        live = [False] * len(self.mods)
        live[-1] = True
        for i in reversed(range(len(self.mods))):
            if live[i]:
                for j in self.inputs[i]:
                    if j >= 0:
                        live[j] = True
        index, mods, inputs, shapes = {}, nn.ModuleList(), [], []
        for i, keep in enumerate(live):
            if keep:
                index[i] = len(mods)
                mods.append(self.mods[i])
                inputs.append([j if j < 0 else index[j] for j in self.inputs[i]])
                shapes.append(self.shapes[i])
        self.mods, self.inputs, self.shapes = mods, inputs, shapes

    def shape(self, i):
        return self._input if i < 0 else self.shapes[i]

    def _add(self, mod, inputs, shape):
        self.mods.append(mod)
        self.inputs.append(inputs)
        self.shapes.append(shape)
        return len(self.mods) - 1

    def _conv(self, x, f, kh, kw, s, d, depthwise):
        c, h, w = self.shape(x)
        oh, top, bottom = same(h, (kh - 1) * d + 1, s)
        ow, left, right = same(w, (kw - 1) * d + 1, s)
        groups = c if depthwise else 1
        f = c if depthwise else f
        bias = self.style == "study" and not depthwise
        conv = nn.Conv2d(c, f, (kh, kw), stride=s, dilation=d, groups=groups, bias=bias)
        mods = [_Pad(left, right, top, bottom), conv]
        if self.style == "study" and not depthwise:
            mods.append(nn.ReLU())
        return self._add(nn.Sequential(*mods), [x], (f, oh, ow))

    def _unit(self, x, convs):
        if self.style == "nasnet" and x >= 0:
            x = self._add(nn.ReLU(), [x], self.shape(x))
        for spec in convs:
            x = self._conv(x, *spec)
        if self.style == "nasnet":
            x = self._add(nn.BatchNorm2d(self.shape(x)[0], eps=1e-3, momentum=0.1), [x], self.shape(x))
        return x

    def _calibrate(self, x, f, like):
        c, h, _ = self.shape(x)
        s = 2 if h > like[1] else 1
        return x if c == f and s == 1 else self._unit(x, [(f, 1, 1, s, 1, False)])

    def _op(self, op, x, f, s):
        name = _OPS[op]
        c, h, w = self.shape(x)
        if name == "identity":
            return x if s == 1 and c == f else self._unit(x, [(f, 1, 1, s, 1, False)])
        if name in ("conv_1x3_3x1", "conv_1x7_7x1"):
            k = int(name[7])
            return self._unit(x, [(f, 1, k, s, 1, False), (f, k, 1, 1, 1, False)])
        if name in ("conv_1x1", "conv_3x3", "dil_conv_3x3"):
            k = 1 if name == "conv_1x1" else 3
            return self._unit(x, [(f, k, k, s, 2 if name.startswith("dil") else 1, False)])
        if name.startswith("sep_conv"):
            k = int(name[-1])
            return self._unit(x, [(f, k, k, s, 1, True), (f, 1, 1, 1, 1, False)])
        k = int(name[-1])
        oh, top, bottom = same(h, k, s)
        ow, left, right = same(w, k, s)
        if name.startswith("avg"):
            p = self._add(_AvgPoolSame(k, s, h, w), [x], (c, oh, ow))
        else:
            p = self._add(nn.Sequential(_Pad(left, right, top, bottom, -math.inf), nn.MaxPool2d(k, s)), [x], (c, oh, ow))
        return p if c == f else self._unit(p, [(f, 1, 1, 1, 1, False)])

    def _cell(self, blocks, prev2, prev, f, reduce):
        like = self.shape(prev)
        states = [self._calibrate(prev2, f, like), self._calibrate(prev, f, like)]
        used = set()
        for in1, in2, op1, op2, comb in blocks:
            x1 = self._op(op1, states[in1], f, 2 if reduce and in1 < 2 else 1)
            x2 = self._op(op2, states[in2], f, 2 if reduce and in2 < 2 else 1)
            c = self.shape(x1)[0] + (self.shape(x2)[0] if comb == "concat" else 0)
            states.append(self._add(_Join(comb), [x1, x2], (c,) + self.shape(x1)[1:]))
            used |= {in1, in2}
        outs = [states[k] for k in range(2, len(states)) if k not in used]
        if len(outs) == 1:
            return outs[0]
        c = sum(self.shape(o)[0] for o in outs)
        return self._add(_Join("concat"), outs, (c,) + self.shape(outs[0])[1:])

    def forward(self, x):
        vals = []
        for mod, ins in zip(self.mods, self.inputs):
            xs = [x if i < 0 else vals[i] for i in ins]
            vals.append(mod(xs) if isinstance(mod, _Join) else mod(xs[0]))
        return vals[-1]


def build_any(text, channels, height, width, classes=2):
    """A layer sequence (build) or a cell network (CellNet)."""
    if text.strip().startswith("net("):
        return CellNet(text, channels, height, width, classes)
    return build(text, channels, height, width, classes)


def param_count(model):
    return sum(p.numel() for p in model.parameters())


def probabilities(logits, classes):
    """Class probabilities as nasctl's exported models output them."""
    if classes == 2:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)
