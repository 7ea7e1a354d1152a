"""NIR ``Delay``: ``y(t) = x(t - k)`` per element, ``k = delay/dt`` steps; its record and reference step.

``delay`` is in seconds and must be a whole number of steps within ``DELAY_STEP_TOLERANCE``;
``y = 0`` before the first ``k`` steps.
"""

from __future__ import annotations

import numpy as np

from ..errors import GraphError
from .records import DelayParams, read_field, shape_of


def delay_params(name: str, node) -> DelayParams:
    shape = shape_of(name, node)
    delay = read_field(name, node, "delay", shape)
    if np.any(delay < 0):
        raise GraphError(f"node '{name}' (Delay) field 'delay' must be >= 0 seconds, got {float(delay.min())}")
    return DelayParams(name, shape, delay)


def delay_step(x, state, steps):
    """``y(t) = x(t - steps)`` per element, zeros before; ``x`` (B, N), ``steps`` int64 (N,).

    ``state = (buf, t)``: ``buf`` (K+1, B, N) holds the last K+1 inputs at slot ``t mod (K+1)``
    (K = max steps), zeros where nothing was written yet; ``None`` = initial state.
    """
    import torch

    K = int(steps.max()) if steps.numel() else 0
    buf, t = (torch.zeros((K + 1,) + tuple(x.shape), dtype=x.dtype, device=x.device), 0) if state is None else state
    slot = torch.tensor([t % (K + 1)], device=x.device)
    buf = buf.index_copy(0, slot, x[None])  # write x(t); out of place: the old state stays valid
    read = (t - steps) % (K + 1)  # slot of x(t - k); for t < k a slot not written yet (zeros)
    y = buf[read, :, torch.arange(x.shape[1], device=x.device)].T
    return y, (buf, t + 1)
