"""``loihi-emu``: Loihi's fixed-point LIF/Dense arithmetic as batched int64 torch (CPU or CUDA).

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

``trunc0(p / 2**12) = sign(p) * (|p| >> 12)``: rounding toward zero. The Dense
product is taken in float64 (CUDA has no int64 matmul); it is exact because
binary spikes times 8-bit weights sum to far less than 2**53.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

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
from .base import RunResult

WRAP_LIMIT = 1 << (STATE_BITS - 1)  #: u wraps when it leaves (-2**23, 2**23]
WRAP_SPAN = 1 << STATE_BITS


@dataclass(frozen=True)
class Population:
    """One population's integer parameters as (1, N) int64 tensors."""

    node: str
    keep_u: object  # 4096 - (du + DS_OFFSET)
    keep_v: object  # 4096 - (dv + DM_OFFSET)
    bias: object  # bias_mant << bias_exp
    vth: object  # vth << VTH_SHIFT
    inputs: tuple  # ((src, weight float64 (N_src, N), weight_exp, back_edge), ...)
    drive: object = None  # (1, N) int64: the constant drive's a_in every step ((w << e) as Dense sends it), or None


def decay(x, keep):
    """``trunc0(x * keep / 2**12)``: Lava's sign-magnitude shift (rounds toward zero)."""
    p = x * keep
    return p.sign() * (p.abs() >> DECAY_BITS)


def wrap_u(u):
    """Lava's 24-bit wrap of the current: one period, ``> 2**23`` and ``<= -2**23`` only."""
    import torch

    return torch.where(u > WRAP_LIMIT, u - WRAP_SPAN, torch.where(u <= -WRAP_LIMIT, u + WRAP_SPAN, u))


def dense(s, w, e: int):
    """``(s @ W.T) << e`` for binary spikes s (B, N_src) and 8-bit weights (as float64, (N_src, N))."""
    a = (s @ w).round().long()
    return a << e if e > 0 else a >> -e


def lif_step(u, v, a_in, p: Population):
    """One step of PyLifResetModelBitAcc; returns (spikes bool, u, v)."""
    import torch

    u = wrap_u(decay(u, p.keep_u) + (a_in << ACT_SHIFT))
    v = torch.clamp(decay(v, p.keep_v) + u + p.bias, -STATE_MAX, STATE_MAX)
    s = v > p.vth
    return s, u, torch.where(s, torch.zeros_like(v), v)


def populations(fp: FixedPlan, device) -> List[Population]:
    """Tensors per population, in order of depth (every source is computed before it is used)."""
    import torch

    def t(a):
        return torch.as_tensor(np.asarray(a, dtype=np.int64).reshape(1, -1), device=device)

    pops = []
    for node in sorted(fp.neurons, key=lambda n: fp.topology.depth[n]):
        f = fp.neurons[node]
        ins = tuple(
            (
                c.src,
                torch.as_tensor(representable_weights(c.weight).T.astype(np.float64), device=device),
                c.weight_exp,
                c.back_edge,
            )
            for c in fp.conns
            if c.dst == node
        )
        drive = None
        if f.drive is not None:  # one always-on spike through an 8-bit weight, as the Dense of the drive sends it
            w = torch.as_tensor(representable_weights(f.drive[None, :]).astype(np.float64), device=device)
            drive = dense(torch.ones(1, 1, dtype=torch.float64, device=device), w, f.drive_exp)
        pops.append(
            Population(
                node,
                t(DECAY_UNITY - (f.du + DS_OFFSET)),
                t(DECAY_UNITY - (f.dv + DM_OFFSET)),
                t(f.bias_mant << f.bias_exp),
                t(f.vth << VTH_SHIFT),
                ins,
                drive,
            )
        )
    return pops


