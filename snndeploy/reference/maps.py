"""Instantaneous (linear) node types: for each, the record read from NIR and the reference forward.

All are instantaneous: the output at step t depends on the input at step t.

- ``Affine``: ``y = W x + b``; ``Linear``: ``y = W x``; ``Scale``: ``y = s * x``;
- ``Conv2d``: torch's ``conv2d`` (cross-correlation, NCHW, zero padding);
- ``SumPool2d``: sum over each window (zero padding); ``AvgPool2d``: that sum divided by
  ``kh*kw`` (padding counted, torch's ``count_include_pad=True``);
- ``Flatten``: a reshape, ``start_dim``/``end_dim`` counted over the per-sample shape (no
  batch axis), see docs/conventions.md.

Each forward is ``forward(x, p) -> y`` on torch tensors with a leading batch axis: ``x`` is
(B, *p.in_shape) (any shape holding as many values per sample), ``y`` is (B, *p.out_shape).
The ``norse`` backend runs them per step; the Lava lowering pushes identity basis vectors
through the same functions to compose each chain's weight matrix. Everything is computed in
``x``'s dtype and device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict

import numpy as np

from ..errors import GraphError
from .records import MapParams, SynapseParams, io_shapes, read_field, read_matrix, read_pair, real_array, shape_of

# --------------------------------------------------------------------------- records


def affine_params(name: str, node) -> SynapseParams:
    w = read_matrix(name, node)
    b = real_array(name, node, "bias", node.bias).reshape(-1)
    if b.shape != (w.shape[0],):
        raise GraphError(
            f"node '{name}' (Affine) field 'bias' has shape {b.shape}, "
            f"expected ({w.shape[0]},) to match weight {w.shape}"
        )
    if not np.all(np.isfinite(b)):
        raise GraphError(f"node '{name}' (Affine) field 'bias' holds NaN or inf")
    return SynapseParams(name, "Affine", w, b)


def linear_params(name: str, node) -> SynapseParams:
    w = read_matrix(name, node)
    return SynapseParams(name, "Linear", w, np.zeros(w.shape[0]))


def scale_params(name: str, node) -> MapParams:
    shape = shape_of(name, node)
    return MapParams(name, "Scale", shape, shape, {"scale": read_field(name, node, "scale", shape)})


def conv2d_params(name: str, node) -> MapParams:
    i, o = io_shapes(name, node)
    w = real_array(name, node, "weight", node.weight)
    if w.ndim != 4:
        raise GraphError(
            f"node '{name}' (Conv2d) field 'weight' has shape {w.shape}, expected (C_out, C_in/groups, kh, kw)"
        )
    groups = int(node.groups)
    if groups < 1 or i[0] != w.shape[1] * groups or w.shape[0] % groups:
        raise GraphError(f"node '{name}' (Conv2d): weight {w.shape} with groups={groups} does not fit input {i}")
    bias = np.zeros(w.shape[0]) if node.bias is None else real_array(name, node, "bias", node.bias).reshape(-1)
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
        pad = read_pair(name, node, "padding", pad)
    attrs = {
        "weight": w,
        "bias": bias,
        "stride": read_pair(name, node, "stride", node.stride),
        "padding": pad,
        "dilation": read_pair(name, node, "dilation", node.dilation),
        "groups": groups,
    }
    return MapParams(name, "Conv2d", i, o, attrs)


def _pool_params(kind: str):
    def read(name: str, node) -> MapParams:
        i, o = io_shapes(name, node)
        if len(i) != 3:
            raise GraphError(f"node '{name}' ({kind}) input type {i}, expected (C, H, W)")
        attrs = {f: read_pair(name, node, f, getattr(node, f)) for f in ("kernel_size", "stride", "padding")}
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
    i, o = io_shapes(name, node)
    if int(np.prod(i)) != int(np.prod(o)):
        raise GraphError(
            f"node '{name}' (Flatten): input type {i} and output type {o} hold different numbers of values"
        )
    return MapParams(name, "Flatten", i, o, {"start_dim": int(node.start_dim), "end_dim": int(node.end_dim)})


# --------------------------------------------------------------------------- reference forwards


def _t(a, like):
    import torch

    return torch.as_tensor(a, dtype=like.dtype, device=like.device)


def affine_forward(x, p):
    """``y = W x + b`` (Linear: b = 0)."""
    return x.reshape(x.shape[0], -1) @ _t(p.weight, x).T + _t(p.bias, x)


def scale_forward(x, p):
    """``y = s * x`` elementwise."""
    return x.reshape((x.shape[0],) + p.in_shape) * _t(p.attrs["scale"], x)


def conv2d_forward(x, p):
    """torch ``conv2d``: cross-correlation over (C, H, W), zero padding, plus bias per channel."""
    import torch.nn.functional as F

    a = p.attrs
    return F.conv2d(
        x.reshape((x.shape[0],) + p.in_shape),
        _t(a["weight"], x),
        _t(a["bias"], x),
        stride=a["stride"],
        padding=a["padding"],
        dilation=a["dilation"],
        groups=a["groups"],
    )


def _window_sum(x, p):
    import torch
    import torch.nn.functional as F

    B, (C, H, W) = x.shape[0], p.in_shape
    kh, kw = p.attrs["kernel_size"]
    ones = torch.ones((1, 1, kh, kw), dtype=x.dtype, device=x.device)
    y = F.conv2d(x.reshape(B * C, 1, H, W), ones, stride=p.attrs["stride"], padding=p.attrs["padding"])
    return y.reshape((B, C) + tuple(y.shape[-2:]))


def sumpool2d_forward(x, p):
    """Sum over each kh x kw window (zero padding)."""
    return _window_sum(x, p)


def avgpool2d_forward(x, p):
    """Window sum divided by kh*kw (zero padding counted, torch's count_include_pad=True)."""
    kh, kw = p.attrs["kernel_size"]
    return _window_sum(x, p) / (kh * kw)


def flatten_forward(x, p):
    """A reshape to the output type (C order keeps the element order)."""
    return x.reshape((x.shape[0],) + p.out_shape)


@dataclass(frozen=True)
class MapKind:
    """An instantaneous node type: how its record is read from NIR and its forward function."""

    read: Callable[[str, object], object]
    forward: Callable


#: NIR type name (= record kind) -> reader and reference forward
MAPS: Dict[str, MapKind] = {
    "Affine": MapKind(affine_params, affine_forward),
    "Linear": MapKind(linear_params, affine_forward),
    "Scale": MapKind(scale_params, scale_forward),
    "Conv2d": MapKind(conv2d_params, conv2d_forward),
    "SumPool2d": MapKind(sumpool2d_params, sumpool2d_forward),
    "AvgPool2d": MapKind(avgpool2d_params, avgpool2d_forward),
    "Flatten": MapKind(flatten_params, flatten_forward),
}

#: the types whose records carry a weight matrix (NeuroBench counts these layers)
WEIGHTED = frozenset({"Affine", "Linear", "Conv2d"})


def forward(p, x):
    """The reference forward of a map record ``p`` on ``x`` (B, *p.in_shape)."""
    return MAPS[p.kind].forward(x, p)
