"""``brian2``: the NIR graph as a Brian2 network (numpy code generation), a third independent simulator.

Mapping (docs/brian2.md): the Input is a ``NeuronGroup`` whose ``y`` is read from a 2-D
``TimedArray`` every step (graded values work as binary ones); every neuron population is a
``NeuronGroup``; every linear chain (Affine, Linear, Scale, Conv2d, SumPool2d, AvgPool2d,
Flatten; several edges summed) between two source populations is composed into one matrix per
source (:mod:`snndeploy.lower.chains`) and runs as one ``Synapses`` object whose summed variable
``s_k_post = w * y_pre`` (continuous coupling) feeds the target's input ``s_k`` every step; the
chain's bias is a per-neuron constant of the target. Spikes are Brian2's own threshold and reset
(``v > v_th`` strict; ``v = v_reset``), and ``y`` is the population's output (the spike as 0/1, or
``v`` for LI/CubaLI/I). Batches: the network is replicated once per sample (neuron ``b*N + j``
is neuron ``j`` of sample ``b``; synapses connect only within a sample), so samples are
independent and each starts from the initial state; large batches run in chunks of samples, a
fresh network per chunk.

Schedule: Brian2's default schedule (``groups`` < ``thresholds`` < ``synapses`` < ``resets``)
delivers a spike one step late and reads a summed variable before its source has updated. Here
every object of a step runs in the ``groups`` slot, ordered by the NIR evaluation order: for
each population in turn, its summed-variable updaters (the inputs of THIS step), its update, its
thresholder, its resetter; the monitors record in ``end``; then each source of a recurrent back
edge copies ``y`` to ``y_prev``, which the back edge's synapses read in the next step (at step 0
``y_prev = 0``: the chain's bias alone, docs/conventions.md "Recurrence").

Integration: ``integration="euler"`` (default) is the reference's forward Euler, written as explicit
per-step ``run_regularly`` code that repeats Norse's arithmetic operation by operation (one
binary operation per statement, so that Brian2's sympy-based rewriting cannot re-associate it):
spikes equal the ``norse`` backend's and voltages agree to rounding of the summation order.
``integration="exact"`` integrates LIF, LI, CubaLIF and CubaLI with Brian2's ``exact`` (linear)
state updater, the input of a step held constant over it (zero-order hold), and resets a LIF at
the threshold crossing inside the step (closed form), as the NIR paper's analytic simulation does
(derivation in docs/brian2.md). IF, I and Threshold have no leak: Euler is exact for them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import BackendError, GraphError, InputError, UnsupportedNodeError
from ..ir import graph as G
from ..ir.analysed import AnalysedGraph, as_analysed, check_supported
from ..lower.chains import AffineMap, compose_node, sum_maps
from ..reference import DEFINED_TYPES, NeuronParams
from .base import RunResult

INTEGRATIONS = ("euler", "exact")
#: node types this backend refuses, with the reason given in the refusal
REFUSED_WHY = {
    "Delay": (
        "Brian2's synaptic delays act on spike events, but this backend couples populations through "
        "summed variables evaluated every step and composes each linear chain into one synapse matrix, "
        "so a Delay inside a chain would need a different delay per path through it (future work)"
    ),
}
#: every type the reference defines, less the refused ones
SUPPORTED = DEFINED_TYPES - frozenset(REFUSED_WHY)
#: neuron kinds integrated by Brian2's ``exact`` state updater in ``integration="exact"``
LEAKY_KINDS = ("LIF", "LI", "CubaLIF", "CubaLI")
#: a chunk of samples holds at most this many synapses (replicated per sample)
MAX_SYNAPSES_PER_NETWORK = 4_000_000
#: exact CubaLIF/CubaLI: Brian2's closed form divides by tau_mem - tau_syn; refused when closer than this
EXACT_TAU_RTOL = 1e-6

HOW_EULER = (
    "Brian2 {version} runtime, numpy code generation, float64: one NeuronGroup per population (explicit "
    "per-step run_regularly update repeating Norse's forward-Euler arithmetic, Brian2 threshold v > v_th and "
    "reset), one Synapses per composed linear chain and source (summed variable w * y_pre), input from a "
    "TimedArray; every object scheduled in the 'groups' slot in NIR evaluation order (inputs, update, "
    "threshold, reset per population), so spikes reach the next population in the same step; samples "
    "replicated in one network"
)
HOW_EXACT = (
    "Brian2 {version} runtime, numpy code generation, float64: LIF/LI/CubaLIF/CubaLI integrated by Brian2's "
    "'exact' state updater with each step's input held constant over the step (zero-order hold), LIF reset at "
    "the threshold crossing inside the step (closed form); IF/I/Threshold per step (exact for them); same "
    "schedule and synapses as the Euler mode"
)


# --------------------------------------------------------------------------- the design (batch-independent)


@dataclass(frozen=True, eq=False)
class _Edge:
    """Synapses from source population ``src`` into the target's summed input ``s{k}``."""

    src: str
    weight: np.ndarray  # (N_dst, N_src), composed chain
    previous: bool  # a recurrent back edge: reads the source's previous-step output (y_prev)


