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
- ``CubaLIF``: with ``a = dt/tau_mem``, ``b = dt/tau_syn`` and in this order
  (Norse's ``lif_feed_forward_step``: the new current reaches v in the same step)::

      I <- I + b * (w_in*S - I)
      v <- v + a * ((v_leak - v) + r*I)
      z  = v > v_threshold ;  v <- v_reset where z

  Initial ``I = 0``, ``v = v_leak``.
- ``CubaLI``: the same without threshold; output ``v``.
- ``I`` (NIR's Integrator, ``dv/dt = R I``): ``v <- v + r*I`` (no dt, as IF); output ``v``;
  no spike. Initial ``v = 0``.
- ``Threshold``: ``z = I > threshold`` (strict, as every spike here); stateless.
- ``Delay``: ``y(t) = x(t - k)`` per element with ``k = delay/dt`` steps (``delay`` in
  seconds, must be a whole number of steps within ``DELAY_STEP_TOLERANCE``); ``y = 0``
  before the first ``k`` steps.
- ``Affine``: ``y = W x + b``; ``Linear``: ``y = W x``; ``Scale``: ``y = s * x``;
  ``Conv2d``: torch's ``conv2d`` (cross-correlation, NCHW, zero padding);
  ``SumPool2d``: sum over each window (zero padding); ``AvgPool2d``: that sum divided by
  ``kh*kw`` (padding counted, torch's ``count_include_pad=True``); ``Flatten``: a reshape,
  ``start_dim``/``end_dim`` counted over the per-sample shape (no batch axis), see
  docs/conventions.md. All are instantaneous: the output at step t depends on the input
  at step t. Their forward functions live in :mod:`snndeploy.linear`.
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


def cuba_lif_params(name: str, node) -> NeuronParams:
    shape = _shape_of(name, node)
    return NeuronParams(
        name, "CubaLIF", shape,
        r=_field(name, node, "r", shape),
        v_leak=_field(name, node, "v_leak", shape),
        tau=_positive(name, "CubaLIF", "tau_mem", _field(name, node, "tau_mem", shape)),
        v_threshold=_field(name, node, "v_threshold", shape),
        v_reset=_field(name, node, "v_reset", shape),
        tau_syn=_positive(name, "CubaLIF", "tau_syn", _field(name, node, "tau_syn", shape)),
        w_in=_field(name, node, "w_in", shape),
    )


def cuba_li_params(name: str, node) -> NeuronParams:
    shape = _shape_of(name, node)
    return NeuronParams(
        name, "CubaLI", shape,
        r=_field(name, node, "r", shape),
        v_leak=_field(name, node, "v_leak", shape),
        tau=_positive(name, "CubaLI", "tau_mem", _field(name, node, "tau_mem", shape)),
        v_threshold=None,
        v_reset=None,
        tau_syn=_positive(name, "CubaLI", "tau_syn", _field(name, node, "tau_syn", shape)),
        w_in=_field(name, node, "w_in", shape),
    )


def integrator_params(name: str, node) -> NeuronParams:
    """NIR ``I``: ``v <- v + r*I`` per step (no dt, as IF), output v, initial v = 0."""
    shape = _shape_of(name, node)
    return NeuronParams(name, "I", shape, r=_field(name, node, "r", shape), v_leak=np.zeros(shape),
                        tau=None, v_threshold=None, v_reset=None)


def threshold_params(name: str, node) -> NeuronParams:
    """NIR ``Threshold``: ``z = I > threshold``, no state (r = 1, nothing to reset)."""
    shape = _shape_of(name, node)
    return NeuronParams(name, "Threshold", shape, r=np.ones(shape), v_leak=np.zeros(shape), tau=None,
                        v_threshold=_field(name, node, "threshold", shape), v_reset=np.zeros(shape))


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
                f"(within {DELAY_STEP_TOLERANCE})")
        return np.round(k).astype(np.int64)


def delay_params(name: str, node) -> DelayParams:
    shape = _shape_of(name, node)
    delay = _field(name, node, "delay", shape)
    if np.any(delay < 0):
        raise GraphError(f"node '{name}' (Delay) field 'delay' must be >= 0 seconds, got {float(delay.min())}")
    return DelayParams(name, shape, delay)


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


# --------------------------------------------------------------------------- linear maps


@dataclass(frozen=True, eq=False)
class MapParams:
    """An instantaneous affine map on one sample: Scale, Conv2d, SumPool2d, AvgPool2d, Flatten.

    ``attrs`` holds the type's own fields (weight, bias, stride, ...) as read and checked
    here; :mod:`snndeploy.linear` has the forward function of each ``kind``.
    """

    name: str
    kind: str
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    attrs: Dict[str, object]


def _type_shape(name: str, node, port: str) -> Optional[Tuple[int, ...]]:
    types = node.input_type if port == "input" else node.output_type
    t = (types or {}).get(port)
    if t is None:
        return None
    return tuple(int(x) for x in np.asarray(t).reshape(-1))


def _io_shapes(name: str, node) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    i, o = _type_shape(name, node, "input"), _type_shape(name, node, "output")
    if i is None or o is None:
        raise GraphError(
            f"node '{name}' ({type(node).__name__}) has no input/output type; "
            "call graph.infer_types() or write the types into the file")
    return i, o


def _pair(name: str, node, field: str, value) -> Tuple[int, int]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or arr.dtype.kind not in "iuf" or np.any(arr != np.round(arr)) or np.any(arr < 0):
        raise GraphError(f"node '{name}' ({type(node).__name__}) field '{field}' is {value!r}, "
                         "expected a non-negative integer or a pair of them")
    return int(arr[0]), int(arr[1])


def scale_params(name: str, node) -> MapParams:
    shape = _shape_of(name, node)
    return MapParams(name, "Scale", shape, shape, {"scale": _field(name, node, "scale", shape)})


def conv2d_params(name: str, node) -> MapParams:
    i, o = _io_shapes(name, node)
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 4:
        raise GraphError(f"node '{name}' (Conv2d) field 'weight' has shape {w.shape}, expected (C_out, C_in/groups, kh, kw)")
    groups = int(node.groups)
    if groups < 1 or i[0] != w.shape[1] * groups or w.shape[0] % groups:
        raise GraphError(f"node '{name}' (Conv2d): weight {w.shape} with groups={groups} does not fit input {i}")
    bias = np.zeros(w.shape[0]) if node.bias is None else np.asarray(node.bias, dtype=np.float64).reshape(-1)
    if bias.size == 1 and w.shape[0] != 1:
        bias = np.full(w.shape[0], float(bias[0]))
    if bias.shape != (w.shape[0],):
        raise GraphError(f"node '{name}' (Conv2d) field 'bias' has shape {bias.shape}, expected ({w.shape[0]},)")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(bias))):
        raise GraphError(f"node '{name}' (Conv2d) weight or bias holds NaN or inf")
    pad = node.padding
    if isinstance(pad, str):
        if pad not in ("same", "valid"):
            raise GraphError(f"node '{name}' (Conv2d) field 'padding' is '{pad}', expected 'same', 'valid' or integers")
    else:
        pad = _pair(name, node, "padding", pad)
    attrs = {"weight": w, "bias": bias, "stride": _pair(name, node, "stride", node.stride), "padding": pad,
             "dilation": _pair(name, node, "dilation", node.dilation), "groups": groups}
    return MapParams(name, "Conv2d", i, o, attrs)


