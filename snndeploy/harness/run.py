"""Running backends: every backend checked before any runs, then each run with a progress bar."""

from __future__ import annotations

import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..backends import Backend, RunResult, get_backend
from .memory import check_memory


def _progress_bar(name: str):
    from tqdm import tqdm

    bar = tqdm(
        total=100,
        desc=f"run {name}",
        file=sys.stderr,
        leave=False,
        mininterval=0.5 if sys.stderr.isatty() else 15.0,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}",
    )

    def update(_msg, frac):
        bar.update(int(round(100 * frac)) - bar.n)  # update() honours mininterval; refresh() would not

    return bar, update


def checked_backends(graph, names: Sequence[str], dt: float, x: Optional[np.ndarray] = None) -> List[Backend]:
    """The backends named, each having checked that it can run ``graph`` (an analysed graph) and the
    input ``x``: an unknown name, a node or an input some backend refuses fails here, before any
    backend has run."""
    backends = [get_backend(n) for n in names]
    for b in backends:
        b.check(graph, dt)
        if x is not None:
            b.check_input(x)
    return backends


def refusal(exc) -> dict:
    """A backend's refusal of a node, as the report lists it."""
    return {"backend": exc.backend, "node": exc.node, "type": exc.node_type, "reason": str(exc)}


def split_refusals(graph, names: Sequence[str], dt: float, x: Optional[np.ndarray] = None):
    """Like :func:`checked_backends`, but a backend that refuses a node is set aside with its refusal
    instead of stopping everything: (backends that can run, their UnsupportedNodeErrors). Any other
    error still stops."""
    from ..errors import UnsupportedNodeError

    backends, refused = [], []
    for n in names:
        b = get_backend(n)
        try:
            b.check(graph, dt)
        except UnsupportedNodeError as exc:
            refused.append(exc)
            continue
        if x is not None:
            b.check_input(x)
        backends.append(b)
    return backends, refused


def run_backends(
    graph,
    names: Sequence[str],
    spikes: np.ndarray,
    dt: float,
    show_progress: bool = True,
    backends: Sequence[Backend] = (),
) -> Dict[str, RunResult]:
    """Run each backend on the same input (records refused up front when they would not fit in memory)."""
    backends = list(backends) or checked_backends(graph, names, dt, spikes)
    check_memory(graph, int(spikes.shape[0]), int(spikes.shape[1]), names)
    results = {}
    for b in backends:
        bar, update = _progress_bar(b.name) if show_progress else (None, None)
        try:
            results[b.name] = b.run(graph, spikes, dt, progress=update)
        finally:
            if bar is not None:
                bar.close()
    return results