@dataclass(frozen=True, eq=False)
class _Pop:
    """A NeuronGroup of the design: a neuron population or the computed Output."""

    node: str
    kind: str  # a NEURONS kind, or "Output"
    shape: Tuple[int, ...]
    edges: Tuple[_Edge, ...]
    bias: np.ndarray  # (N,) the composed chains' biases, summed

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True, eq=False)
class _Design:
    ag: AnalysedGraph
    pops: Tuple[_Pop, ...]  # neurons in evaluation order, then the Output if it is computed
    output_copies: Optional[str]  # the source the Output records as it is (Input or one neuron), else None
    previous: frozenset  # sources whose previous-step output a back edge reads

    @property
    def synapses_per_sample(self) -> int:
        return sum(int(np.count_nonzero(e.weight)) for p in self.pops for e in p.edges)


def _refuse(backend: str, node: str, kind: str, why: str):
    return UnsupportedNodeError(backend, node, kind, SUPPORTED, why=why)


def design(ag: AnalysedGraph, backend: str = "brian2") -> _Design:
    """Compose every linear chain into one matrix per source population (Input or neuron), per target."""
    sources = {ag.input_node, *ag.neurons}
    maps: Dict[str, AffineMap] = {}
    for n in ag.order:
        if n in sources:
            size = int(np.prod(ag.shape(n)))
            maps[n] = AffineMap({n: np.eye(size)}, np.zeros(size))
            continue
        if not ag.preds(n):
            raise GraphError(f"node '{n}' ({ag.type_name(n)}) has no incoming edge")
        for q in ag.preds(n):
            if ag.is_back_edge(q, n):
                raise _refuse(
                    backend,
                    n,
                    ag.type_name(n),
                    f"the recurrent back edge '{q} -> {n}' enters a {ag.type_name(n)}; on Brian2 a back edge must "
                    "enter a neuron population (a cycle through linear nodes only has no state to hold the "
                    "previous step)",
                )
        if n == ag.output_node:
            continue
        maps[n] = compose_node(ag, n, maps)
    pops, previous = [], set()
    for n in ag.neurons:
        p = ag.record(n)
        pops.append(_population(ag, n, p.kind, p.shape, maps))
        previous |= {e.src for e in pops[-1].edges if e.previous}
    out = ag.output_node
    preds = ag.preds(out)
    if not preds:
        raise GraphError(f"Output node '{out}' has no incoming edge")
    copies = preds[0] if len(preds) == 1 and preds[0] in sources else None
    if copies is None:
        pops.append(_population(ag, out, "Output", ag.shape(out), maps))
    return _Design(ag, tuple(pops), copies, frozenset(previous))


def _population(ag: AnalysedGraph, n: str, kind: str, shape, maps) -> _Pop:
    size = int(np.prod(shape))
    fwd = [maps[q] for q in ag.preds(n) if not ag.is_back_edge(q, n)]
    back = [maps[q] for q in ag.preds(n) if ag.is_back_edge(q, n)]
    edges = []
    bias = np.zeros(size)
    for group, previous in ((fwd, False), (back, True)):
        if not group:
            continue
        value = sum_maps(group, n)
        if value.bias.size != size:
            raise GraphError(f"edges into '{n}' carry {value.bias.size} values, node has {size}")
        bias = bias + value.bias
        edges += [_Edge(src, w, previous) for src, w in value.weights.items() if np.any(w)]
    return _Pop(n, kind, tuple(shape), tuple(edges), bias)


# --------------------------------------------------------------------------- per-kind Brian2 code


