"""``loihi-emu``: Loihi's fixed-point LIF/Dense arithmetic, batched in torch (CPU or CUDA).

Runs the same quantized plan as ``lava-fixed`` (:mod:`snndeploy.lower.fixed`) and
reproduces Lava's ``PyLifResetModelBitAcc`` + ``PyDenseModelBitAcc`` bit for
bit, but directly on the NIR timeline (no one-step Dense delay, no windows):
each sample starts from ``u = v = 0`` as ``LIFReset`` makes it. Per step, for
every population in order of depth (all integers)::

    a_in = sum_k  (W_k @ s_k) << e_k   (>> -e_k when e_k < 0)       Dense (s_k of step t - 1 on a back edge)
           + (w_d << e_d)                                            constant drive (Cuba bias), if any
    u    = trunc0(u * (4096 - (du + 1)) / 2**12) + (a_in << 6)
    u    = u - 2**24 if u > 2**23;  u + 2**24 if u <= -2**23           (wrap, as Lava)
    v    = clip(trunc0(v * (4096 - dv) / 2**12) + u + (bias_mant << bias_exp), -(2**23-1), 2**23-1)
    s    = v > vth << 6;   v = 0 where s

``trunc0(p / 2**12) = sign(p) * (|p| >> 12)``: rounding toward zero; ``x >> k`` is the arithmetic
shift (floor). :func:`emulate_reference` is exactly this, step by step in int64 (slow; the tests
compare every fast path with it).

How :func:`emulate` computes it (every value is an integer held exactly; why, in brackets):

- **Depth by depth, all steps at once.** A forward projection into a population of depth d + 1
  reads spikes of depth d, which are final for every step once depth d has run. So each depth's
  forward products are ONE product over all (sample, step) rows; then the T-step recurrence runs
  for that depth's populations (a back edge, which carries the previous step of a population of
  the same depth, is the only product made per step). Samples run in chunks; samples are
  independent. A plan whose depths do not have that shape runs as one group, stepped.
- **Dense products of binary spikes and 8-bit weights**, one kernel per projection:
  ``int8`` (CPU): ``torch._int_mm`` with int32 accumulation; the weights are written
  ``W = g * (W' + c)`` with ``W'`` int8 (``g = 2`` for Lava's even mixed-sign weights, an offset
  ``c`` for single-sign 0..255 ones), ``S @ W = g * (S @ W' + c * rowsum(S))`` [integer
  arithmetic, ``|sums| <= K * (128 + |c|) < 2**31``, checked]. ``float32`` GEMM where every
  output's sum of ``|w|`` is ``<= 2**24`` [every partial sum, in whatever order or blocking the
  GEMM adds, is an integer of magnitude ``<= 2**24``, exactly representable], only while torch's
  fp32 matmul is full precision (no TF32/bf16 modes); ``float64`` otherwise [``<= 2**53``].
  ``sparse``: below a spike density, the rows of W of the active inputs are summed
  (``embedding_bag``) in float32/float64 under the same bound. ``conv``: a projection whose
  dense matrix is a 2-D convolution of (C, H, W) spike maps (kernel, stride and zero padding
  recovered from the matrix, then checked against EVERY entry of it; dense otherwise) runs as
  im2col + the same int8/float GEMM [the same sums, fewer zeros].
- **Integer state**, int32 where a bound proves every intermediate fits (int64 otherwise): with A the
  largest ``|a_in << 6|`` of a neuron (from its weights, exponents and drive), ``|u| <= A / (1 -
  keep_u / 4096)`` at every step (the fixed point of ``|u'| <= keep/4096 |u| + A``; the wrap only
  shrinks ``|u|``), and ``|v| < 2**23`` after the clip. The decay ``trunc0(x * keep / 2**12)`` is
  ``x * (keep / 2**12)`` in float64, converted back to the integer type [keep / 2**12 is exact,
  ``|x * keep| < 2**53`` so the product is exact, and the conversion truncates toward zero]; beyond
  2**53 the integer formula itself. The wrap is skipped where ``A / (1 - keep_u / 4096) < 2**23``,
  the clip where the analogous bound on v (the leak's fixed point, or ``vth << 6`` plus one step)
  stays inside, the reset where v cannot pass the threshold; all neurons reset, spiking or not.
- **Layout.** A population fed by a convolution is held (H, W, C)-major (its parameters and every
  matrix touching it permuted to match); records are returned in NIR order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..ir import graph as G
from ..ir.analysed import as_analysed
from ..lower.fixed import (
    FIXED_REFUSED_WHY,
    FIXED_SUPPORTED,
    FixedPlan,
    check_binary,
    fixed_plan_for,
    node_records,
    validate_fixed_plan,
)
from ..lower.quantize import (
    ACT_SHIFT,
    DECAY_BITS,
    DECAY_UNITY,
    DM_OFFSET,
    DS_OFFSET,
    STATE_BITS,
    STATE_MAX,
    VTH_SHIFT,
    representable_weights,
)
from ..util.device import resolve_device
from .base import RAW_UNITS, RunResult

WRAP_LIMIT = 1 << (STATE_BITS - 1)  #: u wraps when it leaves (-2**23, 2**23]
WRAP_SPAN = 1 << STATE_BITS
F32_EXACT = 1 << 24  #: float32 holds every integer of magnitude <= 2**24
F64_EXACT = 1 << 53
I32_LIMIT = 1 << 31
#: dense kernels (``kernel=``): "auto" picks int8 on the CPU, float32 on CUDA; each falls back where it is not exact
KERNELS = ("auto", "int8", "float32", "float64")
#: below this fraction of active (row, input) entries the sparse sum beats the dense kernel (2-core CPU, measured)
SPARSE_DENSITY = {"int8": 0.004, "float32": 0.02, "float64": 0.04}
#: samples per chunk: about this many (sample, step, neuron) entries of the widest population
CHUNK_ENTRIES = {"cpu": 1 << 22, "cuda": 1 << 26}
SPARSE_MIN_WIDTH = 64  #: "auto" considers the sparse sum for projections into at least this many neurons
_MARGIN = 16  # raw units kept below a limit by the wrap/clip proofs (the bounds are computed in float64)


class _NotBinary(InputError):
    """A chunk of the input holds something other than 0/1 (the caller names the first offending value)."""


# --------------------------------------------------------------------------- the documented arithmetic, int64


def emulate_reference(fp: FixedPlan, x: np.ndarray, record_states: bool = True):
    """The module docstring's arithmetic step by step in int64 on the CPU: the specification the fast
    paths are tested against (slow). Same returns as :func:`emulate` with all states recorded."""
    import torch

    validate_fixed_plan(fp)
    B, T = x.shape[:2]

    def t64(a):
        return torch.as_tensor(np.asarray(a, dtype=np.int64).reshape(1, -1))

    def dense(s, w, e):
        a = s @ w
        return a << e if e > 0 else a >> -e

    def decay(z, keep):
        p = z * keep
        return p.sign() * (p.abs() >> DECAY_BITS)

    order = sorted(fp.neurons, key=lambda n: fp.topology.depth[n])
    pops = {}
    for node in order:
        f = fp.neurons[node]
        ins = [
            (c.src, torch.as_tensor(representable_weights(c.weight).T.astype(np.int64)), c.weight_exp, c.back_edge)
            for c in fp.conns
            if c.dst == node
        ]
        drive = None
        if f.drive is not None:
            w = torch.as_tensor(representable_weights(f.drive[None, :]).astype(np.int64))
            drive = dense(torch.ones(1, 1, dtype=torch.int64), w, f.drive_exp)
        pops[node] = (
            t64(DECAY_UNITY - (f.du + DS_OFFSET)),
            t64(DECAY_UNITY - (f.dv + DM_OFFSET)),
            t64(f.bias_mant << f.bias_exp),
            t64(f.vth << VTH_SHIFT),
            ins,
            drive,
        )
    xin = torch.as_tensor(np.asarray(x).reshape(B, T, -1).astype(np.int64))
    state = {n: (torch.zeros(B, fp.neurons[n].size, dtype=torch.int64),) * 2 for n in order}
    rec = {n: {k: np.zeros((B, T, fp.neurons[n].size), np.int64) for k in "suv"} for n in order}
    prev = {n: torch.zeros(B, fp.neurons[n].size, dtype=torch.int64) for n in order}
    for t in range(T):
        out = {fp.topology.input_node: xin[:, t]}
        for n in order:
            keep_u, keep_v, bias, vth, ins, drive = pops[n]
            a_in = torch.zeros(B, fp.neurons[n].size, dtype=torch.int64)
            for src, w, e, back in ins:
                a_in = a_in + dense(prev[src] if back else out[src], w, e)
            if drive is not None:
                a_in = a_in + drive
            u, v = state[n]
            u = decay(u, keep_u) + (a_in << ACT_SHIFT)
            u = torch.where(u > WRAP_LIMIT, u - WRAP_SPAN, torch.where(u <= -WRAP_LIMIT, u + WRAP_SPAN, u))
            v = torch.clamp(decay(v, keep_v) + u + bias, -STATE_MAX, STATE_MAX)
            s = v > vth
            v = torch.where(s, torch.zeros_like(v), v)
            state[n] = (u, v)
            out[n] = s.long()
            for k, a in zip("suv", (s, u, v)):
                rec[n][k][:, t] = a.numpy()
        prev = {n: out[n] for n in order}
    spikes = {n: rec[n]["s"].astype(np.int8) for n in order if fp.neurons[n].spiking}
    states = {n: {"u": rec[n]["u"], "v": rec[n]["v"]} for n in order}
    if not record_states:
        states = {n: {"v": st["v"]} for n, st in states.items() if not fp.neurons[n].spiking}
    return spikes, states


# --------------------------------------------------------------------------- convolution structure


@dataclass(frozen=True, eq=False)
class ConvGeometry:
    """A dense (C_out*H_out*W_out, C_in*H*W) matrix that is a 2-D convolution: output (co, i, j) reads
    input (ci, i*stride_h + off_h + a, j*stride_w + off_w + b) with weight kernel[co, ci, a, b]
    (positions outside the input are zero padding)."""

    kernel: np.ndarray  # (C_out, C_in, kh, kw) int64
    in_shape: Tuple[int, int, int]
    out_shape: Tuple[int, int, int]
    stride: Tuple[int, int]
    offset: Tuple[int, int]

    @property
    def macs(self) -> int:
        """Multiply-adds per sample and step of the im2col product."""
        co, ci, kh, kw = self.kernel.shape
        return co * ci * kh * kw * self.out_shape[1] * self.out_shape[2]


def _axis_candidates(support: np.ndarray) -> List[Tuple[int, int, int]]:
    """(stride, offset, extent) along one axis, best first: for each stride the smallest window covering, for
    every output position i, the input positions it reads (``support`` (n_out, n_in) bool); ranked by extent,
    then by how well ``stride * n_out`` matches ``n_in`` (a border clipped by padding can tie strides)."""
    n_out, n_in = support.shape
    rows = np.flatnonzero(support.any(1))
    if rows.size == 0:
        return []
    lo = support[rows].argmax(1)
    hi = n_in - 1 - support[rows][:, ::-1].argmax(1)
    out = []
    for s in range(1, n_in + 1):
        o = int(np.min(lo - rows * s))
        out.append((s, o, int(np.max(hi - rows * s - o)) + 1))
    return sorted(out, key=lambda g: (g[2], abs(g[0] * n_out - n_in)))


def _taps(n_out: int, s: int, o: int, k: int, n_in: int):
    """Per kernel tap along one axis: the first output position that reads it inside the input, the input
    position there, and whether any does; and per (output, tap) the input position and its validity."""
    pos = np.arange(n_out)[:, None] * s + o + np.arange(k)[None, :]
    ok = (pos >= 0) & (pos < n_in)
    first = ok.argmax(0)
    return first, np.clip(pos[first, np.arange(k)], 0, n_in - 1), ok.any(0), pos, ok


def conv_geometry(w: np.ndarray, in_shape, out_shape, tries: int = 3) -> Optional[ConvGeometry]:
    """The convolution that ``w`` (N_out, N_in) is, or None: geometry and kernel are read off the matrix,
    then every entry of the matrix is checked against them (a nonzero outside every window, or one tap
    value differing anywhere, rejects them; the ``tries`` best geometries per axis are tried). None too
    when the im2col product would not save at least half the dense one's multiply-adds."""
    if len(in_shape) != 3 or len(out_shape) != 3:
        return None
    ci, hi, wi = (int(d) for d in in_shape)
    co, ho, wo = (int(d) for d in out_shape)
    if w.shape != (co * ho * wo, ci * hi * wi):
        return None
    m = w.reshape(co, ho, wo, ci, hi, wi)
    nz = m != 0
    hs, ws = _axis_candidates(nz.any(axis=(0, 2, 3, 5))), _axis_candidates(nz.any(axis=(0, 1, 3, 4)))
    total = int(np.count_nonzero(w))
    for gh in hs[:tries]:
        for gw in ws[:tries]:
            if 2 * co * ci * gh[2] * gw[2] * ho * wo <= w.size:
                geo = _checked_conv(m, total, gh, gw)
                if geo is not None:
                    return geo
    return None


