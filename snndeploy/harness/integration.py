"""How far the reference's time convention is from continuous time on the user's graph.

Every backend here repeats the reference's forward Euler step (docs/conventions.md). Whether that
matters depends on the graph: at ``dt/tau`` of a few percent Euler and the exact solution give the
same spikes; at ``dt/tau`` near 0.5 they part. :func:`integration_check` runs the ``brian2``
backend twice on the same samples, once with forward Euler and once with exact integration
(zero-order hold of each step's input, closed-form exponentials, LIF reset at the crossing inside
the step; docs/brian2.md), and reports their spike agreement per population: a figure about the
graph and its dt, not about a backend, so it never decides whether a comparison passes.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from ..errors import InputError, SnnDeployError
from ..ir.analysed import AnalysedGraph
from .agreement import Tolerances, compare_pair

#: samples checked when ``brian2`` is among the compared backends and no number is given
DEFAULT_SAMPLES = 32
#: neuron types whose forward-Euler step differs from the exact solution (IF, I, Threshold have no leak)
LEAKY_TYPES = ("LIF", "LI", "CubaLIF", "CubaLI")
HOW = (
    "the brian2 backend run twice on the first {samples} samples of the same input: forward Euler (the "
    "reference's convention, as every backend runs it) and exact integration (each step's input held over "
    "the step, exact exponentials, LIF reset at the threshold crossing inside the step); spike agreement = "
    "equal entries / entries per population, over samples x steps x neurons; informative only, it does not "
    "decide whether the comparison passes"
)


def samples_to_check(requested: Optional[int], backends) -> int:
    """``requested`` samples (0: off); ``None``: :data:`DEFAULT_SAMPLES` when ``brian2`` is compared, else off."""
    if requested is None:
        return DEFAULT_SAMPLES if "brian2" in backends else 0
    if int(requested) < 0:
        raise InputError(f"--integration-check: a number of samples >= 0 expected, got {requested}")
    return int(requested)


def integration_check(ag: AnalysedGraph, x: np.ndarray, dt: float, samples: int) -> dict:
    """Forward Euler against exact integration on ``x[:samples]`` (see the module docstring): a dict
    with ``ran``; when it ran, per-population spike agreement and spike counts of both, the lowest
    agreement, prediction agreement, the first divergence and ``how``; else ``why`` it did not."""
    k = min(int(samples), int(x.shape[0]))
    base = {"dt": float(dt), "samples": k, "how": HOW.format(samples=k)}
    leaky = [n for n in ag.neurons if ag.type_name(n) in LEAKY_TYPES]
    if not leaky:
        return dict(
            base,
            ran=False,
            why="no leaky population (LIF, LI, CubaLIF, CubaLI): forward Euler is exact for IF, I and Threshold",
        )
    from ..backends.brian2 import Brian2Backend

    began = time.monotonic()
    try:
        euler = Brian2Backend("euler").run(ag, x[:k], dt)
        exact = Brian2Backend("exact").run(ag, x[:k], dt)
    except SnnDeployError as e:  # a refused node or parameter: say so, the comparison goes on
        return dict(base, ran=False, why=f"brian2 could not run it: {e}")
    except Exception as e:  # noqa: BLE001 (Brian2's own errors: the check informs, it must not end a comparison)
        return dict(base, ran=False, why=f"brian2 failed: {type(e).__name__}: {e}")
    pair = compare_pair(ag, "euler", euler.outputs, "exact", exact.outputs, ag.output_node, Tolerances())
    nodes = {}
    for n, v in pair["nodes"].items():
        nodes[n] = {
            "spike_agreement": v["spike_agreement"],
            "mismatches": v["mismatches"],
            "entries": v["entries"],
            "spikes_euler": int(np.count_nonzero(euler.outputs[n])),
            "spikes_exact": int(np.count_nonzero(exact.outputs[n])),
        }
    out = dict(
        base,
        ran=True,
        leaky_populations=leaky,
        nodes=nodes,
        spike_agreement=min((v["spike_agreement"] for v in nodes.values()), default=None),
        prediction_agreement=pair["prediction_agreement"],
        first_divergence=pair["first_divergence"],
        wall_s=time.monotonic() - began,
    )
    if "output_max_abs_diff" in pair:
        out["output_max_abs_diff"] = pair["output_max_abs_diff"]
    return out


def integration_text(chk: dict) -> str:
    """The report line."""
    head = f"Euler vs exact integration (brian2, dt = {chk['dt']:g} s, first {chk['samples']} samples): "
    if not chk["ran"]:
        return head + "not run: " + chk["why"]
    parts = []
    if chk["nodes"]:
        per = ", ".join(
            f"{n} {v['spike_agreement']:.6f} ({v['spikes_euler']} spikes Euler, {v['spikes_exact']} exact)"
            for n, v in chk["nodes"].items()
        )
        parts.append(f"spike agreement {chk['spike_agreement']:.6f} (lowest population; {per})")
    else:
        parts.append("no spiking population")
    if "output_max_abs_diff" in chk:
        parts.append(f"graded output differs by up to {chk['output_max_abs_diff']:.3g}")
    parts.append(f"prediction agreement {100 * chk['prediction_agreement']:.2f} %")
    return head + ", ".join(parts)
