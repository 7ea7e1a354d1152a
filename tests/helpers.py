"""Small NIR graph builders for tests (numpy + nir only)."""

from __future__ import annotations

import numpy as np


def mlp_graph(rng, sizes=(6, 5, 3), kinds=("LIF", "LIF"), dt_meta=None, v_reset=0.0):
    """Input -> (Affine -> neuron) x len(kinds) -> Output with seeded random parameters."""
    import nir

    nodes = {"in": nir.Input(input_type={"input": np.array([sizes[0]])})}
    edges, prev = [], "in"
    for i, kind in enumerate(kinds):
        n_in, n_out = sizes[i], sizes[i + 1]
        fc, neu = f"fc{i + 1}", f"{kind.lower()}{i + 1}"
        nodes[fc] = nir.Affine(weight=rng.normal(0, 1.5, (n_out, n_in)), bias=rng.normal(0, 0.05, n_out))
        ones = np.ones(n_out)
        if kind == "LIF":
            nodes[neu] = nir.LIF(
                tau=rng.uniform(5e-3, 2e-2) * ones,
                r=rng.uniform(0.5, 2) * ones,
                v_leak=v_reset * ones,
                v_threshold=rng.uniform(0.3, 1.0, n_out),
                v_reset=v_reset * ones,
            )
        elif kind == "IF":
            nodes[neu] = nir.IF(
                r=rng.uniform(0.5, 1.5, n_out), v_threshold=rng.uniform(0.5, 1.5, n_out), v_reset=v_reset * ones
            )
        elif kind == "LI":
            nodes[neu] = nir.LI(tau=1e-2 * ones, r=ones, v_leak=rng.normal(0, 0.1, n_out))
        edges += [(prev, fc), (fc, neu)]
        prev = neu
    nodes["out"] = nir.Output(output_type={"output": np.array([sizes[-1]])})
    edges.append((prev, "out"))
    meta = {} if dt_meta is None else {"dt": dt_meta}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def bernoulli(rng, shape, p=0.3):
    return (rng.random(shape) < p).astype(np.float64)