def _checked_conv(m: np.ndarray, total: int, gh, gw) -> Optional[ConvGeometry]:
    """The kernel of geometry (gh, gw) read off ``m`` (C_out, H_out, W_out, C_in, H, W), if the matrix is
    exactly that convolution: every window entry equals its tap, and the windows hold every nonzero."""
    co, ho, wo, ci, hi, wi = m.shape
    (sh, oh, kh), (sw, ow, kw) = gh, gw
    ih, hh, vh, pos_h, ok_h = _taps(ho, sh, oh, kh, hi)
    iw, ww, vw, pos_w, ok_w = _taps(wo, sw, ow, kw, wi)
    kernel = m[:, ih[:, None], iw[None, :], :, hh[:, None], ww[None, :]].transpose(2, 3, 0, 1).copy()
    kernel[:, :, ~vh, :] = 0
    kernel[:, :, :, ~vw] = 0
    seen = 0
    for a in range(kh):
        rows = np.flatnonzero(ok_h[:, a])
        for b in range(kw):
            cols = np.flatnonzero(ok_w[:, b])
            if rows.size == 0 or cols.size == 0:
                continue
            block = m[:, rows[:, None], cols[None, :], :, pos_h[rows, a][:, None], pos_w[cols, b][None, :]]
            if not np.array_equal(block, np.broadcast_to(kernel[:, :, a, b], block.shape)):
                return None
            seen += int(np.count_nonzero(block))
    if seen != total:
        return None
    return ConvGeometry(kernel, (ci, hi, wi), (co, ho, wo), (sh, sw), (oh, ow))


