"""The fixed-point plan: a float LavaPlan quantized population by population (numpy only).

Rules and bit widths: :mod:`.quantize` and docs/fixed_point.md. A :class:`FixedPlan` shares
the float plan's :class:`~snndeploy.lower.plan.Topology` and holds its own integer records;
``lava-fixed`` runs it on Lava, ``loihi-emu`` emulates it. Both take binary input only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..reference import IO_TYPES
from .plan import LINEAR_TYPES, REFUSED_WHY, Topology, build_plan
from .quantize import (
    A_OUT_MAX,
    ACT_SHIFT,
    BIAS_EXP_MAX,
    BIAS_MANT_MAX,
    DECAY_MAX,
    DECAY_UNITY,
    STATE_MAX,
    VTH_MAX,
    VTH_SHIFT,
    WEIGHT_BITS,
    WEIGHT_EXP_MAX,
    WEIGHT_MAX_MIXED,
    WEIGHT_MAX_SINGLE_SIGN,
    QuantizationError,
    check_finite,
    choose_scale,
    quant_error,
    quantize_bias,
    quantize_decays,
    quantize_threshold,
    quantize_weights,
    representable_weights,
    round_half_away,
    row_sums,
    sign_mode_of,
)

#: neuron types whose float lowering has a fixed-point form here
FIXED_NEURON_KINDS = frozenset({"LIF", "IF", "LI", "CubaLIF", "CubaLI"})
#: what the fixed-point backends (lava-fixed, loihi-emu) run: linear chains compose into one matrix first
FIXED_SUPPORTED = IO_TYPES | LINEAR_TYPES | FIXED_NEURON_KINDS
#: node types the fixed-point backends refuse, with the reason given in the refusal
FIXED_REFUSED_WHY = {
    **REFUSED_WHY,
    "I": "an integrator never leaks or resets (dv = 0, no threshold): its 24-bit state would overflow unbounded",
    "Threshold": "a stateless threshold needs dv = 1, i.e. dv*4096 = 4096, outside Loihi's unsigned 12-bit decay",
}


@dataclass(frozen=True, eq=False)
class FixedNeuron:
    """One population in Lava's integer units; arrays flattened to (N,), int64."""

    node: str
    kind: str
    shape: Tuple[int, ...]
    du: np.ndarray  # unsigned 12-bit, Lava adds DS_OFFSET
    dv: np.ndarray  # unsigned 12-bit
    vth: np.ndarray  # unsigned 17-bit mantissa, threshold vth << 6
    bias_mant: np.ndarray  # signed 13-bit
    bias_exp: np.ndarray  # 0..7
    scale: float  # raw state units per float unit (v_raw = scale * v'_float)
    spiking: bool
    mute: bool = False  # a back edge's source: output gated on each window's last step (runtime.lava)
    drive: Optional[np.ndarray] = None  # (N,) 8-bit weights from an always-on source: constant input into u
    drive_exp: int = 0

    @property
    def drives(self) -> Optional[np.ndarray]:
        """(N, 3) integer weights of the drive source's channels (step 0, step 1, every step): only the
        constant channel is used in fixed point (no start pulses)."""
        if self.drive is None:
            return None
        z = np.zeros_like(self.drive)
        return np.stack([z, z, self.drive], axis=1)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True, eq=False)
class FixedConn:
    """``dst.a_in += (weight @ src.out) << weight_exp``; weight (N_dst, N_src) int64, 8-bit values."""

    src: str
    dst: str
    weight: np.ndarray
    weight_exp: int
    via: Optional[str] = None
    back_edge: bool = False  # carries the source's spikes of the previous step


#: the source name of the constant drive in quantization reports
DRIVE_SOURCE = "(constant drive)"


@dataclass(frozen=True)
class ConnReport:
    src: str
    dst: str
    via: Optional[str]
    weight_exp: int
    sign_mode: str  # "excitatory" | "inhibitory" | "mixed"
    n_weights: int
    n_zero: int  # nonzero float weights that quantized to 0
    n_clipped: int
    mean_abs_error: float  # float units of the destination's v'
    max_abs_error: float