def _per_neuron(p: NeuronParams, dt: float) -> Dict[str, np.ndarray]:
    """Per-neuron constants, computed in float64 exactly as the reference's tensors are
    (:func:`snndeploy.reference.neuron_tensors`, Norse's ``dt * tau_mem_inv``)."""
    flat = lambda a: np.asarray(a, dtype=np.float64).reshape(-1)  # noqa: E731
    c = {"r": flat(p.r), "v_leak": flat(p.v_leak)}
    if p.v_threshold is not None:
        c["v_th"], c["v_reset"] = flat(p.v_threshold), flat(p.v_reset)
    if p.tau is not None:
        c["a"] = dt * (1.0 / flat(p.tau))  # Norse: dt * tau_mem_inv
        c["tau"] = flat(p.tau)
        c["decay"] = np.exp(-dt / flat(p.tau))
    if p.tau_syn is not None:
        c["g"] = flat(p.r * p.w_in * (dt / p.tau_syn))  # neuron_tensors' in_gain: r * w_in * b
        c["c"] = (-dt) * (1.0 / flat(p.tau_syn))  # Norse: -dt * tau_syn_inv
        c["tau_syn"] = flat(p.tau_syn)
        c["w_in"] = flat(p.w_in)
    return c


def _sum_code(n_edges: int) -> str:
    """``q_in`` = s0 + s1 + ... + bias, one addition per statement (the edges, then the composed bias)."""
    if n_edges == 0:
        return "q_in = bias"
    lines = ["q_s0 = s0"] + [f"q_s{k} = q_s{k - 1} + s{k}" for k in range(1, n_edges)]
    return "\n".join(lines + [f"q_in = q_s{n_edges - 1} + bias"])


#: forward-Euler update per kind, after ``q_in`` (the summed input); Norse's operation order
EULER_UPDATE = {
    # lif_box_feed_forward_step: dv = dt*tau_inv * ((r*I + v_leak) - v)
    "LIF": "q_ri = r * q_in\nq_x = q_ri + v_leak\nq_d = q_x - v\nq_dv = a * q_d\nv = v + q_dv",
    # iaf_feed_forward_step: v = v + r*I
    "IF": "q_ri = r * q_in\nv = v + q_ri",
    # li_box_feed_forward_step: dv = dt*tau_inv * ((v_leak - v) + r*I)
    "LI": "q_ri = r * q_in\nq_l = v_leak - v\nq_x = q_l + q_ri\nq_dv = a * q_x\nv = v + q_dv\ny = v",
    # lif_feed_forward_step: i += g*S; dv = dt*tau_inv*((v_leak - v) + i); i += -dt*tau_syn_inv*i
    "CubaLIF": (
        "q_gs = g * q_in\nisyn = isyn + q_gs\nq_l = v_leak - v\nq_x = q_l + isyn\nq_dv = a * q_x\nv = v + q_dv\n"
        "q_di = c * isyn\nisyn = isyn + q_di"
    ),
    "CubaLI": (
        "q_gs = g * q_in\nisyn = isyn + q_gs\nq_l = v_leak - v\nq_x = q_l + isyn\nq_dv = a * q_x\nv = v + q_dv\n"
        "q_di = c * isyn\nisyn = isyn + q_di\ny = v"
    ),
    # integrator_step: v = v + r*I, output v
    "I": "q_ri = r * q_in\nv = v + q_ri\ny = v",
    # threshold_step: z = I > threshold, no memory; "v" is the input current
    "Threshold": "v = q_in",
    "Output": "y = q_in",
}

#: exact mode: the ODEs (inputs held over the step), solved by Brian2's ``exact`` state updater
EXACT_EQUATIONS = {
    "LIF": "dv/dt = (v_leak - v + r*I_in)/tau_s : 1\nI_in : 1",
    "LI": "dv/dt = (v_leak - v + r*I_in)/tau_s : 1\nI_in : 1",
    "CubaLIF": "dv/dt = (v_leak - v + r*isyn)/tau_s : 1\ndisyn/dt = (w_in*I_in - isyn)/tau_syn_s : 1\nI_in : 1",
    "CubaLI": "dv/dt = (v_leak - v + r*isyn)/tau_s : 1\ndisyn/dt = (w_in*I_in - isyn)/tau_syn_s : 1\nI_in : 1",
}
#: exact-mode LIF reset at the crossing inside the step (docs/brian2.md): with v_inf = v_leak + r*I the
#: trajectory's end point, f = exp(-(dt - t*)/tau) = (v_end - v_inf)/(v_th - v_inf), clipped to [decay, 1]
#: (decay: crossed at the step's start, i.e. v was above threshold already); v = v_inf + (v_reset - v_inf)*f
CROSSING_RESET = (
    "q_vinf = v_leak + r*I_in\n"
    "q_up = int(q_vinf > v_th)\n"
    "q_f = clip((v - q_vinf) / ((v_th - q_vinf)*q_up + (1 - q_up)), decay, 1.0)\n"
    "q_f = q_up*q_f + (1 - q_up)*decay\n"
    "v = q_vinf + (v_reset - q_vinf)*q_f\n"
    "y = 1"
)