# --------------------------------------------------------------------------- kernels


_INT8_OK: Dict[str, bool] = {}


def int8_available(device: str) -> bool:
    """Whether ``torch._int_mm`` runs here and is exact (probed once per device type)."""
    import torch

    if device not in _INT8_OK:
        ok = device == "cpu" and hasattr(torch, "_int_mm")
        if ok:
            try:
                g = torch.Generator().manual_seed(0)
                a = torch.randint(0, 2, (37, 301), generator=g, dtype=torch.int8)
                b = torch.randint(-128, 128, (301, 19), generator=g, dtype=torch.int8)
                ok = bool(torch.equal(torch._int_mm(a, b).long(), a.long() @ b.long()))
            except (RuntimeError, TypeError, NotImplementedError):
                ok = False
        _INT8_OK[device] = ok
    return _INT8_OK[device]


def float32_exact(device: str) -> bool:
    """Whether a float32 matmul is a full-precision one (TF32 / bf16 modes would round the 8-bit products'
    sums: then float64 is used)."""
    import torch

    if torch.get_float32_matmul_precision() != "highest":
        return False
    for obj in (torch.backends, getattr(torch.backends, "mkldnn", None), torch.backends.cuda):
        for sub in (obj, getattr(obj, "matmul", None)):
            if getattr(sub, "fp32_precision", "none") not in ("none", "ieee"):
                return False
    return not (device.startswith("cuda") and torch.backends.cuda.matmul.allow_tf32)


def int8_form(w: np.ndarray) -> Optional[Tuple[np.ndarray, int, int]]:
    """``w = g * (q + c)`` with q int8, g a power of two, c an offset; None when w does not fit."""
    nz = np.abs(w[w != 0])
    g = 1
    if nz.size:
        d = int(np.gcd.reduce(nz))
        g = d & -d
    q = w // g
    lo, hi = (int(q.min()), int(q.max())) if q.size else (0, 0)
    if hi - lo > 255:
        return None
    c = 0 if (lo >= -128 and hi <= 127) else hi - 127
    if w.shape[0] * (128 + abs(c)) >= I32_LIMIT:
        return None
    return (q - c).astype(np.int8), g, c