@dataclass(frozen=True)
class LayerReport:
    """Per population: what quantization chose and what it cost (errors in float units)."""

    node: str
    scale: float
    scale_limited_by: str
    du: Tuple[int, ...]
    dv: Tuple[int, ...]
    vth_mant: Tuple[int, int]  # (min, max)
    vth_max_abs_error: float
    bias_max_abs_error: float
    max_step_input_raw: int  # largest |u| one step of binary spikes can bring
    headroom_bits: float  # log2(STATE_MAX / largest |v| bound); inf when nothing bounds it
    conns: Tuple[ConnReport, ...]


@dataclass(frozen=True, eq=False)
class FixedPlan:
    """A float LavaPlan's topology with integer populations and projections."""

    topology: Topology
    neurons: Dict[str, FixedNeuron]
    conns: List[FixedConn]
    report: Tuple[LayerReport, ...]

    def report_dict(self) -> Dict[str, dict]:
        """The report as JSON-safe dicts: a non-finite ``headroom_bits`` becomes a string, "no input"
        (+inf: nothing drives v) or "unbounded (no leak)" (-inf: an IF integrates without leak, so v
        can reach the 24-bit clip)."""
        out = {}
        for r in self.report:
            d = asdict(r)
            h = d["headroom_bits"]
            if not math.isfinite(h):
                d["headroom_bits"] = "no input" if h > 0 else "unbounded (no leak)"
            out[r.node] = d
        return out


def quantize_population(nl, conns) -> Tuple[FixedNeuron, List[FixedConn], LayerReport]:
    """Quantize one population and the projections into it (``conns``: float Conns with dst = nl.node)."""
    for c in conns:
        check_finite(nl.node, f"weight (from '{c.via or c.src}')", c.weight)
    check_finite(nl.node, "bias", nl.bias)
    du, dv = quantize_decays(nl)
    if nl.u_bias is not None and np.any(nl.u_bias):  # a constant input into u: one more projection
        conns = list(conns) + [_DriveConn(nl.node, np.asarray(nl.u_bias, dtype=np.float64)[:, None])]
    ws = [np.asarray(c.weight, dtype=np.float64) for c in conns]
    scale, limit = choose_scale(nl, ws)
    vth = quantize_threshold(nl, scale)
    bias_mant, bias_exp = quantize_bias(nl.node, nl.bias * scale)
    pairs = [_quantize_conn(nl.node, c, w, scale, limit) for c, w in zip(conns, ws)]
    fconns = [fc for fc, _ in pairs]
    drive = [fc for fc in fconns if fc.src == DRIVE_SOURCE]
    scaled = [fc.weight * 2**fc.weight_exp for fc in fconns]
    pos, neg = row_sums(scaled) if fconns else (np.zeros(nl.size), np.zeros(nl.size))
    step_max = int(np.max(np.maximum(pos, neg))) if nl.size else 0
    if step_max > A_OUT_MAX:
        raise quant_error(nl.node, "weight", step_max, f"one step of input can reach {step_max} > {A_OUT_MAX} (16-bit)")
    b_raw = bias_mant * 2**bias_exp
    up, down = pos * 2**ACT_SHIFT + np.clip(b_raw, 0, None), neg * 2**ACT_SHIFT + np.clip(-b_raw, 0, None)
    finite = np.isfinite(nl.vth)
    vth_err = np.where(finite, np.abs(vth * 2.0**VTH_SHIFT / scale - np.where(finite, nl.vth, 0)), 0)
    bias_err = float(np.max(np.abs(bias_mant * 2.0**bias_exp / scale - nl.bias))) if nl.bias.size else 0.0
    fn = FixedNeuron(
        nl.node,
        nl.kind,
        nl.shape,
        du,
        dv,
        vth,
        bias_mant,
        bias_exp,
        scale,
        nl.spiking,
        mute=nl.mute,
        drive=drive[0].weight[:, 0] if drive else None,
        drive_exp=drive[0].weight_exp if drive else 0,
    )
    rep = LayerReport(
        nl.node,
        scale,
        limit,
        tuple(sorted(set(du.tolist()))),
        tuple(sorted(set(dv.tolist()))),
        (int(vth.min()), int(vth.max())),
        float(vth_err.max()),
        bias_err,
        step_max << ACT_SHIFT,
        _headroom_bits(vth, up, down, dv, nl.spiking),
        tuple(r for _, r in pairs),
    )
    return fn, [fc for fc in fconns if fc.src != DRIVE_SOURCE], rep


