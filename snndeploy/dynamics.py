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


#: neuron kind -> step function
STEPS: Dict[str, Step] = {"LIF": lif_step, "IF": if_step, "LI": li_step}


def neuron_tensors(params, dtype, device) -> Dict[str, torch.Tensor]:
    """The tensors a step function needs, from a NeuronParams record."""
    as_t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    out = {"r": as_t(params.r), "v_leak": as_t(params.v_leak)}
    if params.tau is not None:
        out["tau_inv"] = as_t(1.0 / params.tau)
    if params.v_threshold is not None:
        out["v_threshold"] = as_t(params.v_threshold)
        out["v_reset"] = as_t(params.v_reset)
    return out