@dataclass(eq=False)
class Projection:
    """One Dense into a population, as it runs here. ``w`` is (N_src, N_dst) int64 as Dense sends it, rows
    and columns in the order the source and the destination are held (:attr:`Population.hwc`)."""

    src: str
    dst: str
    w: Optional[np.ndarray]  # None for a convolution (its kernel is in ``conv``)
    exp: int
    back: bool
    bound: int  # largest sum of |w| over one output's inputs: bounds |S @ W| and every partial sum of it
    amax: np.ndarray  # (N_dst,) largest |S @ W| per output: max(sum of positive, sum of |negative| weights)
    kind: str  # "int8" | "float32" | "float64": the dense kernel
    conv: Optional[ConvGeometry] = None
    src_hwc: bool = False  # conv: the source's spikes are held (H, W, C)-major (else (C, H, W): permuted here)
    sparse: bool = True  # may switch to the sparse sum at low spike density
    _t: dict = field(default_factory=dict)  # device tensors, prepared once

    @property
    def path(self) -> str:
        return f"{self.kind} {'conv' if self.conv is not None else 'dense'}" + (" (back edge)" if self.back else "")


def _float_dtype(kind: str):
    import torch

    return torch.float32 if kind == "float32" else torch.float64


def _dense_kind(bound: int, w: np.ndarray, device: str, kernel: str) -> str:
    f32 = "float32" if bound <= F32_EXACT and float32_exact(device) else "float64"
    if bound > F64_EXACT:
        raise InputError(f"loihi-emu: a projection's sums reach {bound} > 2**53; no exact kernel for it")
    if kernel in ("auto", "int8") and int8_available(device) and int8_form(w) is not None:
        return "int8"
    if kernel == "float64":
        return "float64"
    return f32


def product(p: Projection, s8, device: str, mode: str = "auto", density: Optional[float] = None):
    """``(R, g)`` with ``S @ W == g * R`` exactly: S (M, N_src) int8 0/1, R (M, N_dst) integer-valued
    (int32 or float). ``mode``: "auto" (conv where recovered; sparse when the spikes are sparse enough),
    "dense", "sparse", "conv"; ``density``: S's fraction of ones when known."""
    import torch

    if mode == "conv" or (mode == "auto" and p.conv is not None):
        return _conv_product(p, s8)
    if mode == "auto" and p.sparse and s8.numel():
        density = _density(s8) if density is None else density
        mode = "sparse" if density < SPARSE_DENSITY[p.kind] else "dense"
    if mode == "sparse":
        return _sparse_product(p, s8), 1
    if p.kind == "int8":
        q, g, c = _prepared(p, "int8", device)
        r = torch._int_mm(s8.contiguous(), q)
        if c:
            r.add_(s8.sum(1, dtype=torch.int32, keepdim=True), alpha=c)
        return r, g
    w = _prepared(p, p.kind, device)
    return s8.to(w.dtype) @ w, 1


def _density(s8) -> float:
    n = int(np.count_nonzero(s8.numpy())) if s8.device.type == "cpu" else int(s8.count_nonzero())  # numpy: faster
    return n / s8.numel()


def _prepared(p: Projection, what: str, device: str):
    import torch

    if what not in p._t:
        if what == "int8":
            q, g, c = int8_form(p.w)
            p._t[what] = (torch.as_tensor(q, device=device), g, c)
        elif what == "conv-int8":
            q, g, c = int8_form(_kernel_matrix(p.conv))
            p._t[what] = (torch.as_tensor(np.ascontiguousarray(q), device=device), g, c)
        elif what.startswith("conv-"):
            k = _kernel_matrix(p.conv)
            p._t[what] = torch.as_tensor(k, dtype=_float_dtype(what[5:]), device=device)
        elif what.startswith("sparse-"):
            p._t[what] = torch.as_tensor(p.w, dtype=_float_dtype(what[7:]), device=device)
        else:
            p._t[what] = torch.as_tensor(p.w, dtype=_float_dtype(what), device=device)
    return p._t[what]


def _sparse_product(p: Projection, s8):
    """Sum of the rows of W of the active inputs, per row of s8 (float32 under the 2**24 bound)."""
    import torch
    import torch.nn.functional as F

    kind = "float32" if p.bound <= F32_EXACT else "float64"
    w = _prepared(p, "sparse-" + kind, str(s8.device))
    idx = s8.nonzero()
    offsets = torch.zeros(s8.shape[0], dtype=torch.long, device=s8.device)
    if s8.shape[0] > 1:
        torch.cumsum(s8.sum(1, dtype=torch.long)[:-1], 0, out=offsets[1:])
    return F.embedding_bag(idx[:, 1], w, offsets, mode="sum")


def _kernel_matrix(geo: ConvGeometry) -> np.ndarray:
    """The kernel as the (kh * kw * C_in, C_out) matrix of the (H, W, C)-major im2col."""
    k = geo.kernel
    return np.ascontiguousarray(k.transpose(2, 3, 1, 0).reshape(-1, k.shape[0]))


