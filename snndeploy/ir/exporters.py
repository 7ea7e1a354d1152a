"""Exporter profiles: the conventions a framework's NIR exporter bakes in that the file does not carry.

A NIR file says ``tau`` and ``r`` but not the time step its writer assumed, nor whether its IF and
Integrator mean NIR's ``dv/dt = R I`` (forward Euler: ``v <- v + dt*r*I``) or one input per step
(``v <- v + r*I``). Each :class:`Exporter` here is that knowledge, read in the exporter's released
source (docs/exporters.md has the places). The reference semantics (:mod:`snndeploy.reference`)
integrate IF and Integrator per step; :func:`apply_profile` turns a graph of another convention
into that form (``r <- dt*r``), a pure function that names every change it made.

Rules: ``--exporter`` names the profile; else the graph's metadata (our exporter writes
``snndeploy_exporter``); else ``nir``: the NIR spec, with a warning on every node where the spec
and a known exporter would read the graph differently. ``--dt`` overrides the profile's dt (with
a warning when the profile's writer baked another dt into the parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import GraphError, InputError

#: graph metadata key naming the framework that wrote the graph (our exporter writes "norse")
META_EXPORTER = "snndeploy_exporter"
#: graph metadata key of the time step in seconds (our exporter writes it)
META_DT = "dt"

#: IF / Integrator input convention
PER_STEP = "per step"  # v <- v + r*I
PER_DT = "per dt"  # v <- v + dt*r*I  (NIR spec: dv/dt = R I, forward Euler)

#: NIR node types whose input term has no time constant, so the convention matters
INTEGRATING_TYPES = ("IF", "I")


@dataclass(frozen=True)
class Exporter:
    """What one framework's NIR exporter assumes."""

    name: str
    dt: Optional[float]  # seconds per step baked into tau/r; None: not fixed, must be given
    integrate: str  # PER_STEP or PER_DT: how IF/Integrator's r is meant
    time_unit: str
    loses: Tuple[str, ...] = ()  # what the framework simulates that its export cannot carry
    source: str = ""  # where this was read (docs/exporters.md has the details)
    fixes: Tuple[str, ...] = ()  # names in NODE_FIXES: known errors of this exporter, undone on load

    def describe(self) -> str:
        dt = "not fixed (give --dt)" if self.dt is None else f"{self.dt:g} s"
        return f"{self.name}: dt {dt}, IF/Integrator {self.integrate}, time unit {self.time_unit}"


