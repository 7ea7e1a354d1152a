"""Seeded spike encoders, identical in every backend.

The encoding (kind and parameters) is stored with the model (graph metadata
``snndeploy_config["encoding"]``), so that ``compare`` encodes exactly as
training evaluated: call :func:`encode` with that dict.

Every encoder maps intensities ``x`` of shape (n, *shape) to a float32 block of
shape (n, T, *shape), T = ``steps``; ``x[i, ...]`` at step ``t`` is written
``x_i`` and the output ``s_i[t]``.

- ``poisson`` (rate code): ``s_i[t] = 1 if u_i[t] < clip(max_prob * x_i, 0, 1) else 0``,
  ``u ~ U[0, 1)`` drawn with ``numpy.random.default_rng(seed).random((n, T, *shape))``.
  E[sum_t s_i[t]] = T * clip(max_prob * x_i, 0, 1).
- ``latency`` (time to first spike, one spike at most): for ``x_i > threshold``,
  ``s_i[t] = 1`` exactly at ``t_i = round((1 - x_i) * (T - 1))`` and 0 elsewhere; no spike
  for ``x_i <= threshold``. ``round`` is round-half-to-even (``numpy.rint``, same as Python's
  ``round``), computed in float64 from the float32 value; x = 1 spikes at t = 0, x -> 0+ at
  t = T - 1. Requires x in [0, 1]. Deterministic (``seed`` is accepted and ignored).
- ``direct`` (constant current): ``s_i[t] = scale * x_i`` for every t; graded, not spikes.
  Deterministic (``seed`` is accepted and ignored).
"""

from __future__ import annotations

import inspect
from typing import Callable, Dict

import numpy as np

from ..errors import InputError


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise InputError(f"encoding steps must be a positive integer, got {steps!r}")
    if steps <= 0:
        raise InputError(f"encoding steps must be positive, got {steps}")
    return int(steps)


def _as_batch(x, kind: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 1:
        raise InputError(f"{kind} encoding needs a batch of shape (n, *shape), got a scalar")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"{kind} encoding needs real numbers, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{kind} encoding input holds NaN or infinity")
    return x


def poisson(x: np.ndarray, steps: int, max_prob: float = 1.0, seed: int = 0, **_) -> np.ndarray:
    """Bernoulli-per-step rate code: (n, *shape) in [0, 1] -> (n, steps, *shape) in {0, 1} (float32)."""
    if steps <= 0:
        raise InputError(f"encoding steps must be positive, got {steps}")
    if not 0 < max_prob <= 1:
        raise InputError(f"poisson max_prob must be in (0, 1], got {max_prob}")
    p = np.clip(np.asarray(x, dtype=np.float64) * max_prob, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    draws = rng.random((p.shape[0], steps) + p.shape[1:])
    return (draws < p[:, None]).astype(np.float32)


def latency_times(x: np.ndarray, steps: int, threshold: float = 0.0) -> np.ndarray:
    """Spike step per input, int64 of x's shape: ``round((1 - x) * (steps - 1))``, -1 for no spike."""
    steps = _check_steps(steps)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.floating, np.integer))
        or not 0.0 <= threshold < 1.0
    ):
        raise InputError(f"latency threshold must be a number in [0, 1), got {threshold!r}")
    x = _as_batch(x, "latency").astype(np.float64)
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise InputError(f"latency encoding needs x in [0, 1], got values in [{x.min()}, {x.max()}]")
    t = np.rint((1.0 - x) * (steps - 1)).astype(np.int64)
    return np.where(x > threshold, t, -1)


def latency(x: np.ndarray, steps: int, threshold: float = 0.0, seed: int = 0) -> np.ndarray:
    """Time-to-first-spike code: (n, *shape) in [0, 1] -> (n, steps, *shape) in {0, 1}, at most one spike each."""
    t = latency_times(x, steps, threshold)
    steps = int(steps)
    grid = np.arange(steps).reshape((1, steps) + (1,) * (t.ndim - 1))
    return (grid == t[:, None]).astype(np.float32)


def direct(x: np.ndarray, steps: int, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """Constant-current input: (n, *shape) -> (n, steps, *shape) float32, ``scale * x`` at every step."""
    steps = _check_steps(steps)
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float, np.floating, np.integer))
        or not np.isfinite(scale)
        or scale <= 0
    ):
        raise InputError(f"direct scale must be a positive finite number, got {scale!r}")
    x = _as_batch(x, "direct").astype(np.float32) * np.float32(scale)
    return np.ascontiguousarray(np.broadcast_to(x[:, None], (x.shape[0], steps) + x.shape[1:]))


#: encoder kind -> function(x, steps, **params)
def noisy_repeat(x: np.ndarray, steps: int, keep: float = 0.8, seed: int = 0) -> np.ndarray:
    """The input repeated every step under a random binary noise mask: ``x * m_t``, ``m_t ~ Bernoulli(keep)``.

    (n, *shape) -> (n, steps, *shape) float32; graded values.
    """
    steps = _check_steps(steps)
    if not 0 < keep <= 1:
        raise InputError(f"noisy_repeat keep must be in (0, 1], got {keep}")
    x = _as_batch(x, "noisy_repeat")
    rng = np.random.default_rng(seed)
    mask = rng.random((x.shape[0], steps) + x.shape[1:]) < keep
    return (x[:, None] * mask).astype(np.float32)


ENCODERS: Dict[str, Callable[..., np.ndarray]] = {
    "poisson": poisson,
    "latency": latency,
    "direct": direct,
    "noisy_repeat": noisy_repeat,
}


def encoder_params(kind: str) -> tuple:
    """The parameter names an encoder kind accepts (besides ``x``)."""
    sig = inspect.signature(ENCODERS[kind])
    return tuple(n for n, p in sig.parameters.items() if n != "x" and p.kind is not p.VAR_KEYWORD)


def encode(x: np.ndarray, enc: dict) -> np.ndarray:
    """Encode ``x`` (n, *shape) as the stored encoding dict says: ``{"kind": ..., "steps": ..., params}``."""
    kind = enc.get("kind")
    if kind not in ENCODERS:
        raise InputError(f"unknown encoding kind '{kind}'; available: {', '.join(ENCODERS)}")
    params = {k: v for k, v in enc.items() if k != "kind"}
    if "steps" not in params:
        raise InputError(f"{kind} encoding lacks 'steps'")
    sig = inspect.signature(ENCODERS[kind])
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        unknown = sorted(set(params) - set(encoder_params(kind)))
        if unknown:
            raise InputError(
                f"{kind} encoding does not take {', '.join(unknown)}; parameters: {', '.join(encoder_params(kind))}"
            )
    return ENCODERS[kind](x, **params)