def _conv_product(p: Projection, s8):
    """im2col of the (H, W, C)-major spike maps, then the int8 (or float) GEMM with the recovered kernel;
    the result is (H, W, C)-major too (the order a population fed by a convolution is held in)."""
    import torch
    import torch.nn.functional as F

    geo = p.conv
    ci, hi, wi = geo.in_shape
    co, ho, wo = geo.out_shape
    _, _, kh, kw = geo.kernel.shape
    (sh, sw), (oh, ow) = geo.stride, geo.offset
    m = s8.shape[0]
    x = s8.view(m, hi, wi, ci) if p.src_hwc else s8.view(m, ci, hi, wi).permute(0, 2, 3, 1)
    x = F.pad(x, (0, 0, -ow, ow + (wo - 1) * sw + kw - wi, -oh, oh + (ho - 1) * sh + kh - hi))
    cols = x.unfold(1, kh, sh).unfold(2, kw, sw).permute(0, 1, 2, 4, 5, 3).reshape(m * ho * wo, kh * kw * ci)
    if p.kind == "int8":
        q, g, c = _prepared(p, "conv-int8", str(s8.device))
        r = torch._int_mm(cols, q)
        if c:
            r.add_(cols.sum(1, dtype=torch.int32, keepdim=True), alpha=c)
    else:
        k = _prepared(p, "conv-" + p.kind, str(s8.device))
        r, g = cols.to(k.dtype) @ k, 1
    return r.view(m, ho * wo * co), g


# --------------------------------------------------------------------------- the compiled plan


@dataclass(eq=False)
class Population:
    """One population as the fast loop runs it: integer state (int32 where the bounds allow it)."""

    node: str
    size: int
    spiking: bool
    dtype: object  # torch.int32 | torch.int64: u, v and the per-step sums
    keep_u: object  # (N,) float64 tensor keep_u / 4096; None when 0 everywhere (u = a_in << 6)
    keep_v: object  # keep_v / 4096; None when 1 everywhere (dv = 0)
    keep_int: Optional[Tuple[object, object]]  # (keep_u, keep_v) int64 when x * keep may exceed 2**53: integer decay
    bias: object  # (N,) tensor bias_mant << bias_exp, or None when 0
    drive: object  # (N,) tensor (w_d << e_d) << 6, or None
    vth: object  # vth << 6, (N,) tensor
    wrap: bool  # the 24-bit wrap of u can act (not excluded by the bound)
    clip_lo: bool  # v can reach -(2**23 - 1)
    clip_hi: bool
    reset: bool  # v can exceed vth << 6 (always for a spiking population; an LI's v resets unrecorded)
    hwc: Optional[Tuple[int, int, int]] = None  # (C, H, W) when held (H, W, C)-major, else None (NIR order)
    pre: List[Projection] = field(default_factory=list)  # forward, from an earlier group: all steps at once
    step: List[Tuple[Projection, int]] = field(default_factory=list)  # (projection, lag): per step


@dataclass(eq=False)
class Program:
    """A FixedPlan compiled for one device: groups of populations (one per depth when the plan allows it)."""

    fp: FixedPlan
    device: str
    groups: List[List[Population]]
    projections: List[Projection]
    sparse: str  # "auto" | "never" | "always"

    @property
    def paths(self) -> Dict[str, str]:
        """``"src -> dst"``: the kernel each projection runs with (the sparse sum may replace a dense
        one per chunk, at low spike density)."""
        return {f"{p.src} -> {p.dst}": p.path for p in self.projections}

    @property
    def widest(self) -> int:
        return max([int(np.prod(self.fp.topology.input_shape))] + [p.size for g in self.groups for p in g])


def compile_plan(
    fp: FixedPlan, device: str = "cpu", kernel: str = "auto", sparse: str = "auto", conv: str = "auto"
) -> Program:
    """Choose every projection's kernel and every population's loop once (see the module docstring).

    ``kernel``: "auto", "int8", "float32" or "float64" (each falls back to the next exact one);
    ``sparse``: "auto" (by spike density, per chunk), "never" or "always"; ``conv``: "auto" or "never".
    """
    if kernel not in KERNELS:
        raise InputError(f"loihi-emu kernel must be one of {', '.join(KERNELS)}, got '{kernel}'")
    if sparse not in ("auto", "never", "always"):
        raise InputError(f"loihi-emu sparse must be auto, never or always, got '{sparse}'")
    if conv not in ("auto", "never"):
        raise InputError(f"loihi-emu conv must be auto or never, got '{conv}'")
    validate_fixed_plan(fp)
    top = fp.topology
    depth = top.depth
    order = sorted(fp.neurons, key=lambda n: depth[n])
    clean = all(depth[c.src] < depth[c.dst] for c in fp.conns if not c.back_edge) and all(
        depth[c.src] == depth[c.dst] for c in fp.conns if c.back_edge
    )
    levels = sorted({depth[n] for n in order}) if clean else [None]
    group_of = {n: (levels.index(depth[n]) if clean else 0) for n in order}
    shape_of = {top.input_node: tuple(top.input_shape), **{n: tuple(f.shape) for n, f in fp.neurons.items()}}
    conns = {n: [c for c in fp.conns if c.dst == n] for n in order}
    weights = {id(c): np.asarray(c.weight, dtype=np.int64) for c in fp.conns}  # validated: as Lava stores them
    # convolutions first: a population fed by one is held (H, W, C)-major, so that im2col reads whole channel
    # runs and the product lands in place; every other matrix and parameter is permuted to match
    geos = {}
    for node in order if conv == "auto" else ():
        for c in conns[node]:
            if not c.back_edge and (c.src not in group_of or group_of[c.src] < group_of[node]):
                geo = conv_geometry(weights[id(c)], shape_of[c.src], shape_of[node])
                if geo is not None:
                    geos[id(c)] = geo
    perm = {n: _hwc_order(shape_of[n]) if any(id(c) in geos for c in conns[n]) else None for n in order}
    projections, groups = [], [[] for _ in levels]
    for node in order:
        projs = []
        for c in conns[node]:
            wt = weights[id(c)]  # (N_dst, N_src), NIR order
            pos, neg = np.where(wt > 0, wt, 0).sum(1), np.where(wt < 0, -wt, 0).sum(1)
            bound = int(np.max(pos + neg)) if wt.size else 0
            amax = np.maximum(pos, neg)
            geo = geos.get(id(c))
            w = None  # a convolution keeps its kernel only
            if geo is None:
                w = wt.T
                if perm.get(c.src) is not None:
                    w = w[perm[c.src]]
                if perm[node] is not None:
                    w = w[:, perm[node]]
                w = np.ascontiguousarray(w)
            if perm[node] is not None:
                amax = amax[perm[node]]
            p = Projection(c.src, node, w, c.weight_exp, bool(c.back_edge), bound, amax, "", conv=geo)
            p.kind = _dense_kind(bound, w if geo is None else _kernel_matrix(geo), device, kernel)
            # the sparse sum can pay only where the dense product is wide (counting the spikes costs too)
            p.sparse = geo is None and (sparse == "always" or (sparse == "auto" and wt.shape[0] >= SPARSE_MIN_WIDTH))
            p.src_hwc = geo is not None and (perm.get(c.src) is not None or shape_of[c.src][0] == 1)
            projections.append(p)
            projs.append(p)
        groups[group_of[node]].append(_population(fp, node, projs, group_of, perm[node], device))
    return Program(fp, device, groups, projections, sparse)


