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


def param_count(model):
    return sum(p.numel() for p in model.parameters())


def probabilities(logits, classes):
    """Class probabilities as nasctl's exported models output them."""
    if classes == 2:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)