#: every profile, by the name ``--exporter`` takes (facts and source lines: docs/exporters.md)
EXPORTERS: Dict[str, Exporter] = {
    e.name: e
    for e in (
        Exporter(
            "nir",
            None,
            PER_DT,
            "seconds",
            source="NIR spec (nir 1.0.8 nir/ir/neuron.py docstrings: IF and I are dv/dt = R I)",
        ),
        Exporter(
            "snndeploy",
            None,
            PER_STEP,
            "seconds",
            source="snndeploy.frontends.norse (Norse semantics: IAF v += I per step; dt written to the metadata)",
        ),
        Exporter(
            "norse",
            1e-3,
            PER_STEP,
            "seconds",
            loses=("Input/Output carry a leading batch axis of 1 (dropped on load)",),
            source="norse/torch/utils/export_nir.py:15-51 (tau = dt/tau_mem_inv, no w_in), functional/iaf.py:90-97",
            fixes=("tau_over_dt", "w_in_norse"),
        ),
        Exporter(
            "snntorch",
            1e-4,
            PER_STEP,
            "seconds",
            loses=(
                "Leaky/Synaptic default reset_mechanism='subtract' with reset_delay=True (v -= threshold one step "
                "later): NIR resets to v_reset; the export always writes v_reset = 0",
            ),
            source="snntorch/export_nir.py:68-182 (dt = 1e-4: tau = dt/(1-beta), r = tau/dt, w_in = tau_syn/dt)",
        ),
        Exporter(
            "sinabs",
            1.0,
            PER_STEP,
            "steps (dt = 1)",
            loses=(
                "MultiSpike (the default spike_fn) emits trunc(v/threshold) spikes per step: NIR emits at most one",
                "MembraneSubtract (the default reset): NIR resets to v_reset",
                "LIF tau_syn is not written",
            ),
            source="sinabs/nir.py:157-177 (IF r = 1; tau in steps), layers/iaf.py:61-78 (per step), "
            "layers/lif.py (alpha = exp(-1/tau), input scaled by 1 - alpha)",
            fixes=("exp_decay",),
        ),
        Exporter(
            "rockpool",
            1e-3,
            PER_STEP,
            "seconds",
            loses=(
                "the module's dt is not written: this profile assumes Rockpool's default 1e-3 s; pass --dt for another",
                "r = tau*exp(-dt/tau)/dt: Rockpool decays by exp(-dt/tau), NIR's Euler step by 1 - dt/tau",
                "LIFTorch bias and w_rec are not exported; multi-spike floor(v/threshold) and subtract reset are lost",
                "Input is [1, N] (Rockpool: a time axis of 1), Output [1, 1, M]: leading 1s dropped on load",
            ),
            source="rockpool/nn/modules/torch/nir.py:249-321, lif_torch.py:34-46,172,709",
        ),
        Exporter(
            "spikingjelly",
            1e-4,
            PER_DT,
            "seconds",
            loses=(
                "spikes at v >= threshold (NIR: v > threshold): equal only when v never lands exactly on it",
                "soft reset is refused by its exporter",
            ),
            source="spikingjelly/activation_based/nir_exchange/to_nir.py:180-247 (dt = 1e-4; IF r = 1/dt)",
        ),
        Exporter(
            "spyx",
            1.0,
            PER_STEP,
            "steps (dt = 1)",
            loses=(
                "LIF and CuBaLIF are written with r = beta and no w_in, which do not match Spyx's V = beta V + x",
                "Spyx spikes from the voltage before the update: each layer one step behind NIR's reading",
                "subtract reset; the recurrent subgraph routes the external input through w_rec",
            ),
            source="spyx/nir.py:442-605 (to_nir dt = 1), nn.py:215-216 (read, not run: JAX)",
        ),
    )
}


def _tau_over_dt(node, dt: float):
    """Norse 1.1.0's ``to_nir`` writes ``dt / tau_mem_inv`` = dt * tau: divide by dt again."""
    names = [f for f in ("tau", "tau_mem", "tau_syn") if hasattr(node, f)]
    return {f: np.asarray(getattr(node, f), dtype=np.float64) / dt for f in names}, (
        f"{', '.join(names)} divided by dt = {dt:g} s (Norse 1.1.0 to_nir writes dt*tau, norse/norse#411)"
    )


def _w_in_norse(node, dt: float):
    """Norse's LIFCell adds its input to the current unscaled (``i += x``); NIR's Euler step adds
    ``dt/tau_syn * w_in * x``: ``w_in = tau_syn/dt`` (after the tau fix)."""
    tau_syn = np.asarray(node.tau_syn, dtype=np.float64) / dt
    return {"w_in": np.asarray(node.w_in, dtype=np.float64) * tau_syn / dt}, (
        "w_in multiplied by tau_syn/dt (Norse's current jumps by its input: i += x)"
    )


def _exp_decay(node, dt: float):
    """An exporter whose simulator decays by ``exp(-dt/tau)`` and integrates ``(1 - exp(-dt/tau)) * I``
    (Sinabs' LIF and ExpLeak with norm_input): NIR's Euler step with ``tau' = dt / (1 - exp(-dt/tau))``
    is that same update, exactly."""
    names = [f for f in ("tau", "tau_mem") if hasattr(node, f)]
    return {f: dt / -np.expm1(-dt / np.asarray(getattr(node, f), dtype=np.float64)) for f in names}, (
        f"{', '.join(names)} set to dt / (1 - exp(-dt/tau)): the exporter's simulator decays by exp(-dt/tau)"
    )


