"""Reference dynamics: one pure step function per neuron kind, on torch tensors.

Each step is ``step(i, v, p, dt) -> (out, v_new)`` with ``i`` the input current
(already summed over incoming edges), ``v`` the membrane potential before the
step (``None`` = initial state) and ``p`` a dict of tensors from
:class:`snndeploy.nodes.NeuronParams`. They call Norse's own functional steps,
so the ``norse`` backend runs Norse's arithmetic:

- LIF: ``norse.torch.functional.lif_box.lif_box_feed_forward_step`` on ``r*I``
  (``v += dt/tau*((v_leak - v) + r*I)``; spike if ``v > v_th``; ``v = v_reset``).
- IF:  ``norse.torch.functional.iaf.iaf_feed_forward_step`` on ``r*I`` (``v += r*I``).
- LI:  ``norse.torch.functional.leaky_integrator_box.li_box_feed_forward_step`` on ``r*I``.
- CubaLIF: ``norse.torch.functional.lif.lif_feed_forward_step`` on ``r*b*w_in*S``
  (``b = dt/tau_syn``), its current state holding ``r*I``: the current jumps first,
  v integrates the new current in the same step, then the current decays::

      I <- I + b*(w_in*S - I) ;  v <- v + a*((v_leak - v) + r*I) ;  spike/reset as LIF

  which is NIR's ``tau_syn dI/dt = -I + w_in*S`` by forward Euler (Norse's NIR import and
  snnTorch's export with ``w_in = tau_syn/dt`` agree on that input scaling).
- CubaLI:  ``norse.torch.functional.leaky_integrator.li_feed_forward_step`` likewise.
- I (Integrator): ``v <- v + r*I`` (no dt, as IF), output v; plain torch (Norse has no step).
- Threshold: ``z = I > threshold``; stateless, its "v" is the input current I.

:func:`delay_step` is the ring buffer of the ``Delay`` node (not a neuron).

For the Cuba kinds the state is Norse's (v, i) named tuple; :func:`voltage` reads v.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch

Step = Callable[[torch.Tensor, Optional[torch.Tensor], Dict[str, torch.Tensor], float], Tuple[torch.Tensor, torch.Tensor]]


def lif_step(i, v, p, dt):
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters, lif_box_feed_forward_step

    if v is None:
        v = p["v_leak"].expand_as(i).clone()
    params = LIFBoxParameters(
        tau_mem_inv=p["tau_inv"], v_leak=p["v_leak"], v_th=p["v_threshold"], v_reset=p["v_reset"]
    )
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
        state = LIFFeedForwardState(v=p["v_leak"].expand_as(s).clone(), i=torch.zeros_like(s))
    params = LIFParameters(tau_syn_inv=p["tau_syn_inv"], tau_mem_inv=p["tau_inv"], v_leak=p["v_leak"],
                           v_th=p["v_threshold"], v_reset=p["v_reset"])
    return lif_feed_forward_step(p["in_gain"] * s, state, params, dt)


def cuba_li_step(s, state, p, dt):
    from norse.torch.functional.leaky_integrator import LIParameters, LIState, li_feed_forward_step

    if state is None:
        state = LIState(v=p["v_leak"].expand_as(s).clone(), i=torch.zeros_like(s))
    params = LIParameters(tau_syn_inv=p["tau_syn_inv"], tau_mem_inv=p["tau_inv"], v_leak=p["v_leak"])
    return li_feed_forward_step(p["in_gain"] * s, state, params, dt)


def integrator_step(i, v, p, dt):
    v = torch.zeros_like(i) if v is None else v
    v = v + p["r"] * i  # v <- v + r*I: one step integrates one input, no dt (as IF)
    return v, v


def threshold_step(i, v, p, dt):
    z = (i > p["v_threshold"]).to(i.dtype)  # z = heaviside(I - threshold), strict as every spike here
    return z, i  # no memory; the input current is what a probe of "v" sees


def delay_step(x, state, steps):
    """``y(t) = x(t - steps)`` per element, zeros before; ``x`` (B, N), ``steps`` int64 (N,).

    ``state = (buf, t)``: ``buf`` (K+1, B, N) holds the last K+1 inputs at slot ``t mod (K+1)``
    (K = max steps), zeros where nothing was written yet; ``None`` = initial state.
    """
    K = int(steps.max()) if steps.numel() else 0
    buf, t = (torch.zeros((K + 1,) + tuple(x.shape), dtype=x.dtype, device=x.device), 0) if state is None else state
    slot = torch.tensor([t % (K + 1)], device=x.device)
    buf = buf.index_copy(0, slot, x[None])  # write x(t); out of place: the old state stays valid
    read = (t - steps) % (K + 1)  # slot of x(t - k); for t < k a slot not written yet (zeros)
    y = buf[read, :, torch.arange(x.shape[1], device=x.device)].T
    return y, (buf, t + 1)


def voltage(state) -> torch.Tensor:
    """The membrane potential of a step function's state (a tensor or Norse's (v, i))."""
    return state.v if hasattr(state, "v") else state


#: neuron kind -> step function
STEPS: Dict[str, Step] = {"LIF": lif_step, "IF": if_step, "LI": li_step,
                          "CubaLIF": cuba_lif_step, "CubaLI": cuba_li_step,
                          "I": integrator_step, "Threshold": threshold_step}


def neuron_tensors(params, dtype, device, dt: Optional[float] = None) -> Dict[str, torch.Tensor]:
    """The tensors a step function needs, from a NeuronParams record (Cuba kinds need dt)."""
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