def _hwc_order(shape) -> Optional[np.ndarray]:
    """For a (C, H, W) population: the NIR index of each neuron in (H, W, C)-major order."""
    if len(shape) != 3:
        return None
    return np.arange(int(np.prod(shape))).reshape(shape).transpose(1, 2, 0).reshape(-1)


def _population(fp: FixedPlan, node: str, projs: List[Projection], group_of, perm, device) -> Population:
    import torch

    f = fp.neurons[node]
    n = f.size

    def flat(a):
        a = np.broadcast_to(np.asarray(a, dtype=np.int64).reshape(-1), (n,))
        return a if perm is None else a[perm]

    keep_u = DECAY_UNITY - (flat(f.du) + DS_OFFSET)
    keep_v = DECAY_UNITY - (flat(f.dv) + DM_OFFSET)
    bias = flat(f.bias_mant) << flat(f.bias_exp)
    vth = flat(f.vth) << VTH_SHIFT
    drive = np.zeros(n, np.int64)
    if f.drive is not None:  # one always-on spike through an 8-bit weight, as the Dense of the drive sends it
        w = flat(representable_weights(f.drive[None, :])[0])
        e = f.drive_exp
        drive = w << e if e > 0 else w >> -e
    # the largest |a_in << 6| per neuron, then bounds on |u| and v that decide wrap, clip and the state dtype
    a = np.abs(drive).astype(np.float64)
    for p in projs:
        a += p.amax * 2.0**p.exp + (1 if p.exp < 0 else 0)
    a *= 2**ACT_SHIFT
    u_max = a * DECAY_UNITY / (DECAY_UNITY - keep_u)  # |u_t| <= keep/4096 |u_t-1| + a: the fixed point
    dv = DECAY_UNITY - keep_v
    with np.errstate(divide="ignore", invalid="ignore"):
        up, down = u_max + np.clip(bias, 0, None), u_max + np.clip(-bias, 0, None)
        leak_up = np.where(up == 0, 0.0, np.where(dv > 0, up * DECAY_UNITY / np.maximum(dv, 1), np.inf))
        leak_down = np.where(down == 0, 0.0, np.where(dv > 0, down * DECAY_UNITY / np.maximum(dv, 1), np.inf))
    v_up = np.minimum(vth + up, leak_up)  # a non-spiking population resets too (Lava's LIF), unrecorded
    largest = (float(np.max(u_max)) if n else 0.0) + WRAP_SPAN + float(np.max(np.abs(bias), initial=0))
    dtype = torch.int32 if largest < I32_LIMIT / 4 else torch.int64
    exact_f64 = largest * DECAY_UNITY < F64_EXACT / 4

    def f64(a):
        return torch.as_tensor(np.asarray(a, np.float64) / DECAY_UNITY, device=device)

    pop = Population(
        node,
        n,
        f.spiking,
        dtype,
        None if not np.any(keep_u) else f64(keep_u),
        None if np.all(keep_v == DECAY_UNITY) else f64(keep_v),
        None if exact_f64 else tuple(torch.as_tensor(k.copy(), device=device) for k in (keep_u, keep_v)),
        None if not np.any(bias) else torch.as_tensor(bias.copy(), dtype=dtype, device=device),
        None if not np.any(drive) else torch.as_tensor(drive << ACT_SHIFT, dtype=dtype, device=device),
        torch.as_tensor(vth.copy(), dtype=dtype, device=device),
        bool(np.any(u_max >= WRAP_LIMIT - _MARGIN)),
        bool(np.any(leak_down >= STATE_MAX - _MARGIN)),
        bool(np.any(v_up >= STATE_MAX - _MARGIN)),
        f.spiking or bool(np.any(leak_up > vth)),
        None if perm is None else tuple(int(d) for d in f.shape),
    )
    for p in projs:
        if p.src in group_of and group_of[p.src] == group_of[node]:
            pop.step.append((p, 1 if p.back else 0))
        elif p.back:  # a back edge from another group (only when the plan runs as one group: not reached)
            pop.step.append((p, 1))
        else:
            pop.pre.append(p)
    return pop


# --------------------------------------------------------------------------- running


