"""Reference linear maps: one pure forward function per instantaneous NIR node type.

Each is ``forward(x, p) -> y`` on torch tensors with a leading batch axis:
``x`` is (B, *p.in_shape) (any shape holding as many values per sample), ``y`` is
(B, *p.out_shape). ``p`` is the node's record from :mod:`snndeploy.nodes`
(:class:`MapParams`, or :class:`SynapseParams` for Affine/Linear). The ``norse``
backend runs them per step; the Lava lowering pushes identity basis vectors
through the same functions to get each chain's composed weight matrix.
Everything is computed in ``x``'s dtype and device.
"""

from __future__ import annotations

from typing import Callable, Dict


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
    return F.conv2d(x.reshape((x.shape[0],) + p.in_shape), _t(a["weight"], x), _t(a["bias"], x),
                    stride=a["stride"], padding=a["padding"], dilation=a["dilation"], groups=a["groups"])


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


#: node type name -> forward function
FORWARDS: Dict[str, Callable] = {
    "Affine": affine_forward,
    "Linear": affine_forward,
    "Scale": scale_forward,
    "Conv2d": conv2d_forward,
    "SumPool2d": sumpool2d_forward,
    "AvgPool2d": avgpool2d_forward,
    "Flatten": flatten_forward,
}


def out_shape_of(p):
    """Per-sample output shape of a linear record."""
    return (p.out_features,) if hasattr(p, "out_features") else p.out_shape


def in_shape_of(p):
    return (p.in_features,) if hasattr(p, "in_features") else p.in_shape
