"""Lowering neuron populations to Lava's LIF equations, one function per neuron type.

No Lava import: plain numpy. Lava's float LIF (``lava.proc.lif.models.AbstractPyLifModelFloat``)
computes per step::

    u <- u * (1 - du) + a_in
    v <- v * (1 - dv) + u + bias
    s  = v > vth ;  v <- 0 where s

We match NIR's forward-Euler LIF ``v <- v + a*((v_leak - v) + r*I)`` with ``a = dt/tau`` by
working in shifted units ``v' = v - v_reset`` and choosing::

    du = 1                       (u carries no memory: u = a_in)
    dv = a
    a_in = (a*r) * I             (folded into the Dense weights, row-wise)
    bias = a*(v_leak - v_reset) + (a*r) * b   (b: the Affine bias)
    vth  = v_threshold - v_reset

so that ``v'_new = (1-a) v' + a (v_leak - v_reset) + a r I`` — the NIR update subtracted by
v_reset — and Lava's reset to 0 is NIR's reset to v_reset. IF is the same with ``a`` replaced
by 1 in the input scale and ``dv = 0``; LI is LIF shifted by v_leak with an infinite
threshold. NIR's Integrator ``I`` (``v <- v + r*I``) is IF with an infinite threshold (graded
output, like LI). ``Threshold`` (``z = I > threshold``, stateless) is ``du = dv = 1``:
``v = v*0 + a_in + bias`` forgets v every step (``v*(1-dv)`` is exactly 0 for finite v, so the
reset to 0 changes nothing), ``vth = threshold``, input scale 1; it spikes, so it may feed
further synapses.

CubaLIF (``b = dt/tau_syn``; NIR/Norse order ``I <- (1-b) I + b w_in S`` then
``v <- v + a((v_leak - v) + r I)``, see :mod:`snndeploy.reference.neurons`) maps onto Lava's u
with ``u = a*r*I``::

    du = b ;  dv = a ;  a_in = (a*r*b*w_in) * S ;  bias = a*(v_leak - v_reset)

Lava's ``u <- u(1-du) + a_in`` is then ``a r`` times NIR's current update, and
``v <- v(1-dv) + u + bias`` is NIR's voltage update with the *new* current, as in Norse: both
integrate the input into v in the same step. CubaLI is the same with v shifted by v_leak and
an infinite threshold. A constant (bias) input into a Cuba population enters u, not v
(``u_bias``, sent by a drive source, see :mod:`snndeploy.runtime.lava`).

Initial state: Lava resets v (and u) to 0 at each sample's first step; NIR starts at
``v = v_leak``. Where ``c = v_leak - v_reset`` is not 0 (a LIF whose leak and reset differ),
the ``lava-float`` plan adds ``init_pulse = (1 - dv) c`` to u on the first step and
``-(1 - du)(1 - dv) c`` on the second, so that v takes the first step from c exactly and u
forgets the pulse (``build_plan(..., drives=True)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..errors import UnsupportedNodeError
from ..reference import NeuronParams


@dataclass(frozen=True)
class PlanFor:
    """Whom a plan is built for: the backend (named in refusals), what it supports, and whether its
    runtime has a drive source per population (``v_start``, ``u_bias``)."""

    backend: str
    supported: frozenset
    drives: bool = False
    constant_drive: bool = False  # a drive source with the "every step" channel only (fixed point)


@dataclass(frozen=True, eq=False)
class NeuronLowering:
    """A neuron population in Lava's units; all arrays flattened to (N,)."""

    node: str
    kind: str
    shape: Tuple[int, ...]
    input_scale: np.ndarray  # multiplies every incoming current (folded into weights)
    du: np.ndarray
    dv: np.ndarray
    vth: np.ndarray  # +inf for LI
    bias: np.ndarray  # per step, Lava units (Affine biases are added when wired)
    v_offset: np.ndarray  # NIR v = Lava v + v_offset
    spiking: bool
    v_start: Optional[np.ndarray] = None  # Lava v the first step starts from (None: 0, Lava's reset)
    u_bias: Optional[np.ndarray] = None  # constant added to a_in every step (Cuba: bias enters u)
    mute: bool = False  # source of a back edge: its output is gated on the last step of each window (sample isolation)

    @property
    def drives(self) -> Optional[np.ndarray]:
        """(N, 3) weights of the drive source's channels, or None when all are zero.

        Channels (see ``snndeploy.runtime.lava.DRIVE_CHANNELS``): [first step, second step, every step]."""
        zeros = np.zeros(self.size)
        start = zeros if self.v_start is None else self.v_start
        const = zeros if self.u_bias is None else self.u_bias
        if not (np.any(start) or np.any(const)):
            return None
        pulse = (1 - self.dv) * start
        return np.stack([pulse, -(1 - self.du) * pulse, const], axis=1)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def _check_start(p: NeuronParams, ctx: PlanFor) -> Optional[np.ndarray]:
    """Lava v to start from (v_leak - v_reset), or refuse if the backend has no drive source."""
    c = (p.v_leak - p.v_reset).reshape(-1)
    if not np.any(c):
        return None
    if ctx.drives:
        return c
    i = int(np.argmax(c != 0))
    raise UnsupportedNodeError(
        ctx.backend,
        p.name,
        p.kind,
        ctx.supported,
        why=(
            f"v_leak ({p.v_leak.reshape(-1)[i]}) differs from v_reset ({p.v_reset.reshape(-1)[i]}) at neuron {i}; "
            "Lava's LIF starts and resets at one value (0), so the initial state v = v_leak and the "
            "reset value v_reset must be equal"
        ),
    )