def _pool_params(kind: str):
    def read(name: str, node) -> MapParams:
        i, o = _io_shapes(name, node)
        if len(i) != 3:
            raise GraphError(f"node '{name}' ({kind}) input type {i}, expected (C, H, W)")
        attrs = {f: _pair(name, node, f, getattr(node, f)) for f in ("kernel_size", "stride", "padding")}
        if min(attrs["kernel_size"]) < 1 or min(attrs["stride"]) < 1:
            raise GraphError(f"node '{name}' ({kind}): kernel_size and stride must be >= 1, got {attrs}")
        return MapParams(name, kind, i, o, attrs)

    read.__name__ = f"{kind.lower()}_params"
    return read


sumpool2d_params = _pool_params("SumPool2d")
avgpool2d_params = _pool_params("AvgPool2d")


def flatten_params(name: str, node) -> MapParams:
    """Flatten: start_dim/end_dim count over the per-sample shape (no batch axis), as NIR's
    ``calc_flatten_output`` does. Flattening a C-ordered array keeps the element order, so
    the map is a reshape from the input type to the output type; they must hold as many values."""
    i, o = _io_shapes(name, node)
    if int(np.prod(i)) != int(np.prod(o)):
        raise GraphError(f"node '{name}' (Flatten): input type {i} and output type {o} hold different numbers of values")
    return MapParams(name, "Flatten", i, o, {"start_dim": int(node.start_dim), "end_dim": int(node.end_dim)})


def _registry() -> Dict[type, Callable]:
    import nir

    return {
        nir.LIF: lif_params,
        nir.IF: if_params,
        nir.LI: li_params,
        nir.CubaLIF: cuba_lif_params,
        nir.CubaLI: cuba_li_params,
        nir.I: integrator_params,
        nir.Threshold: threshold_params,
        nir.Delay: delay_params,
        nir.Scale: scale_params,
        nir.Conv2d: conv2d_params,
        nir.SumPool2d: sumpool2d_params,
        nir.AvgPool2d: avgpool2d_params,
        nir.Flatten: flatten_params,
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
