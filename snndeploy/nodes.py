"""Canonical parameters of the NIR node types this project runs.

Each supported node type maps to one small pure function that reads the NIR
node, broadcasts its parameters to the node's shape as float64 arrays and
validates them, raising :class:`GraphError` naming node, field, expected and
got. Backends and the exporter use these records instead of poking at NIR
nodes themselves.

Discrete-time semantics (dt in seconds, one step per dt; see docs/semantics.md):

- ``LIF``: ``v <- v + dt/tau * ((v_leak - v) + r*I)``; spike ``z = v > v_threshold``;
  then ``v <- v_reset`` where ``z``. Initial ``v = v_leak`` (Norse's convention).
- ``IF``:  ``v <- v + r*I`` (no dt: one step integrates one input); spike and reset
  as LIF. Initial ``v = v_reset`` (Norse's convention).
- ``LI``:  ``v <- v + dt/tau * ((v_leak - v) + r*I)``; output ``v``; no spike.
  Initial ``v = v_leak``.
- ``Affine``: ``y = W x + b``; ``Linear``: ``y = W x``. Instantaneous: the output
  at step t depends on the input at step t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from .errors import GraphError


@dataclass(frozen=True, eq=False)
class NeuronParams:
    """A neuron population, all arrays of shape ``shape`` (float64)."""

    name: str
    kind: str  # "LIF", "IF" or "LI"
    shape: Tuple[int, ...]
    r: np.ndarray
    v_leak: np.ndarray  # zeros for IF
    tau: Optional[np.ndarray]  # seconds; None for IF
    v_threshold: Optional[np.ndarray]  # None for LI (never spikes)
    v_reset: Optional[np.ndarray]  # None for LI

    @property
    def spiking(self) -> bool:
        return self.v_threshold is not None

    @property
    def v_init(self) -> np.ndarray:
        """Initial membrane potential (Norse's convention)."""
        return self.v_reset if self.kind == "IF" else self.v_leak


@dataclass(frozen=True, eq=False)
class SynapseParams:
    """An Affine or Linear map ``y = weight @ x + bias``; weight is (out, in)."""

    name: str
    kind: str  # "Affine" or "Linear"
    weight: np.ndarray
    bias: np.ndarray

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])


def _shape_of(name: str, node) -> Tuple[int, ...]:
    out = (node.output_type or {}).get("output")
    if out is None:
        raise GraphError(f"node '{name}' ({type(node).__name__}) has no output type")
    return tuple(int(x) for x in np.asarray(out).reshape(-1))


def _field(name: str, node, field: str, shape: Tuple[int, ...]) -> np.ndarray:
    value = getattr(node, field, None)
    if value is None:
        raise GraphError(f"node '{name}' ({type(node).__name__}) has no field '{field}'")
    arr = np.asarray(value, dtype=np.float64)
    try:
        arr = np.broadcast_to(arr, shape).copy()
    except ValueError:
        raise GraphError(
            f"node '{name}' ({type(node).__name__}) field '{field}' has shape {arr.shape}, "
            f"expected {shape} (the node's shape) or a scalar"
        ) from None
    if not np.all(np.isfinite(arr)):
        raise GraphError(f"node '{name}' ({type(node).__name__}) field '{field}' holds NaN or inf")
    return arr


def _positive(name: str, kind: str, field: str, arr: np.ndarray) -> np.ndarray:
    if np.any(arr <= 0):
        bad = float(arr.reshape(-1)[np.argmax(arr.reshape(-1) <= 0)])
        raise GraphError(f"node '{name}' ({kind}) field '{field}' must be > 0 seconds, got {bad}")
    return arr


def lif_params(name: str, node) -> NeuronParams:
    shape = _shape_of(name, node)
    return NeuronParams(
        name, "LIF", shape,
        r=_field(name, node, "r", shape),
        v_leak=_field(name, node, "v_leak", shape),
        tau=_positive(name, "LIF", "tau", _field(name, node, "tau", shape)),
        v_threshold=_field(name, node, "v_threshold", shape),
        v_reset=_field(name, node, "v_reset", shape),
    )


def if_params(name: str, node) -> NeuronParams:
    shape = _shape_of(name, node)
    return NeuronParams(
        name, "IF", shape,
        r=_field(name, node, "r", shape),
        v_leak=np.zeros(shape),
        tau=None,
        v_threshold=_field(name, node, "v_threshold", shape),
        v_reset=_field(name, node, "v_reset", shape),
    )


def li_params(name: str, node) -> NeuronParams:
    shape = _shape_of(name, node)
    return NeuronParams(
        name, "LI", shape,
        r=_field(name, node, "r", shape),
        v_leak=_field(name, node, "v_leak", shape),
        tau=_positive(name, "LI", "tau", _field(name, node, "tau", shape)),
        v_threshold=None,
        v_reset=None,
    )


def _matrix(name: str, node) -> np.ndarray:
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 2:
        raise GraphError(
            f"node '{name}' ({type(node).__name__}) field 'weight' has shape {w.shape}, expected (out, in)"
        )
    if not np.all(np.isfinite(w)):
        raise GraphError(f"node '{name}' ({type(node).__name__}) field 'weight' holds NaN or inf")
    return w


def affine_params(name: str, node) -> SynapseParams:
    w = _matrix(name, node)
    b = np.asarray(node.bias, dtype=np.float64).reshape(-1)
    if b.shape != (w.shape[0],):
        raise GraphError(
            f"node '{name}' (Affine) field 'bias' has shape {b.shape}, expected ({w.shape[0]},) to match weight {w.shape}"
        )
    if not np.all(np.isfinite(b)):
        raise GraphError(f"node '{name}' (Affine) field 'bias' holds NaN or inf")
    return SynapseParams(name, "Affine", w, b)


def linear_params(name: str, node) -> SynapseParams:
    w = _matrix(name, node)
    return SynapseParams(name, "Linear", w, np.zeros(w.shape[0]))


def _registry() -> Dict[type, Callable]:
    import nir

    return {
        nir.LIF: lif_params,
        nir.IF: if_params,
        nir.LI: li_params,
        nir.Affine: affine_params,
        nir.Linear: linear_params,
    }


def params_of(name: str, node):
    """The canonical record of a computing node, or GraphError if its type has none."""
    fn = _registry().get(type(node))
    if fn is None:
        raise GraphError(f"node '{name}' has type {type(node).__name__}, which has no parameter reader")
    return fn(name, node)


def type_name(node) -> str:
    return type(node).__name__