def emulate(fp: FixedPlan, x: np.ndarray, device: str = "cpu", record_states: bool = True):
    """Run binary input x (B, T, *input_shape) through ``fp``; flat records per population on the NIR timeline.

    Returns (spikes {node: int8 (B, T, N)}, states {node: {"u", "v": int64 (B, T, N)}}).
    """
    import torch

    validate_fixed_plan(fp)
    B, T = x.shape[:2]
    pops = populations(fp, device)
    xin = torch.as_tensor(x.reshape(B, T, -1), dtype=torch.float64, device=device)
    state = {p.node: (torch.zeros(B, p.vth.shape[1], dtype=torch.int64, device=device),) * 2 for p in pops}
    rec_s = {p.node: torch.zeros(B, T, p.vth.shape[1], dtype=torch.int8, device=device) for p in pops}
    rec_u = (
        {p.node: torch.zeros(B, T, p.vth.shape[1], dtype=torch.int64, device=device) for p in pops}
        if record_states
        else {}
    )
    rec_v = (
        {p.node: torch.zeros(B, T, p.vth.shape[1], dtype=torch.int64, device=device) for p in pops}
        if record_states
        else {}
    )
    prev = {p.node: torch.zeros(B, p.vth.shape[1], dtype=torch.float64, device=device) for p in pops}
    for t in range(T):
        out = {fp.topology.input_node: xin[:, t]}
        for p in pops:
            # a back edge carries its source's spikes of the previous step (none at step 0)
            a_in = sum(dense(prev[src] if back else out[src], w, e) for src, w, e, back in p.inputs)
            if p.drive is not None:
                a_in = a_in + p.drive
            s, u, v = lif_step(*state[p.node], a_in, p)
            state[p.node] = (u, v)
            out[p.node] = s.to(torch.float64)
            rec_s[p.node][:, t] = s
            if record_states:
                rec_u[p.node][:, t] = u
                rec_v[p.node][:, t] = v
        prev = {p.node: out[p.node] for p in pops}
    spikes = {n: a.cpu().numpy() for n, a in rec_s.items() if fp.neurons[n].spiking}
    states = {n: {"u": rec_u[n].cpu().numpy(), "v": rec_v[n].cpu().numpy()} for n in rec_u}
    if not record_states:  # a non-spiking output still needs its voltage
        states = {}
    return spikes, states


class LoihiEmuBackend:
    name = "loihi-emu"
    supports = FIXED_SUPPORTED
    refused_why = FIXED_REFUSED_WHY

    def __init__(self, record_states: bool = True, device: Optional[str] = None):
        self.record_states = record_states
        self.device = device

    def _device(self) -> str:
        return resolve_device(self.device or "auto")

    def check(self, graph, dt: float) -> None:
        fixed_plan_for(graph, dt, self.name)

    def check_input(self, x) -> None:
        check_binary(x, self.name)

    def run(self, graph, spikes, dt, progress=None) -> RunResult:
        ag = as_analysed(graph)
        x = G.check_input(ag.graph, spikes)
        check_binary(x, self.name)
        return self.run_fixed(fixed_plan_for(ag, dt, self.name), x, progress)

    def run_fixed(self, fp: FixedPlan, x: np.ndarray, progress=None) -> RunResult:
        """Run an already quantized plan (tests build edge-case plans directly)."""
        start = time.perf_counter()
        device = self._device()
        need_v = not fp.neurons[fp.topology.output_from].spiking
        spk, states = emulate(fp, x, device, self.record_states or need_v)
        result, shaped = node_records(fp, x, spk, states)
        if progress is not None:
            progress(self.name, 1.0)
        info = {
            "precision": "Loihi fixed point (int64 torch emulation of Lava fixed_pt)",
            "device": device,
            "units": "raw 24-bit state",
            "wall_s": time.perf_counter() - start,
            "quantization": fp.report_dict(),
            "how": "PyLifResetModelBitAcc + PyDenseModelBitAcc arithmetic, batched, on the NIR timeline",
        }
        return RunResult(self.name, result, shaped if self.record_states else {}, info)