def _binary_chunk(x: np.ndarray, device: str):
    """A chunk of input (b, T, ...) as ((b*T, N) int8 0/1 on ``device``, its density); _NotBinary if it is not
    binary: every nonzero entry must be a one (NaN is nonzero and not one). In numpy: its comparisons and
    counts are several times faster than torch's on one CPU thread."""
    import torch

    b, t = x.shape[:2]
    a = np.ascontiguousarray(x).reshape(b * t, -1)
    if a.dtype.kind not in "biuf":
        a = a.astype(np.float64)
    s = a if a.dtype == np.bool_ else a != 0
    n = int(np.count_nonzero(s))
    if s is not a and n != int(np.count_nonzero(a == 1)):
        raise _NotBinary("loihi-emu: input must be binary spikes (0/1)")
    if device is None:  # checked only
        return None
    return torch.from_numpy(s).view(torch.int8).to(device), n / max(s.size, 1)


def _mode(prog: Program, p: Projection) -> str:
    if p.conv is not None:
        return "conv"
    if prog.sparse == "always":
        return "sparse"
    return "auto" if p.sparse else "dense"


def _shifted(r, g: int, e: int, shape, dtype):
    """(value, alpha): integer tensor and int with alpha * value = ((g * r) << e) << 6, for e < 0 the
    arithmetic shift (floor). ``r`` is integer-valued (int32 or an exact float)."""
    import torch

    if r.is_floating_point() or (r.dtype == torch.int64 and dtype == torch.int32):
        r = r.to(dtype)
    if e >= 0:
        return r.view(shape), g * 2**e * 2**ACT_SHIFT
    r = (r.to(torch.int64) * g) >> -e  # |S @ W| may need 32 bits before the shift
    return r.to(dtype).view(shape), 2**ACT_SHIFT


def _run_group(prog: Program, group: List[Population], spikes, rec_s, rec_u, rec_v, b: int, T: int) -> None:
    """The T-step recurrence of one group's populations for one chunk of b samples.

    A spiking population's record holds ``v <= vth`` while the group runs (the reset is a product with
    it) and is inverted into spikes at the end."""
    import torch

    dev = prog.device
    terms = {}
    for pop in group:
        terms[pop.node] = []
        for p in pop.pre:
            s8, density = spikes[p.src]
            r, g = product(p, s8, dev, _mode(prog, p), density)
            terms[pop.node].append(_shifted(r, g, p.exp, (b, T, pop.size), pop.dtype))
    u = {p.node: torch.zeros(b, p.size, dtype=p.dtype, device=dev) for p in group}
    v = {p.node: torch.zeros(b, p.size, dtype=p.dtype, device=dev) for p in group}
    tmp = {p.node: torch.empty(b, p.size, dtype=torch.float64, device=dev) for p in group}
    scratch = {p.node: torch.empty(b, p.size, dtype=torch.bool, device=dev) for p in group if not p.spiking}
    for t in range(T):
        for pop in group:
            n = pop.node
            direct = pop.keep_u is None and not pop.wrap and n not in rec_u  # u = a_in << 6: add it to v directly
            uu, vv = u[n], v[n]
            acc = vv if direct else uu
            if direct:
                _decay(vv, pop.keep_v, tmp[n], pop.keep_int and pop.keep_int[1])
            elif pop.keep_u is None:
                uu.zero_()
            else:
                _decay(uu, pop.keep_u, tmp[n], pop.keep_int and pop.keep_int[0])
            for val, alpha in terms[n]:
                acc.add_(val[:, t], alpha=alpha)
            for p, lag in pop.step:
                if t - lag < 0:
                    continue  # a back edge carries nothing at step 0
                s_src = torch.logical_not(rec_s[p.src][:, t - lag]).view(torch.int8)
                val, alpha = _shifted(*product(p, s_src, dev, "dense"), p.exp, (b, pop.size), pop.dtype)
                acc.add_(val, alpha=alpha)
            if pop.drive is not None:
                acc.add_(pop.drive)
            if not direct:
                if pop.wrap:
                    uu.sub_((uu > WRAP_LIMIT).to(uu.dtype), alpha=WRAP_SPAN)
                    uu.add_((uu <= -WRAP_LIMIT).to(uu.dtype), alpha=WRAP_SPAN)
                _decay(vv, pop.keep_v, tmp[n], pop.keep_int and pop.keep_int[1])
                vv.add_(uu)
            if pop.bias is not None:
                vv.add_(pop.bias)
            if pop.clip_lo or pop.clip_hi:
                vv.clamp_(-STATE_MAX if pop.clip_lo else None, STATE_MAX if pop.clip_hi else None)
            if pop.reset:
                below = rec_s[n][:, t] if pop.spiking else scratch[n]
                torch.le(vv, pop.vth, out=below)
                vv.mul_(below)  # v = 0 where it spiked
            if n in rec_u:
                rec_u[n][:, t].copy_(uu)
            if n in rec_v:
                rec_v[n][:, t].copy_(vv)
    for pop in group:
        if pop.spiking:
            r = rec_s[pop.node]
            torch.logical_not(r, out=r)
            spikes[pop.node] = (r.view(torch.int8).view(b * T, pop.size), None)


def _decay(x, keep, tmp, keep_int=None) -> None:
    """In place: ``trunc0(x * keep)``, keep = keep_int / 4096. In float64 (exact: module docstring), the
    float -> int conversion truncating toward zero; with ``keep_int``: sign(p) * (|p| >> 12) in int64."""
    import torch

    if keep is None:
        return
    if keep_int is not None:
        p = x * keep_int
        x.copy_(p.sign() * (p.abs() >> DECAY_BITS))
        return
    torch.mul(x, keep, out=tmp)
    x.copy_(tmp)