_PARAMS = {
    "LIF": ("r", "v_leak", "v_th", "v_reset", "a"),
    "IF": ("r", "v_th", "v_reset"),
    "LI": ("r", "v_leak", "a"),
    "CubaLIF": ("v_leak", "v_th", "v_reset", "a", "g", "c"),
    "CubaLI": ("v_leak", "a", "g", "c"),
    "I": ("r",),
    "Threshold": ("v_th",),
    "Output": (),
}
_EXACT_PARAMS = {
    "LIF": ("r", "v_leak", "v_th", "v_reset", "decay"),
    "LI": ("r", "v_leak"),
    "CubaLIF": ("r", "v_leak", "v_th", "v_reset", "w_in"),
    "CubaLI": ("r", "v_leak", "w_in"),
}


def _initial(kind: str, c: Dict[str, np.ndarray], size: int) -> Dict[str, np.ndarray]:
    """Norse's initial state: v = v_leak (LIF/LI/Cuba), v_reset (IF), 0 (I, Threshold); current 0."""
    if kind in ("LIF", "LI", "CubaLIF", "CubaLI"):
        return {"v": c["v_leak"]}
    if kind == "IF":
        return {"v": c["v_reset"]}
    return {"v": np.zeros(size)} if kind != "Output" else {}


# --------------------------------------------------------------------------- the backend