#: a known error of an exporter, undone on load: node type names -> (node, dt) -> ({field: value}, note)
NODE_FIXES: Dict[str, Tuple[Tuple[str, ...], object]] = {
    "tau_over_dt": (("LIF", "LI", "CubaLIF", "CubaLI"), _tau_over_dt),
    "w_in_norse": (("CubaLIF", "CubaLI"), _w_in_norse),
    "exp_decay": (("LIF", "LI"), _exp_decay),
}


def exporter_named(name: str) -> Exporter:
    try:
        return EXPORTERS[name]
    except KeyError:
        raise InputError(f"unknown exporter '{name}'; known: {', '.join(EXPORTERS)}") from None


def _meta_text(meta: dict, key: str) -> Optional[str]:
    raw = meta.get(key)
    if raw is None:
        return None
    if isinstance(raw, np.ndarray) and raw.size == 1:
        raw = raw.reshape(-1)[0]
    return raw.decode("utf8") if isinstance(raw, bytes) else str(raw)


def _meta_dt(meta: dict, where: str) -> Optional[float]:
    stored = meta.get(META_DT)
    if stored is None:
        return None
    arr = np.asarray(stored)
    if arr.size != 1 or arr.dtype.kind not in "iuf":
        raise GraphError(f"{where}: metadata '{META_DT}' is {stored!r}; expected one number of seconds")
    value = float(arr.reshape(-1)[0])
    if not (math.isfinite(value) and value > 0):
        raise GraphError(f"{where}: metadata dt must be a positive number of seconds, got {value}")
    return value


#: where the profile came from when the graph names none and no --exporter is given
DEFAULT_FROM = "default (no provenance in the graph, no --exporter)"