@dataclass(frozen=True, eq=False)
class _DriveConn:
    """A constant input into u seen as a projection from an always-on source (quantized like one)."""

    dst: str
    weight: np.ndarray  # (N, 1)
    src: str = DRIVE_SOURCE
    via: str = "bias into the synaptic current"
    back_edge: None = None


def _quantize_conn(node: str, c, w: np.ndarray, scale: float, limit: str) -> Tuple[FixedConn, ConnReport]:
    """One projection's 8-bit weights and exponent at the population's scale, and what it cost."""
    where = f"weight (from '{c.via or c.src}')"
    if not np.any(w):
        raise quant_error(node, where, 0.0, "the projection is all zeros")
    w_raw = w * scale / 2.0**ACT_SHIFT
    q, e = quantize_weights(w_raw)
    step = 2 if sign_mode_of(w_raw) == "mixed" else 1
    wmax = WEIGHT_MAX_MIXED if step == 2 else WEIGHT_MAX_SINGLE_SIGN
    if not np.any(q):
        raise quant_error(
            node,
            where,
            float(np.max(np.abs(w))),
            f"all weights quantize to 0 at scale {scale:.6g} (limited by {limit}); weights are too "
            "small relative to the threshold",
        )
    if not np.array_equal(representable_weights(q), q):
        raise quant_error(node, where, int(np.max(np.abs(q))), "not representable in 8 bits")
    err = np.abs(q * 2.0 ** (e + ACT_SHIFT) / scale - w)
    clipped = int(np.sum(step * round_half_away(np.abs(w_raw) / 2.0**e / step) > wmax))
    report = ConnReport(
        c.src,
        c.dst,
        c.via,
        e,
        sign_mode_of(w),
        int(w.size),
        int(np.sum((q == 0) & (w != 0))),
        clipped,
        float(err.mean()),
        float(err.max()),
    )
    return FixedConn(c.src, c.dst, q, e, c.via, back_edge=c.back_edge is not None), report


def _headroom_bits(vth, up_raw, down_raw, dv, spiking) -> float:
    """log2(STATE_MAX / bound on |v|). Per step v can rise by ``up_raw`` and fall by ``down_raw``;
    a spiking neuron stays below ``vth << 6 + up_raw``; otherwise the leaky steady state
    ``step * 4096 / dv`` bounds |v| (no bound when dv = 0 and the step is nonzero: -inf)."""

    def leak(step):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(step == 0, 0.0, np.where(dv > 0, step * DECAY_UNITY / np.maximum(dv, 1), np.inf))

    up = np.minimum(vth.astype(np.float64) * 2**VTH_SHIFT + up_raw, leak(up_raw)) if spiking else leak(up_raw)
    bound = float(np.max(np.maximum(up, leak(down_raw)))) if vth.size else 0.0
    if bound <= 0:
        return math.inf
    return math.log2(STATE_MAX / bound) if np.isfinite(bound) else -math.inf


def quantize_plan(plan) -> FixedPlan:
    """Quantize every population of a float LavaPlan (pure; the plan is not changed)."""
    out_conns = [c for c in plan.conns if c.dst not in plan.neurons]
    if out_conns:
        c = out_conns[0]
        raise QuantizationError(
            f"cannot quantize projection '{c.via}' into the Output node '{c.dst}': fixed point needs a neuron "
            "population (LIF/IF/LI) before the Output"
        )
    neurons: Dict[str, FixedNeuron] = {}
    conns: List[FixedConn] = []
    reports = []
    for node, nl in plan.neurons.items():
        fn, fc, rep = quantize_population(nl, [c for c in plan.conns if c.dst == node])
        neurons[node] = fn
        conns.extend(fc)
        reports.append(rep)
    return FixedPlan(plan.topology, neurons, conns, tuple(reports))