class Brian2Backend:
    name = "brian2"
    supports = SUPPORTED
    refused_why = REFUSED_WHY

    def __init__(self, integration: str = "euler", max_synapses: int = MAX_SYNAPSES_PER_NETWORK):
        if integration not in INTEGRATIONS:
            raise InputError(f"brian2 integration must be one of {', '.join(INTEGRATIONS)}, got '{integration}'")
        self.integration = integration
        self.max_synapses = int(max_synapses)
        self._last: Optional[Tuple[AnalysedGraph, float, _Design]] = None  # check() then run(), or run per chunk

    def check(self, graph, dt: float) -> None:
        """Refuse, before anything runs, what this backend cannot run (named)."""
        self._design(as_analysed(graph), dt)

    def _design(self, ag: AnalysedGraph, dt: float) -> _Design:
        """The checked design of ``ag``; composed once per analysed graph (the harness checks, then runs
        chunk by chunk, with the same AnalysedGraph)."""
        if self._last is not None and self._last[0] is ag and self._last[1] == dt:
            return self._last[2]
        check_supported(ag, self.name, self.supports, REFUSED_WHY)
        if not (np.isfinite(dt) and dt > 0):
            raise InputError(f"brian2: dt must be a positive number of seconds, got {dt}")
        if self.integration == "exact":
            self._check_exact(ag)
        d = design(ag, self.name)
        self._last = (ag, dt, d)
        return d

    def _check_exact(self, ag: AnalysedGraph) -> None:
        for n in ag.neurons:
            p = ag.record(n)
            if p.tau_syn is None:
                continue
            close = np.abs(p.tau - p.tau_syn) <= EXACT_TAU_RTOL * np.maximum(p.tau, p.tau_syn)
            if np.any(close):
                i = int(np.argmax(close.reshape(-1)))
                raise _refuse(
                    self.name,
                    n,
                    p.kind,
                    f"integration='exact': tau_mem ({p.tau.reshape(-1)[i]}) equals tau_syn at neuron {i}; Brian2's "
                    "exact solution of the current-based system divides by tau_mem - tau_syn (use the Euler mode)",
                )

    def check_input(self, x) -> None:
        """Any finite numbers run here (checked with the graph's input shape in ``run``)."""

    def run(self, graph, spikes, dt: float, progress=None) -> RunResult:
        ag = as_analysed(graph)
        x = G.check_input(ag.graph, spikes)
        d = self._design(ag, dt)
        start = time.perf_counter()
        B, T = x.shape[:2]
        per_sample = max(1, d.synapses_per_sample)
        chunk = max(1, min(B, self.max_synapses // per_sample))
        parts: List[Tuple[dict, dict]] = []
        for s in range(0, B, chunk):
            parts.append(_Network(d, dt, self.integration).run(x[s : s + chunk]))
            if progress is not None:
                progress(self.name, min(B, s + chunk) / B)
        outputs = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
        states = {k: {"v": np.concatenate([p[1][k] for p in parts])} for k in parts[0][1]}
        import brian2

        how = HOW_EXACT if self.integration == "exact" else HOW_EULER
        info = {
            "precision": "float64",
            "integration": self.integration,
            "device": "cpu (Brian2 runtime, numpy code generation)",
            "samples_per_network": chunk,
            "synapses_per_sample": d.synapses_per_sample,
            "wall_s": time.perf_counter() - start,
            "how": how.format(version=brian2.__version__),
        }
        return RunResult(self.name, outputs, states, info)


@dataclass
class _Network:
    """One Brian2 network for a chunk of samples (the design replicated per sample)."""

    d: _Design
    dt: float
    integration: str

    def run(self, x: np.ndarray):
        import brian2 as b2

        b2.prefs.codegen.target = "numpy"
        b2.prefs.core.default_float_dtype = np.float64
        ag, d = self.d.ag, self.d
        B, T = x.shape[:2]
        clock = b2.Clock(dt=self.dt * b2.second, name="snndeploy_clock*")
        n_in = int(np.prod(ag.input_shape))
        stim = b2.TimedArray(x.reshape(B, T, n_in).transpose(1, 0, 2).reshape(T, B * n_in), dt=self.dt * b2.second)
        groups: Dict[str, object] = {}
        inp = b2.NeuronGroup(B * n_in, "y : 1\ny_prev : 1", clock=clock, name="input*")
        inp.run_regularly("y = stim(t, i)", when="groups", order=0)
        groups[ag.input_node] = inp
        monitors = {ag.input_node: b2.StateMonitor(inp, ["y"], record=True, when="end", order=0, clock=clock)}
        objects: list = [inp, monitors[ag.input_node]]
        vmon = {}
        for k, p in enumerate(d.pops):  # every group first: a back edge's source comes later in the order
            grp = self._group(b2, p, B, clock, 10 * (k + 1))
            groups[p.node] = grp
            monitors[p.node] = b2.StateMonitor(grp, ["y"], record=True, when="end", order=0, clock=clock)
            objects += [grp, monitors[p.node]]
            if p.kind != "Output":
                vmon[p.node] = b2.StateMonitor(grp, ["v"], record=True, when="end", order=0, clock=clock)
                objects.append(vmon[p.node])
        for k, p in enumerate(d.pops):
            for e_idx, e in enumerate(p.edges):
                objects.append(self._synapses(b2, groups[e.src], groups[p.node], e, e_idx, B, 10 * (k + 1)))
        for src in sorted(d.previous):  # back edges read this in the next step (0 before the first)
            groups[src].run_regularly("y_prev = y", when="end", order=1)
        net = b2.Network(*objects)
        try:
            net.run(T * self.dt * b2.second, namespace={"stim": stim})
        except Exception as exc:  # a Brian2 error: name the backend and the graph's size
            raise BackendError(f"brian2: the Brian2 run failed: {type(exc).__name__}: {exc}") from exc
        steps = len(monitors[ag.input_node].t)
        if steps != T:
            raise BackendError(f"brian2: Brian2 ran {steps} steps for {T} input steps (dt = {self.dt})")

        def rec(mon, var, shape):  # (B*N, T) -> (B, T, *shape)
            a = np.asarray(getattr(mon, var), dtype=np.float64)
            return a.reshape(B, -1, T).transpose(0, 2, 1).reshape((B, T) + tuple(shape))

        outputs = {ag.input_node: rec(monitors[ag.input_node], "y", ag.input_shape)}
        states = {}
        for p in d.pops:
            shape = ag.shape(p.node) if p.kind == "Output" else ag.record(p.node).shape
            outputs[p.node] = rec(monitors[p.node], "y", shape)
            if p.node in vmon:
                states[p.node] = rec(vmon[p.node], "v", shape)
        if d.output_copies is not None:
            outputs[ag.output_node] = outputs[d.output_copies].reshape((B, T) + ag.shape(ag.output_node))
        return outputs, states

    def _group(self, b2, p: _Pop, B: int, clock, base: int):
        """The NeuronGroup of population ``p``: inputs s_k, per-neuron constants, its update at ``base``+1,
        Brian2's thresholder at +2 and resetter at +3 (all in the 'groups' slot)."""
        kind, n_edges = p.kind, len(p.edges)
        exact = self.integration == "exact" and kind in LEAKY_KINDS
        c = {} if kind == "Output" else _per_neuron(self.d.ag.record(p.node), self.dt)
        names = _EXACT_PARAMS[kind] if exact else _PARAMS[kind]
        lines = ["y : 1", "y_prev : 1", "bias : 1 (constant)"] + [f"s{k} : 1" for k in range(n_edges)]
        lines += [f"{name} : 1 (constant)" for name in names]
        if kind != "Output":
            lines.append("v : 1" if not exact else "")
        if kind in ("CubaLIF", "CubaLI") and not exact:
            lines.append("isyn : 1")
        if exact:
            lines += [EXACT_EQUATIONS[kind], "tau_s : second (constant)"]
            if kind in ("CubaLIF", "CubaLI"):
                lines.append("tau_syn_s : second (constant)")
        spiking = kind in ("LIF", "IF", "CubaLIF", "Threshold")
        reset = None
        if spiking:
            reset = "y = 1" if kind == "Threshold" else "v = v_reset\ny = 1"
            if exact and kind == "LIF":
                reset = CROSSING_RESET
        grp = b2.NeuronGroup(
            B * p.size,
            "\n".join(line for line in lines if line),
            threshold="v > v_th" if spiking else None,
            reset=reset,
            clock=clock,
            name=f"pop{base}*",
            **({"method": "exact"} if exact else {}),
        )
        tile = lambda a: np.tile(np.asarray(a, dtype=np.float64).reshape(-1), B)  # noqa: E731
        grp.bias = tile(p.bias)
        for name in names:
            setattr(grp, name, tile(c[name]))
        for var, value in _initial(kind, c, p.size).items():
            setattr(grp, var, tile(value))
        if exact:
            grp.tau_s = tile(c["tau"]) * b2.second
            if kind in ("CubaLIF", "CubaLI"):
                grp.tau_syn_s = tile(c["tau_syn"]) * b2.second
        sum_code = _sum_code(n_edges)
        if exact:
            # inputs of this step into I_in, then Brian2's exact state updater, then the output
            grp.run_regularly(
                sum_code + "\nI_in = q_in" + ("\ny = 0" if spiking else ""), when="groups", order=base + 1
            )
            grp.state_updater.when, grp.state_updater.order = "groups", base + 2
            if not spiking:
                grp.run_regularly("y = v", when="groups", order=base + 3)
        else:
            code = ("y = 0\n" if spiking else "") + sum_code + "\n" + EULER_UPDATE[kind]
            grp.run_regularly(code, when="groups", order=base + 1)
            grp.state_updater.when, grp.state_updater.order = "groups", base  # empty: no equations
        if spiking:
            grp.thresholder["spike"].when, grp.thresholder["spike"].order = "groups", base + 4
            grp.resetter["spike"].when, grp.resetter["spike"].order = "groups", base + 5
        return grp

    def _synapses(self, b2, src_grp, dst_grp, e: _Edge, k: int, B: int, base: int):
        """One composed chain as Synapses (within each sample) summing w * y_pre (y_prev_pre on a back edge)
        into ``s{k}`` of the target, just before the target's update."""
        var = "y_prev" if e.previous else "y"
        syn = b2.Synapses(
            src_grp,
            dst_grp,
            f"w : 1 (constant)\ns{k}_post = w * {var}_pre : 1 (summed)",
            clock=dst_grp.clock,
            name=f"syn{base}_{k}*",
        )
        n_dst, n_src = e.weight.shape
        jd, js = np.nonzero(e.weight)
        offs = np.arange(B)[:, None]
        syn.connect(i=(offs * n_src + js[None, :]).reshape(-1), j=(offs * n_dst + jd[None, :]).reshape(-1))
        syn.w = np.tile(e.weight[jd, js], B)
        upd = syn.summed_updaters[f"s{k}_post"]
        upd.when, upd.order = "groups", base
        return syn