def lower_lif(p: NeuronParams, dt: float, ctx: PlanFor) -> NeuronLowering:
    start = _check_start(p, ctx)
    a = (dt / p.tau).reshape(-1)
    return NeuronLowering(
        p.name,
        "LIF",
        p.shape,
        input_scale=a * p.r.reshape(-1),
        du=np.ones_like(a),
        dv=a,
        vth=(p.v_threshold - p.v_reset).reshape(-1),
        bias=(a * (p.v_leak - p.v_reset).reshape(-1)),
        v_offset=p.v_reset.reshape(-1),
        spiking=True,
        v_start=start,
    )


def lower_if(p: NeuronParams, dt: float, ctx: PlanFor) -> NeuronLowering:
    n = int(np.prod(p.shape))
    return NeuronLowering(
        p.name,
        "IF",
        p.shape,
        input_scale=p.r.reshape(-1),
        du=np.ones(n),
        dv=np.zeros(n),
        vth=(p.v_threshold - p.v_reset).reshape(-1),
        bias=np.zeros(n),
        v_offset=p.v_reset.reshape(-1),
        spiking=True,
    )


def lower_li(p: NeuronParams, dt: float, ctx: PlanFor) -> NeuronLowering:
    a = (dt / p.tau).reshape(-1)
    return NeuronLowering(
        p.name,
        "LI",
        p.shape,
        input_scale=a * p.r.reshape(-1),
        du=np.ones_like(a),
        dv=a,
        vth=np.full_like(a, np.inf),
        bias=np.zeros_like(a),
        v_offset=p.v_leak.reshape(-1),
        spiking=False,
    )


def lower_cuba_lif(p: NeuronParams, dt: float, ctx: PlanFor) -> NeuronLowering:
    start = _check_start(p, ctx)
    a, b = (dt / p.tau).reshape(-1), (dt / p.tau_syn).reshape(-1)
    return NeuronLowering(
        p.name,
        "CubaLIF",
        p.shape,
        input_scale=a * p.r.reshape(-1) * b * p.w_in.reshape(-1),
        du=b,
        dv=a,
        vth=(p.v_threshold - p.v_reset).reshape(-1),
        bias=(a * (p.v_leak - p.v_reset).reshape(-1)),
        v_offset=p.v_reset.reshape(-1),
        spiking=True,
        v_start=start,
    )


def lower_cuba_li(p: NeuronParams, dt: float, ctx: PlanFor) -> NeuronLowering:
    a, b = (dt / p.tau).reshape(-1), (dt / p.tau_syn).reshape(-1)
    return NeuronLowering(
        p.name,
        "CubaLI",
        p.shape,
        input_scale=a * p.r.reshape(-1) * b * p.w_in.reshape(-1),
        du=b,
        dv=a,
        vth=np.full_like(a, np.inf),
        bias=np.zeros_like(a),
        v_offset=p.v_leak.reshape(-1),
        spiking=False,
    )


def lower_integrator(p: NeuronParams, dt: float, ctx: PlanFor) -> NeuronLowering:
    n = int(np.prod(p.shape))
    return NeuronLowering(
        p.name,
        "I",
        p.shape,
        input_scale=p.r.reshape(-1),
        du=np.ones(n),
        dv=np.zeros(n),
        vth=np.full(n, np.inf),
        bias=np.zeros(n),
        v_offset=np.zeros(n),
        spiking=False,
    )


def lower_threshold(p: NeuronParams, dt: float, ctx: PlanFor) -> NeuronLowering:
    n = int(np.prod(p.shape))
    return NeuronLowering(
        p.name,
        "Threshold",
        p.shape,
        input_scale=np.ones(n),
        du=np.ones(n),
        dv=np.ones(n),  # v = a_in + bias: no memory
        vth=p.v_threshold.reshape(-1),
        bias=np.zeros(n),
        v_offset=np.zeros(n),
        spiking=True,
    )


#: neuron kind -> lowering (params, dt, ctx) -> NeuronLowering
NEURON_LOWERINGS: Dict[str, Callable[..., NeuronLowering]] = {
    "LIF": lower_lif,
    "IF": lower_if,
    "LI": lower_li,
    "CubaLIF": lower_cuba_lif,
    "CubaLI": lower_cuba_li,
    "I": lower_integrator,
    "Threshold": lower_threshold,
}


#: neuron kinds whose constant input enters u (a synaptic current), not v
U_BIAS_KINDS = frozenset({"CubaLIF", "CubaLI"})
