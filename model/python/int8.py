"""Weight-only int8 Linear layers: what `export.py --quantize int8` writes.

Each Linear keeps its weights as int8 with one float scale per output row (symmetric, per channel)
and computes in float32: y = x @ (w * scale)^T + bias. The graph calls dialogbot::linear_w8, an op
the C++ bridge implements (cbridge/linear_w8.cpp: for one row, int16-quantized activations against
the int8 weights with AVX-512 VNNI, else int8 rows streamed into float FMAs; no per-shape state); the
version here is its reference, path for path, used to trace, check and test the export in Python.

Why not torch.ao.quantization.quantize_dynamic: on Debian's libtorch its only x86 engine is oneDNN,
which also quantizes the activations (less exact), prepares a primitive for the first input shape
only and, measured on the 2-core dev VM, was no faster than float32 through the bridge
(docs/cpu.md).
"""

from __future__ import annotations

import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import bridge_ops



# Rows per call of the quantized engine (tile_rows in linear_w8.cpp): one shape, prepared once.
TILE_ROWS = int(os.environ.get("DIALOGBOT_W8_TILE_ROWS") or 32)


def _cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# As the bridge decides (full_range_ok in linear_w8.cpp): 8-bit activations where VNNI accumulates
# int8 products in 32 bits, 7 bits where plain AVX2 would saturate 16-bit sums.
REDUCE_RANGE = not ({"avx512_vnni", "avx_vnni"} & _cpu_flags())
# As the bridge decides (have_vnni in linear_w8.cpp): with AVX-512 VNNI the one-row path quantizes the
# row to int16 (symmetric, its own scale) and sums the products with the int8 weights in int32; without,
# it multiplies the int8 weights by the float row.
# DIALOGBOT_W8_VNNI=0 turns it off in both, to measure the AVX2 path on a VNNI CPU.
DIRECT_VNNI = ({"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= _cpu_flags()
               and os.environ.get("DIALOGBOT_W8_VNNI") != "0")
# Rows up to which the bridge runs its direct kernel (direct_rows in linear_w8.cpp): every row count
# with VNNI (_direct_vnni, each row its own int16 scale), up to 4 without (int8 weights streamed into
# float FMAs); more rows go to the quantized engine. DIALOGBOT_W8_DIRECT_ROWS overrides it in both.
DIRECT_ROWS = int(os.environ.get("DIALOGBOT_W8_DIRECT_ROWS") or 0) or (sys.maxsize if DIRECT_VNNI else 4)


def _row_levels(in_features: int) -> int:
    """The largest |x_q| (row_levels in linear_w8.cpp): int32 sums of in_features products never overflow."""
    return max(1, min(32767, (2**31 - 1) // (max(in_features, 1) * 127)))


def _direct_vnni(x: torch.Tensor, w: torch.Tensor, scale: torch.Tensor, bias):
    """The bridge's VNNI one-row kernel (direct_vnni in linear_w8.cpp), integer for integer.

    Each row: s = max|x| / levels (1 for a zero row), q = round(x / s) (half to even), clamped to
    +-levels; y = float(sum q w) * (s * scale) + bias, the sum exact.
    """
    x2 = x.reshape(-1, x.size(-1)).float()
    levels = float(_row_levels(x2.size(1)))
    s = x2.abs().amax(dim=1, keepdim=True) / levels
    s = torch.where((s > 0) & torch.isfinite(s), s, torch.ones_like(s))
    q = torch.round(x2 / s).clamp(-levels, levels)
    acc = q.to(torch.int64) @ w.to(torch.int64).t()  # exact, as the kernel's int32 sums
    y = acc.float() * (s * scale.unsqueeze(0))
    if bias is not None:
        y = y + bias
    return y.view(x.shape[:-1] + (w.size(0),))


def _reference(x: torch.Tensor, w: torch.Tensor, scale: torch.Tensor, bias):
    """The bridge's arithmetic, path for path, so export's checks and agreement numbers hold for it."""
    if x.numel() <= DIRECT_ROWS * x.size(-1):
        if DIRECT_VNNI:
            return _direct_vnni(x, w, scale, bias)
        return F.linear(x, w.float() * scale.unsqueeze(1), bias)
    qw = torch._make_per_channel_quantized_tensor(w, scale.double(), torch.zeros_like(scale, dtype=torch.long), 0)
    packed = torch.ops.quantized.linear_prepack(qw, bias)
    x2 = x.reshape(-1, x.size(-1))
    tiles = []
    for r0 in range(0, x2.size(0), TILE_ROWS):  # as the bridge: tiles of TILE_ROWS rows, the last zero-padded
        xt = x2[r0:r0 + TILE_ROWS]
        n = xt.size(0)
        if n < TILE_ROWS:
            xt = torch.cat([xt, xt.new_zeros(TILE_ROWS - n, xt.size(1))])
        tiles.append(torch.ops.quantized.linear_dynamic(xt.contiguous(), packed, REDUCE_RANGE)[:n])
    return torch.cat(tiles).view(x.shape[:-1] + (w.size(0),))


# The bridge's library (torch.ops.load_library) may already have defined the op in this process:
# then its kernel runs, which is how scripts/cpu-int8-probe.py times it from Python.
if bridge_ops.LIB is not None:
    bridge_ops.LIB.impl("linear_w8", _reference, "CPU")


class Int8Linear(nn.Module):
    """A Linear whose weight is int8 [out, in] with a float32 scale per output row."""

    def __init__(self, weight: torch.Tensor, scale: torch.Tensor, bias):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("scale", scale)
        self.register_buffer("bias", bias)
        self.in_features, self.out_features = weight.size(1), weight.size(0)

    @classmethod
    def from_linear(cls, lin: nn.Linear) -> "Int8Linear":
        w = lin.weight.detach().float()
        scale = (w.abs().amax(dim=1) / 127.0).clamp(min=torch.finfo(torch.float32).tiny)
        q = torch.round(w / scale.unsqueeze(1)).clamp(-127, 127).to(torch.int8).contiguous()
        bias = None if lin.bias is None else lin.bias.detach().float().contiguous()
        return cls(q, scale.contiguous(), bias)

    def dequantized(self) -> torch.Tensor:
        return self.weight.float() * self.scale.unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.dialogbot.linear_w8(x, self.weight, self.scale, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights"


def quantize(module: nn.Module) -> nn.Module:
    """Replaces every nn.Linear below module (in place) by an Int8Linear; returns module."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear):
            setattr(module, name, Int8Linear.from_linear(child))
        else:
            quantize(child)
    return module
