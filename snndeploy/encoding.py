"""Seeded spike encoders, identical in every backend.

The encoding (kind and parameters) is stored with the model (graph metadata),
so that ``compare`` encodes exactly as training evaluated.

- ``poisson``: each step, a spike with probability ``clip(max_prob * x, 0, 1)``,
  drawn with ``numpy.random.default_rng(seed)`` over the whole (n, T, *shape) block.
"""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np

from .errors import InputError


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


#: encoder kind -> function(x, steps, **params)
ENCODERS: Dict[str, Callable[..., np.ndarray]] = {"poisson": poisson}


def encode(x: np.ndarray, enc: dict) -> np.ndarray:
    kind = enc.get("kind")
    if kind not in ENCODERS:
        raise InputError(f"unknown encoding kind '{kind}'; available: {', '.join(ENCODERS)}")
    params = {k: v for k, v in enc.items() if k != "kind"}
    return ENCODERS[kind](x, **params)
