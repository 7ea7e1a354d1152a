"""Records of the node types: their parameters as read from NIR, broadcast and checked.

Every record is a small frozen dataclass of float64 numpy arrays, compared by identity
(``eq=False``: arrays have no truth value). Readers live with each family's semantics
(:mod:`.neurons`, :mod:`.maps`, :mod:`.delay`); the helpers here read one field and raise
:class:`~snndeploy.errors.GraphError` naming node, type, field, expected and got.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from ..errors import GraphError


@dataclass(frozen=True, eq=False)
class NeuronParams:
    """A neuron population, all arrays of shape ``shape`` (float64)."""

    name: str
    kind: str  # "LIF", "IF", "LI", "CubaLIF", "CubaLI", "I" (Integrator) or "Threshold"
    shape: Tuple[int, ...]
    r: np.ndarray
    v_leak: np.ndarray  # zeros for IF, I and Threshold
    tau: Optional[np.ndarray]  # seconds; None for IF
    v_threshold: Optional[np.ndarray]  # None for LI, CubaLI, I (never spike)
    v_reset: Optional[np.ndarray]  # None for those; zeros for Threshold (stateless)
    tau_syn: Optional[np.ndarray] = None  # seconds; Cuba kinds only
    w_in: Optional[np.ndarray] = None  # input current weight; Cuba kinds only

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

    @property
    def in_shape(self) -> Tuple[int, ...]:
        return (self.in_features,)

    @property
    def out_shape(self) -> Tuple[int, ...]:
        return (self.out_features,)


@dataclass(frozen=True, eq=False)
class MapParams:
    """An instantaneous affine map on one sample: Scale, Conv2d, SumPool2d, AvgPool2d, Flatten.

    ``attrs`` holds the type's own fields (weight, bias, stride, ...) as read and checked
    here; :mod:`snndeploy.reference.maps` has the forward function of each ``kind``.
    """

    name: str
    kind: str
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    attrs: Dict[str, object]


#: |delay/dt - round(delay/dt)| above this is refused: a Delay must be a whole number of steps
DELAY_STEP_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class DelayParams:
    """NIR ``Delay``: ``y(t) = x(t - delay)`` per element; ``delay`` in seconds, shape ``shape``."""

    name: str
    shape: Tuple[int, ...]
    delay: np.ndarray

    kind = "Delay"

    def steps(self, dt: float) -> np.ndarray:
        """The delay per element in steps of ``dt`` (int64), or GraphError if not a whole number."""
        k = self.delay / dt
        off = np.abs(k - np.round(k))
        if np.any(off > DELAY_STEP_TOLERANCE):
            i = int(np.argmax(off))
            raise GraphError(
                f"node '{self.name}' (Delay) field 'delay' is {self.delay.reshape(-1)[i]} s at element {i}, which is "
                f"{k.reshape(-1)[i]} steps of dt = {dt} s; a delay must be a whole number of steps "
                f"(within {DELAY_STEP_TOLERANCE})"
            )
        return np.round(k).astype(np.int64)


def shape_of(name: str, node) -> Tuple[int, ...]:
    out = (node.output_type or {}).get("output")
    if out is None:
        raise GraphError(f"node '{name}' ({type(node).__name__}) has no output type")
    return tuple(int(x) for x in np.asarray(out).reshape(-1))


def real_array(name: str, node, field: str, value) -> np.ndarray:
    """``value`` as float64, refusing what is not real numbers (strings, bool, complex, objects) by name:
    a silent coercion (True -> 1.0, a complex part dropped) would run a different network."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise GraphError(
            f"node '{name}' ({type(node).__name__}) field '{field}' holds values of type {arr.dtype}; "
            "expected real numbers"
        )
    return arr.astype(np.float64)


def read_field(name: str, node, field: str, shape: Tuple[int, ...]) -> np.ndarray:
    value = getattr(node, field, None)
    if value is None:
        raise GraphError(f"node '{name}' ({type(node).__name__}) has no field '{field}'")
    arr = real_array(name, node, field, value)
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


def positive(name: str, kind: str, field: str, arr: np.ndarray) -> np.ndarray:
    if np.any(arr <= 0):
        bad = float(arr.reshape(-1)[np.argmax(arr.reshape(-1) <= 0)])
        raise GraphError(f"node '{name}' ({kind}) field '{field}' must be > 0 seconds, got {bad}")
    return arr


def read_matrix(name: str, node) -> np.ndarray:
    w = real_array(name, node, "weight", node.weight)
    if w.ndim != 2:
        raise GraphError(
            f"node '{name}' ({type(node).__name__}) field 'weight' has shape {w.shape}, expected (out, in)"
        )
    if not np.all(np.isfinite(w)):
        raise GraphError(f"node '{name}' ({type(node).__name__}) field 'weight' holds NaN or inf")
    return w


def type_shape(name: str, node, port: str) -> Optional[Tuple[int, ...]]:
    types = node.input_type if port == "input" else node.output_type
    t = (types or {}).get(port)
    if t is None:
        return None
    return tuple(int(x) for x in np.asarray(t).reshape(-1))


def io_shapes(name: str, node) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    i, o = type_shape(name, node, "input"), type_shape(name, node, "output")
    if i is None or o is None:
        raise GraphError(
            f"node '{name}' ({type(node).__name__}) has no input/output type; "
            "call graph.infer_types() or write the types into the file"
        )
    return i, o


def read_pair(name: str, node, field: str, value) -> Tuple[int, int]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or arr.dtype.kind not in "iuf" or np.any(arr != np.round(arr)) or np.any(arr < 0):
        raise GraphError(
            f"node '{name}' ({type(node).__name__}) field '{field}' is {value!r}, "
            "expected a non-negative integer or a pair of them"
        )
    return int(arr[0]), int(arr[1])