@dataclass(frozen=True)
class Conventions:
    """The profile and time step a graph runs with, and why: what the report says about them."""

    exporter: Exporter
    dt: float
    exporter_from: str  # "--exporter", "graph metadata" or "default (no provenance)"
    dt_from: str  # "--dt", "graph metadata" or "exporter profile"
    notes: Tuple[str, ...] = ()  # changes made to the graph, one sentence each
    warnings: Tuple[str, ...] = ()  # choices the user may need to make

    def as_dict(self) -> dict:
        e = self.exporter
        return {
            "exporter": e.name,
            "exporter_from": self.exporter_from,
            "dt": self.dt,
            "dt_from": self.dt_from,
            "if_integrator": e.integrate,
            "time_unit": e.time_unit,
            "exporter_loses": list(e.loses),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


def resolve(graph, exporter: Optional[str], dt: Optional[float], where: str = "graph") -> Conventions:
    """Which profile and dt a graph runs with: ``exporter``/``dt`` as given, else the metadata,
    else the profile's dt; refuses a missing dt and a contradiction between what is given and
    what the graph says."""
    meta = getattr(graph, "metadata", None) or {}
    stored_exp = _meta_text(meta, META_EXPORTER)
    if exporter is not None:
        prof, exp_from = exporter_named(exporter), "--exporter"
        if stored_exp is not None and stored_exp != exporter:
            raise InputError(f"--exporter {exporter} contradicts the exporter '{stored_exp}' stored in {where}")
    elif stored_exp is not None:
        if stored_exp not in EXPORTERS:
            raise GraphError(f"{where}: metadata '{META_EXPORTER}' is '{stored_exp}'; known: {', '.join(EXPORTERS)}")
        prof, exp_from = EXPORTERS[stored_exp], "graph metadata"
    else:
        prof, exp_from = EXPORTERS["nir"], DEFAULT_FROM
    stored_dt = _meta_dt(meta, where)
    warnings: List[str] = []
    if dt is not None:
        if not (math.isfinite(dt) and dt > 0):
            raise InputError(f"--dt must be a positive number of seconds, got {dt}")
        if stored_dt is not None and not math.isclose(dt, stored_dt, rel_tol=1e-9):
            raise InputError(f"--dt {dt} contradicts the dt {stored_dt} stored in {where}")
        if stored_dt is None and prof.dt is not None and not math.isclose(dt, prof.dt, rel_tol=1e-9):
            warnings.append(
                f"--dt {dt:g} differs from the dt {prof.dt:g} s that {prof.name}'s exporter baked into tau and r: "
                "the graph runs as a different network than the one exported (drop --dt to use the exporter's)"
            )
        value, dt_from = float(dt), "--dt"
    elif stored_dt is not None:
        value, dt_from = stored_dt, "graph metadata"
    elif prof.dt is not None:
        value, dt_from = prof.dt, f"exporter profile '{prof.name}'"
    else:
        raise InputError(
            f"{where} carries no dt in its metadata (key '{META_DT}') and names no exporter; pass the time step "
            f"in seconds with --dt (for example --dt 1e-4), or the framework that wrote it with --exporter "
            f"({', '.join(n for n in EXPORTERS if n != 'nir')}), which supplies the dt it assumed"
        )
    return Conventions(prof, value, exp_from, dt_from, warnings=tuple(warnings))


def _spec_warnings(graph, conv: Conventions) -> List[str]:
    """Where the NIR spec (our default) and a per-step exporter would run this graph differently."""
    if conv.exporter_from != DEFAULT_FROM or math.isclose(conv.dt, 1.0):
        return []
    per_step = ", ".join(n for n, e in EXPORTERS.items() if e.integrate == PER_STEP)
    return [
        f"node '{name}' ({type(node).__name__}): the graph names no exporter, so it follows the NIR spec dv/dt = R I: "
        f"v += dt*r*I = {conv.dt:g}*r*I per step. Exporters that mean one input per step (v += r*I: {per_step}) "
        "would run it differently: pass --exporter NAME if one of them wrote this graph"
        for name, node in graph.nodes.items()
        if type(node).__name__ in INTEGRATING_TYPES
    ]


def apply_profile(graph, conv: Conventions) -> Tuple[object, Conventions]:
    """A graph in the reference's convention (IF and Integrator integrate ``r*I`` per step) and the
    conventions with their notes and warnings; ``graph`` itself is not changed."""
    import nir

    from .ingest import rebuilt

    notes = list(conv.notes)
    warnings = list(conv.warnings) + _spec_warnings(graph, conv)
    nodes = dict(graph.nodes)
    for name, node in graph.nodes.items():
        changes = {}
        for fix in conv.exporter.fixes:  # w_in_norse reads the file's tau_syn: fixes see the original node
            types, fn = NODE_FIXES[fix]
            if type(node).__name__ in types:
                fields, note = fn(node, conv.dt)
                changes.update(fields)
                notes.append(f"node '{name}' ({type(node).__name__}): {note}")
        if changes:
            nodes[name] = rebuilt(node, **changes)
    if conv.exporter.integrate == PER_DT:
        for name, node in list(nodes.items()):
            if type(node).__name__ not in INTEGRATING_TYPES:
                continue
            nodes[name] = rebuilt(node, r=np.asarray(node.r, dtype=np.float64) * conv.dt)
            notes.append(
                f"node '{name}' ({type(node).__name__}): r multiplied by dt = {conv.dt:g} s "
                f"({conv.exporter.name}: dv/dt = R I, one Euler step is v += dt*r*I)"
            )
    if nodes == graph.nodes:
        return graph, replace(conv, notes=tuple(notes), warnings=tuple(warnings))
    out = nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=dict(graph.metadata or {}), type_check=False)
    return out, replace(conv, notes=tuple(notes), warnings=tuple(warnings))


def prepare(graph, exporter: Optional[str] = None, dt: Optional[float] = None, where: str = "graph", notes=()):
    """:func:`resolve` then :func:`apply_profile`: (graph in the reference's conventions, Conventions);
    ``notes``: repairs already made on load, listed first."""
    conv = resolve(graph, exporter, dt, where=where)
    return apply_profile(graph, replace(conv, notes=tuple(notes)))
