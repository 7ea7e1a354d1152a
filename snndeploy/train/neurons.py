"""Neurons over time for training: surrogate spike functions and layer-by-layer loops.

A neuron layer iterates over time on a whole sequence of input currents (the stateless layers
before it ran once for all T steps). Neuron state is kept in float32 even under mixed
precision. Surrogates: Norse's own (``threshold``), or ours where Norse's ignores its slope
(``fast_sigmoid``: Norse 1.1.0's SuperSpike ignores ``alpha``, see README).
"""

from __future__ import annotations

import torch
from torch import nn

#: surrogate names handled by Norse's ``threshold`` function
NORSE_SURROGATES = ("super", "triangle", "tanh", "circ", "heavi_erfc")


def _sigmoid_slope(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Derivative of ``sigmoid(alpha * x)``."""
    s = torch.sigmoid(alpha * x)
    return alpha * s * (1 - s)


def _fast_sigmoid_slope(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """``1 / (alpha*|x| + 1)^2``: SuperSpike / fast sigmoid with slope ``alpha``.

    Norse 1.1.0's ``SuperSpike`` computes ``1 / (|x| + 1)^2`` and ignores its ``alpha``
    (norse/torch/functional/superspike.py), so its "super" surrogate always has slope 1.
    """
    return 1.0 / (alpha * x.abs() + 1.0) ** 2


class HeavisideSurrogate(torch.autograd.Function):
    """``x > 0`` forward; backward multiplies by ``slope(x, alpha)``."""

    @staticmethod
    def forward(ctx, x, alpha: float, slope):
        ctx.save_for_backward(x)
        ctx.alpha, ctx.slope = alpha, slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.slope(x, ctx.alpha), None, None


#: our surrogates (not in Norse 1.1.0, or broken there): name -> slope function
OWN_SURROGATES = {"sigmoid": _sigmoid_slope, "fast_sigmoid": _fast_sigmoid_slope}


def spike_fn(x: torch.Tensor, method: str, alpha: float) -> torch.Tensor:
    """``x > 0`` forward (strict, as Norse's Heaviside and Lava's ``v > vth``); surrogate backward."""
    if method in OWN_SURROGATES:
        return HeavisideSurrogate.apply(x, alpha, OWN_SURROGATES[method])
    from norse.torch.functional.threshold import threshold

    return threshold(x, method, torch.as_tensor(alpha))


def lif_box_over_time(i_seq: torch.Tensor, cell, method: str, alpha: float) -> torch.Tensor:
    """Run a Norse ``LIFBoxCell``'s equations over (T, B, ...) input currents; returns spikes.

    Per step (Norse ``lif_box_feed_forward_step``): ``v <- v + dt*tau_inv*((v_leak - v) + i)``,
    ``z = v > v_th``, ``v <- v_reset`` where ``z``; initial ``v = v_leak``.
    """
    p, dt = cell.p, cell.dt
    if i_seq.dtype in (torch.float16, torch.bfloat16):  # neuron state stays float32 under autocast
        i_seq = i_seq.float()
    v = torch.zeros_like(i_seq[0]) + p.v_leak
    out = []
    for i in i_seq:
        v = v + dt * p.tau_mem_inv * ((p.v_leak - v) + i)
        z = spike_fn(v - p.v_th, method, alpha)
        v = v - z * (v - p.v_reset)
        out.append(z)
    return torch.stack(out)


def li_box_over_time(i_seq: torch.Tensor, cell) -> torch.Tensor:
    """Run a Norse ``LIBoxCell``'s equations over (T, B, ...) input currents; returns the voltages.

    Per step (Norse ``li_box_feed_forward_step``): ``v <- v + dt*tau_inv*((v_leak - v) + i)``; the
    output is ``v`` (no threshold, no reset); initial ``v = v_leak``.
    """
    p, dt = cell.p, cell.dt
    if i_seq.dtype in (torch.float16, torch.bfloat16):
        i_seq = i_seq.float()
    v = torch.zeros_like(i_seq[0]) + p.v_leak
    out = []
    for i in i_seq:
        v = v + dt * p.tau_mem_inv * ((p.v_leak - v) + i)
        out.append(v)
    return torch.stack(out)


class GradedNeuron(nn.Module):
    """A neuron with a decaying inner state, a refractory penalty and a graded output.

    Per step: ``s <- decay * s + I - penalty * [y_prev > 0]``;  ``y = relu(s - threshold)``
    (graded: the amount above threshold, not a binary spike). Initial ``s = 0``, ``y = 0``.
    The ReLU is differentiable almost everywhere, so no surrogate is needed.
    """

    def __init__(self, decay: float = 0.9, threshold: float = 0.5, penalty: float = 1.0):
        super().__init__()
        self.decay, self.threshold, self.penalty = float(decay), float(threshold), float(penalty)

    def nir_refusal(self, name: str) -> str:
        """Why the NIR exporter refuses this module: it has no faithful NIR (and so no Lava) form."""
        return (
            f"module '{name}' (GradedNeuron) cannot be exported to NIR faithfully: its output "
            f"y = relu(s - {self.threshold}) is graded (the amount above threshold), but NIR's spiking neurons "
            "(LIF, IF, CubaLIF) emit binary spikes and nir.Threshold is a binary step; NIR 1.0 has no graded-"
            f"output neuron. Its refractory penalty (s <- s - {self.penalty} after an output) is a reset by "
            "subtraction of a fixed amount, which NIR's reset-to-v_reset cannot express either. (The decaying "
            f"state, decay {self.decay} per step, alone would map to LIF/LI with dt/tau = {1 - self.decay:.3g}.)"
        )

    def over_time(self, i_seq: torch.Tensor) -> torch.Tensor:
        if i_seq.dtype in (torch.float16, torch.bfloat16):
            i_seq = i_seq.float()
        s = torch.zeros_like(i_seq[0])
        y = torch.zeros_like(i_seq[0])
        out = []
        for i in i_seq:
            s = self.decay * s + i - self.penalty * (y > 0).to(s.dtype)
            y = torch.relu(s - self.threshold)
            out.append(y)
        return torch.stack(out)
