"""Running backends: every backend checked before any runs, then each run with a progress bar."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..backends import Backend, RunResult, get_backend
from . import shards as S
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


@dataclass(frozen=True)
class RunJob:
    """One shard of a ``run``, as a worker gets it."""

    graph: object
    name: str
    x: np.ndarray
    dt: float
    tag: str


def run_shard(job: RunJob) -> RunResult:
    """One backend on one shard (one Lava network); in a Dask worker or in-process."""
    if S.announce(job.tag):
        S.prepare_worker()
    return run_backends(job.graph, [job.name], job.x, job.dt, show_progress=False)[job.name]


def run_sharded(graph, name: str, spikes: np.ndarray, dt: float, chunk: Optional[int], opts) -> RunResult:
    """One backend on every sample, in shards of ``chunk`` samples (default: two per worker thread), run
    as ``opts`` (:class:`~snndeploy.harness.shards.ShardOptions`) says: records concatenated over shards.
    A shard that fails twice fails the run (a BackendError naming the shards and their samples).
    With ``opts.folder`` every finished shard is written there (atomically); with ``opts.resume`` the
    shards already there (of the same graph, input, dt, backend and shard size) are not run again."""
    from ..errors import BackendError
    from ..ir.analysed import as_analysed
    from .memory import chunk_size

    ag = as_analysed(graph)
    checked_backends(ag, [name], dt, spikes)
    n, steps = int(spikes.shape[0]), int(spikes.shape[1])
    check_memory(ag, n, steps, [name])  # every shard's records come back here
    if chunk is not None:
        chunk_size(ag, n, steps, [name], chunk)  # a bad --chunk fails here
    manifest = S.ShardStore.manifest(opts.folder) if opts.resume and Path(opts.folder).is_dir() else None
    size = min(int(chunk), n) if chunk is not None else (int(manifest["size"]) if manifest else None)
    parts: Dict[int, RunResult] = {}
    store = None

    def open_store(size: int):
        nonlocal store
        shards = S.plan(n, size)
        if opts.folder is not None:
            store = S.store_for(opts.folder, ag.graph, spikes, dt, [name], size, job="run")
            done = store.start(shards, opts.resume)  # a folder of another run is refused here, before any shard
            parts.update({i: S.result_from_plain(p) for i, p in done.items()})
        return shards

    if size is not None:
        shards = open_store(size)
    needed = size is None or len(parts) < len(shards)
    with S.executor_for(opts, S.forks([name])) if needed else contextlib.nullcontext(None) as ex:
        if size is None:
            size = S.default_size(n, ex.slots if ex else 1, n)
            shards = open_store(size)

        def on_done(shard: S.Shard, result: RunResult) -> None:
            parts[shard.index] = (
                S.result_from_plain(store.save(shard, S.result_to_plain(result))) if store is not None else result
            )

        outcome = S.run_shards(
            shards,
            run_shard,
            lambda s, tag: RunJob(ag, name, spikes[s.start : s.stop], dt, tag),
            on_done,
            opts,
            ex,
            resumed=sorted(parts),
            timeout_s=opts.timeout_s or S.default_timeout(len(ag.nodes), [name], size, steps),
        )
    if outcome.failed:
        listed = "; ".join(
            f"shard {f['shard']} (samples {f['samples'][0]}-{f['samples'][1]}): {' / '.join(f['errors'])}"
            for f in outcome.failed
        )
        raise BackendError(f"{name}: {len(outcome.failed)} of {len(shards)} shards failed, nothing written: {listed}")
    ordered = [parts[s.index] for s in shards]
    first = ordered[0]
    info = dict(first.info)
    info["wall_s"] = sum(float(r.info.get("wall_s", 0.0)) for r in ordered)
    info["shards"] = outcome.as_dict()
    return RunResult(
        backend=first.backend,
        outputs={k: np.concatenate([r.outputs[k] for r in ordered]) for k in first.outputs},
        states={
            k: {v: np.concatenate([r.states[k][v] for r in ordered]) for v in st} for k, st in first.states.items()
        },
        info=info,
    )
