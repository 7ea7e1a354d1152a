"""Linear chains: composing instantaneous nodes into one affine map per source population.

A chain of instantaneous nodes (Affine, Linear, Scale, Conv2d, SumPool2d, AvgPool2d,
Flatten: every type in :data:`snndeploy.reference.MAPS`; edges into one node summed) between
spiking populations is composed numerically into ONE affine map per (source population,
destination) by pushing identity basis vectors through each node's reference forward
function, so each chain costs one Dense and one step of delay on Lava. Its bias folds into
the neuron bias as Affine's does. Cost: the matrix is dense, ``N_dst x N_src`` float64 (a
16x16x16 -> 16x16x16 conv is 4096 x 4096, 134 MB); a Lava ``Conv`` process would keep only
the kernel (future work).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from ..errors import GraphError
from ..reference import forward


@dataclass(frozen=True, eq=False)
class AffineMap:
    """A node's value as ``sum_src weights[src] @ out(src) + bias``; weights[src] is (N, N_src)."""

    weights: Dict[str, np.ndarray]
    bias: np.ndarray


def compose_linear(p, value: AffineMap) -> AffineMap:
    """The map after one linear node ``p`` (a record of :data:`snndeploy.reference.MAPS`).

    Pushes the columns of each source's matrix (identity basis vectors of the source
    composed so far) and the bias through the node's forward function in float64.
    """
    import torch

    shape = p.in_shape
    with torch.no_grad():
        zero = forward(p, torch.zeros((1,) + shape, dtype=torch.float64)).reshape(1, -1)
        weights = {}
        for src, w in value.weights.items():
            cols = torch.as_tensor(np.ascontiguousarray(w.T), dtype=torch.float64).reshape((w.shape[1],) + shape)
            weights[src] = (forward(p, cols).reshape(w.shape[1], -1) - zero).T.numpy()
        bias = forward(p, torch.as_tensor(value.bias, dtype=torch.float64).reshape((1,) + shape)).reshape(-1).numpy()
    return AffineMap(weights, bias)


def sum_maps(maps: List[AffineMap], node: str) -> AffineMap:
    sizes = {m.bias.size for m in maps}
    if len(sizes) != 1:
        raise GraphError(f"node '{node}': incoming edges carry {sorted(sizes)} values; summed edges must match")
    weights: Dict[str, np.ndarray] = {}
    for m in maps:
        for src, w in m.weights.items():
            weights[src] = weights[src] + w if src in weights else w
    return AffineMap(weights, sum(m.bias for m in maps))


def compose_node(ag, n: str, maps: Dict[str, AffineMap]) -> AffineMap:
    """The composed map of linear node ``n`` of the analysed graph ``ag``: its incoming maps summed,
    checked against the node's input size, then the node applied."""
    value = sum_maps([maps[q] for q in ag.preds(n)], n)
    p = ag.record(n)
    want = int(np.prod(p.in_shape))
    if value.bias.size != want:
        raise GraphError(f"node '{n}' ({p.kind}) expects {want} inputs but its incoming edges carry {value.bias.size}")
    return compose_linear(p, value)