def validate_fixed_plan(fp: FixedPlan) -> None:
    """Refuse integer parameters outside Loihi's bit widths, naming layer, field and value.

    Weights must be fixed points of Lava's clip + truncate (:func:`representable_weights`),
    so that splitting a matrix into per-process blocks cannot change them.
    """
    for n, f in fp.neurons.items():
        for field, a, lo, hi in (
            ("du", f.du, 0, DECAY_MAX),
            ("dv", f.dv, 0, DECAY_MAX),
            ("vth", f.vth, 0, VTH_MAX),
            ("bias_mant", f.bias_mant, -BIAS_MANT_MAX - 1, BIAS_MANT_MAX),
            ("bias_exp", f.bias_exp, 0, BIAS_EXP_MAX),
        ):
            bad = (np.asarray(a) < lo) | (np.asarray(a) > hi)
            if np.any(bad):
                raise quant_error(n, field, int(np.asarray(a).reshape(-1)[int(np.argmax(bad))]), f"outside {lo}..{hi}")
    for c in fp.conns:
        if not -WEIGHT_EXP_MAX <= c.weight_exp <= WEIGHT_EXP_MAX:
            raise quant_error(
                c.dst,
                f"weight_exp (from '{c.via or c.src}')",
                c.weight_exp,
                f"outside {-WEIGHT_EXP_MAX}..{WEIGHT_EXP_MAX}",
            )
        rep = representable_weights(c.weight)
        if not np.array_equal(rep, c.weight):
            i = int(np.argmax((rep != c.weight).reshape(-1)))
            raise quant_error(
                c.dst,
                f"weight (from '{c.via or c.src}')",
                int(c.weight.reshape(-1)[i]),
                f"Lava would store it as {int(rep.reshape(-1)[i])} ({sign_mode_of(c.weight)} sign mode, "
                f"{WEIGHT_BITS}-bit)",
            )


def fixed_plan_for(graph, dt: float, backend: str) -> FixedPlan:
    """Lower and quantize ``graph`` (a NIR graph or an analysed one) for a fixed-point backend."""
    from ..ir.analysed import as_analysed, check_supported

    ag = as_analysed(graph)
    check_supported(ag, backend, FIXED_SUPPORTED, FIXED_REFUSED_WHY)
    return quantize_plan(build_plan(ag, dt, backend, supported=FIXED_SUPPORTED, constant_drive=True))


def check_binary(x: np.ndarray, backend: str) -> None:
    """Fixed-point Dense takes binary spikes only; refuse anything else, naming the first value."""
    bad = (x != 0) & (x != 1)
    if np.any(bad):
        i = np.unravel_index(int(np.argmax(bad)), x.shape)
        raise InputError(f"{backend}: input must be binary spikes (0/1); found {x[i]} at index {tuple(map(int, i))}")


def node_records(fp: FixedPlan, x: np.ndarray, spikes: Dict[str, np.ndarray], states: Dict[str, Dict[str, np.ndarray]]):
    """NIR-node outputs (B, T, *shape) from flat per-population records: (outputs, shaped states)."""
    top = fp.topology
    B, T = x.shape[:2]
    result = {top.input_node: x}
    shaped = {n: {k: a.reshape((B, T) + fp.neurons[n].shape) for k, a in st.items()} for n, st in states.items()}
    for node, fn in fp.neurons.items():
        if node in spikes:
            result[node] = spikes[node].reshape((B, T) + fn.shape)
    out = fp.neurons[top.output_from]
    result[top.output_node] = result[out.node] if out.spiking else shaped[out.node]["v"]
    if not out.spiking:
        result[out.node] = shaped[out.node]["v"]
    return result, shaped
