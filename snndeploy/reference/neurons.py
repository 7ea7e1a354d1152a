"""Neuron types: for each, the record read from NIR and the reference step. The living definition.

Discrete-time semantics (dt in seconds, one step per dt; see docs/semantics.md):

- ``LIF``: ``v <- v + dt/tau * ((v_leak - v) + r*I)``; spike ``z = v > v_threshold``;
  then ``v <- v_reset`` where ``z``. Initial ``v = v_leak`` (Norse's convention).
- ``IF``:  ``v <- v + r*I`` (no dt: one step integrates one input); spike and reset
  as LIF. Initial ``v = v_reset`` (Norse's convention).
- ``LI``:  ``v <- v + dt/tau * ((v_leak - v) + r*I)``; output ``v``; no spike.
  Initial ``v = v_leak``.
- ``CubaLIF``: with ``a = dt/tau_mem``, ``b = dt/tau_syn`` and in this order
  (Norse's ``lif_feed_forward_step``: the new current reaches v in the same step)::

      I <- I + b * (w_in*S - I)
      v <- v + a * ((v_leak - v) + r*I)
      z  = v > v_threshold ;  v <- v_reset where z

  Initial ``I = 0``, ``v = v_leak``. That is NIR's ``tau_syn dI/dt = -I + w_in*S`` by forward
  Euler (Norse's NIR import and snnTorch's export with ``w_in = tau_syn/dt`` agree on that
  input scaling).
- ``CubaLI``: the same without threshold; output ``v``.
- ``I`` (NIR's Integrator, ``dv/dt = R I``): ``v <- v + r*I`` (no dt, as IF); output ``v``;
  no spike. Initial ``v = 0``.
- ``Threshold``: ``z = I > threshold`` (strict, as every spike here); stateless, its "v" is
  the input current I.

Each step is ``step(i, v, p, dt) -> (out, v_new)`` on torch tensors, with ``i`` the input
current (already summed over incoming edges), ``v`` the state before the step (``None`` = the
initial state) and ``p`` the tensors of :func:`neuron_tensors`. They call Norse's own
functional steps, so the ``norse`` backend runs Norse's arithmetic:
LIF ``lif_box_feed_forward_step``, IF ``iaf_feed_forward_step``, LI
``li_box_feed_forward_step`` (each on ``r*I``), CubaLIF ``lif_feed_forward_step`` and CubaLI
``li_feed_forward_step`` (on ``r*b*w_in*S``, the current state holding ``r*I``); Integrator and
Threshold are plain torch (Norse has no step for them). For the Cuba kinds the state is
Norse's (v, i) named tuple; :func:`voltage` reads v.

Adding a neuron type: its reader and step here, one entry in :data:`NEURONS`; its lowering in
:mod:`snndeploy.lower.neurons`; its exporter in :mod:`snndeploy.frontends.norse`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np

from .records import NeuronParams, positive, read_field, shape_of

# --------------------------------------------------------------------------- records


def lif_params(name: str, node) -> NeuronParams:
    shape = shape_of(name, node)
    return NeuronParams(
        name,
        "LIF",
        shape,
        r=read_field(name, node, "r", shape),
        v_leak=read_field(name, node, "v_leak", shape),
        tau=positive(name, "LIF", "tau", read_field(name, node, "tau", shape)),
        v_threshold=read_field(name, node, "v_threshold", shape),
        v_reset=read_field(name, node, "v_reset", shape),
    )


def if_params(name: str, node) -> NeuronParams:
    shape = shape_of(name, node)
    return NeuronParams(
        name,
        "IF",
        shape,
        r=read_field(name, node, "r", shape),
        v_leak=np.zeros(shape),
        tau=None,
        v_threshold=read_field(name, node, "v_threshold", shape),
        v_reset=read_field(name, node, "v_reset", shape),
    )


def li_params(name: str, node) -> NeuronParams:
    shape = shape_of(name, node)
    return NeuronParams(
        name,
        "LI",
        shape,
        r=read_field(name, node, "r", shape),
        v_leak=read_field(name, node, "v_leak", shape),
        tau=positive(name, "LI", "tau", read_field(name, node, "tau", shape)),
        v_threshold=None,
        v_reset=None,
    )


def cuba_lif_params(name: str, node) -> NeuronParams:
    shape = shape_of(name, node)
    return NeuronParams(
        name,
        "CubaLIF",
        shape,
        r=read_field(name, node, "r", shape),
        v_leak=read_field(name, node, "v_leak", shape),
        tau=positive(name, "CubaLIF", "tau_mem", read_field(name, node, "tau_mem", shape)),
        v_threshold=read_field(name, node, "v_threshold", shape),
        v_reset=read_field(name, node, "v_reset", shape),
        tau_syn=positive(name, "CubaLIF", "tau_syn", read_field(name, node, "tau_syn", shape)),
        w_in=read_field(name, node, "w_in", shape),
    )


def cuba_li_params(name: str, node) -> NeuronParams:
    shape = shape_of(name, node)
    return NeuronParams(
        name,
        "CubaLI",
        shape,
        r=read_field(name, node, "r", shape),
        v_leak=read_field(name, node, "v_leak", shape),
        tau=positive(name, "CubaLI", "tau_mem", read_field(name, node, "tau_mem", shape)),
        v_threshold=None,
        v_reset=None,
        tau_syn=positive(name, "CubaLI", "tau_syn", read_field(name, node, "tau_syn", shape)),
        w_in=read_field(name, node, "w_in", shape),
    )


def integrator_params(name: str, node) -> NeuronParams:
    """NIR ``I``: ``v <- v + r*I`` per step (no dt, as IF), output v, initial v = 0."""
    shape = shape_of(name, node)
    return NeuronParams(
        name,
        "I",
        shape,
        r=read_field(name, node, "r", shape),
        v_leak=np.zeros(shape),
        tau=None,
        v_threshold=None,
        v_reset=None,
    )


def threshold_params(name: str, node) -> NeuronParams:
    """NIR ``Threshold``: ``z = I > threshold``, no state (r = 1, nothing to reset)."""
    shape = shape_of(name, node)
    return NeuronParams(
        name,
        "Threshold",
        shape,
        r=np.ones(shape),
        v_leak=np.zeros(shape),
        tau=None,
        v_threshold=read_field(name, node, "threshold", shape),
        v_reset=np.zeros(shape),
    )


# --------------------------------------------------------------------------- reference steps


def lif_step(i, v, p, dt):
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters, lif_box_feed_forward_step

    if v is None:
        v = p["v_leak"].expand_as(i).clone()
    params = LIFBoxParameters(tau_mem_inv=p["tau_inv"], v_leak=p["v_leak"], v_th=p["v_threshold"], v_reset=p["v_reset"])
    z, state = lif_box_feed_forward_step(p["r"] * i, LIFBoxFeedForwardState(v=v), params, dt)
    return z, state.v


def if_step(i, v, p, dt):
    from norse.torch.functional.iaf import IAFFeedForwardState, IAFParameters, iaf_feed_forward_step

    if v is None:
        v = p["v_reset"].expand_as(i).clone()
    params = IAFParameters(v_th=p["v_threshold"], v_reset=p["v_reset"])
    z, state = iaf_feed_forward_step(p["r"] * i, IAFFeedForwardState(v=v), params, dt)
    return z, state.v


def li_step(i, v, p, dt):
    from norse.torch.functional.leaky_integrator_box import LIBoxParameters, LIBoxState, li_box_feed_forward_step

    if v is None:
        v = p["v_leak"].expand_as(i).clone()
    params = LIBoxParameters(tau_mem_inv=p["tau_inv"], v_leak=p["v_leak"])
    out, state = li_box_feed_forward_step(p["r"] * i, LIBoxState(v=v), params, dt)
    return out, state.v


def cuba_lif_step(s, state, p, dt):
    from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters, lif_feed_forward_step

    if state is None:
        state = LIFFeedForwardState(v=p["v_leak"].expand_as(s).clone(), i=s.new_zeros(s.shape))
    params = LIFParameters(
        tau_syn_inv=p["tau_syn_inv"],
        tau_mem_inv=p["tau_inv"],
        v_leak=p["v_leak"],
        v_th=p["v_threshold"],
        v_reset=p["v_reset"],
    )
    return lif_feed_forward_step(p["in_gain"] * s, state, params, dt)


def cuba_li_step(s, state, p, dt):
    from norse.torch.functional.leaky_integrator import LIParameters, LIState, li_feed_forward_step

    if state is None:
        state = LIState(v=p["v_leak"].expand_as(s).clone(), i=s.new_zeros(s.shape))
    params = LIParameters(tau_syn_inv=p["tau_syn_inv"], tau_mem_inv=p["tau_inv"], v_leak=p["v_leak"])
    return li_feed_forward_step(p["in_gain"] * s, state, params, dt)


def integrator_step(i, v, p, dt):
    v = i.new_zeros(i.shape) if v is None else v
    v = v + p["r"] * i  # v <- v + r*I: one step integrates one input, no dt (as IF)
    return v, v


def threshold_step(i, v, p, dt):
    z = (i > p["v_threshold"]).to(i.dtype)  # z = heaviside(I - threshold), strict as every spike here
    return z, i  # no memory; the input current is what a probe of "v" sees


def voltage(state):
    """The membrane potential of a step function's state (a tensor or Norse's (v, i))."""
    return state.v if hasattr(state, "v") else state


def neuron_tensors(params, dtype, device, dt: Optional[float] = None) -> Dict[str, object]:
    """The tensors a step function needs, from a NeuronParams record (Cuba kinds need dt)."""
    import torch

    as_t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    out = {"r": as_t(params.r), "v_leak": as_t(params.v_leak)}
    if params.tau is not None:
        out["tau_inv"] = as_t(1.0 / params.tau)
    if params.v_threshold is not None:
        out["v_threshold"] = as_t(params.v_threshold)
        out["v_reset"] = as_t(params.v_reset)
    if params.tau_syn is not None:
        out["tau_syn_inv"] = as_t(1.0 / params.tau_syn)
        if dt is None:
            raise ValueError(f"node '{params.name}' ({params.kind}) needs dt for its input gain")
        out["in_gain"] = as_t(params.r * params.w_in * (dt / params.tau_syn))  # r*b*w_in: state i = r*I
    return out


@dataclass(frozen=True)
class NeuronKind:
    """A neuron type: how its record is read from NIR and how it steps."""

    read: Callable[[str, object], NeuronParams]
    step: Callable


#: NIR type name (= record kind) -> reader and reference step
NEURONS: Dict[str, NeuronKind] = {
    "LIF": NeuronKind(lif_params, lif_step),
    "IF": NeuronKind(if_params, if_step),
    "LI": NeuronKind(li_params, li_step),
    "CubaLIF": NeuronKind(cuba_lif_params, cuba_lif_step),
    "CubaLI": NeuronKind(cuba_li_params, cuba_li_step),
    "I": NeuronKind(integrator_params, integrator_step),
    "Threshold": NeuronKind(threshold_params, threshold_step),
}