def chunk_size(prog: Program, T: int) -> int:
    return max(1, CHUNK_ENTRIES["cuda" if prog.device.startswith("cuda") else "cpu"] // (T * prog.widest))


def emulate(
    fp: FixedPlan,
    x: np.ndarray,
    device: str = "cpu",
    record_states: bool = True,
    *,
    kernel: str = "auto",
    sparse: str = "auto",
    conv: str = "auto",
    chunk: Optional[int] = None,
    program: Optional[Program] = None,
):
    """Run binary input x (B, T, *input_shape) through ``fp``; flat records per population on the NIR timeline.

    Returns (spikes {node: int8 (B, T, N)}, states {node: {"u", "v": int64 (B, T, N)}}); without
    ``record_states`` only the voltage of non-spiking populations (an LI output's value).
    ``kernel``/``sparse``/``conv``: see :func:`compile_plan`; ``chunk``: samples per chunk.
    Refuses non-binary input (:class:`~snndeploy.errors.InputError`).
    """
    import torch

    prog = program or compile_plan(fp, device, kernel, sparse, conv)
    B, T = x.shape[:2]
    pops = [p for g in prog.groups for p in g]
    dev = prog.device
    rec_s = {p.node: torch.zeros(B, T, p.size, dtype=torch.bool, device=dev) for p in pops if p.spiking}
    rec_u = {p.node: torch.zeros(B, T, p.size, dtype=torch.int64, device=dev) for p in pops if record_states}
    rec_v = {
        p.node: torch.zeros(B, T, p.size, dtype=torch.int64, device=dev) for p in pops if record_states or not p.spiking
    }
    step = chunk or chunk_size(prog, T)
    with torch.no_grad():
        for b0 in range(0, B, step):
            b1 = min(B, b0 + step)
            spikes = {fp.topology.input_node: _binary_chunk(x[b0:b1], dev)}
            for group in prog.groups:
                _run_group(
                    prog,
                    group,
                    spikes,
                    {n: r[b0:b1] for n, r in rec_s.items()},
                    {n: r[b0:b1] for n, r in rec_u.items()},
                    {n: r[b0:b1] for n, r in rec_v.items()},
                    b1 - b0,
                    T,
                )
    hwc = {p.node: p.hwc for p in pops}

    def nir(n, a):  # the record in NIR neuron order
        a = a.cpu().numpy()
        if hwc[n] is None:
            return a
        c, h, w = hwc[n]
        return np.ascontiguousarray(a.reshape(B, T, h, w, c).transpose(0, 1, 4, 2, 3)).reshape(B, T, c * h * w)

    spk = {n: nir(n, a.view(torch.int8)) for n, a in rec_s.items()}
    states = {n: {"v": nir(n, rec_v[n])} for n in rec_v}
    for n, a in rec_u.items():
        states[n] = {"u": nir(n, a), **states[n]}
    return spk, states


class LoihiEmuBackend:
    name = "loihi-emu"
    supports = FIXED_SUPPORTED
    refused_why = FIXED_REFUSED_WHY

    def __init__(self, record_states: bool = True, device: Optional[str] = None, kernel: str = "auto"):
        self.record_states = record_states
        self.device = device
        self.kernel = kernel

    def _device(self) -> str:
        return resolve_device(self.device or "auto")

    def check(self, graph, dt: float) -> None:
        fixed_plan_for(graph, dt, self.name)

    def check_input(self, x) -> None:
        """Refuse non-binary input, naming the first offending value (a chunked count first: faster)."""
        x = np.asarray(x)
        if x.ndim < 2 or x.size == 0:
            check_binary(x, self.name)
            return
        step = max(1, (1 << 24) // x[:1].size)
        for b0 in range(0, len(x), step):
            try:
                _binary_chunk(x[b0 : b0 + step], None)
            except _NotBinary:
                check_binary(x, self.name)
                raise

    def run(self, graph, spikes, dt, progress=None) -> RunResult:
        ag = as_analysed(graph)
        arr = np.asarray(spikes)
        # shape, dtype and emptiness with check_input's messages, without its float64 copy of the whole input
        try:
            G.check_input(ag.graph, arr[:1, :1] if arr.ndim >= 3 else arr)
        except InputError:
            G.check_input(ag.graph, arr)  # the message names the whole array
            raise
        x = arr.reshape(arr.shape[:2] + G.input_spec(ag.graph).shape)
        try:
            return self.run_fixed(fixed_plan_for(ag, dt, self.name), x, progress)
        except _NotBinary:
            G.check_input(ag.graph, arr)  # NaN / inf: its message
            check_binary(x, self.name)  # the first value that is not 0/1
            raise

    def run_fixed(self, fp: FixedPlan, x: np.ndarray, progress=None) -> RunResult:
        """Run an already quantized plan (tests build edge-case plans directly)."""
        start = time.perf_counter()
        device = self._device()
        prog = compile_plan(fp, device, self.kernel)
        try:
            spk, states = emulate(fp, x, device, self.record_states, program=prog)
        except _NotBinary:
            check_binary(x, self.name)
            raise
        result, shaped = node_records(fp, x, spk, states)
        if progress is not None:
            progress(self.name, 1.0)
        info = {
            "precision": "Loihi fixed point (exact integer emulation of Lava fixed_pt in torch)",
            "device": device,
            "units": RAW_UNITS,
            "wall_s": time.perf_counter() - start,
            "quantization": fp.report_dict(),
            "how": "PyLifResetModelBitAcc + PyDenseModelBitAcc arithmetic, batched, on the NIR timeline",
            "paths": prog.paths,
        }
        return RunResult(self.name, result, shaped if self.record_states else {}, info)
