"""Comparing backends on one input, in chunks when the records would not fit: the report dict.

Every figure is merged exactly over chunks (mismatches and entries add, the first divergence is the
earliest, predictions and per-sample operation counts are concatenated, per-step mismatch counts add).
Only one sample's records are kept from chunk to chunk, for the report's plots. The chunks may run
as shards in Dask workers, and be written to and resumed from a folder (:mod:`.shards`): a shard's
payload (:func:`shard_payload`) is all the merge needs of it, so a resumed or distributed comparison
gives the same report as one run in-process.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..backends import RunResult
from ..energy.counts import count_ops, counts_equal, merge_counts
from ..energy.estimate import DEFAULT_TARGET, energy_report, energy_target
from ..errors import BackendError, InputError
from ..ir import graph as G
from ..ir.analysed import AnalysedGraph, as_analysed
from . import shards as S
from .agreement import (
    Tolerances,
    accuracy,
    compare_pair,
    merge_pairs,
    output_in_nir_units,
    predictions,
    readout_description,
)
from .inputs import check_labels
from .integration import integration_check, samples_to_check
from .memory import chunk_size
from .run import refusal, run_backends, split_refusals
from .twin import find_twin, twin_section

CHUNKS_HOW = (
    "samples run in chunks of this size, one Lava network per chunk; every figure is merged over all "
    "chunks (counts add, first divergence is the earliest)"
)
PLOTTED_HOW = (
    "the records of one sample are kept for the plots: the first where backends diverge, else the first sample"
)
FAILED_HOW = (
    "shards that failed twice (an error, their worker died, or --shard-timeout); every figure is merged over "
    "the shards that finished, and the comparison does not pass"
)
COUNTS_HOW = (
    "per-sample operation counts of every node exactly equal; backends whose input and spike records are "
    "equal must give equal counts"
)


@dataclass
class _Merged:
    """What the chunks of one comparison add up to, chunk by chunk."""

    names: Sequence[str]
    preds: Dict[str, list] = field(default_factory=dict)
    counts: Dict[str, list] = field(default_factory=dict)
    infos: Dict[str, list] = field(default_factory=dict)
    pairs: Dict[str, list] = field(default_factory=dict)
    kept: Optional[Dict[str, RunResult]] = None
    kept_start: int = 0
    kept_diverged: bool = False
    added: int = 0

    def __post_init__(self):
        for d in (self.preds, self.counts, self.infos):
            d.update({n: [] for n in self.names})
        self.pairs.update({n: [] for n in self.names[1:]})

    def add(self, ag: AnalysedGraph, results: Dict[str, RunResult], start: int, tol: Tolerances) -> None:
        self.add_shard(shard_payload(ag, self.names, results, start, tol))

    def add_shard(self, p: dict) -> None:
        """One shard's :func:`shard_payload` (shards are added in sample order)."""
        for name in self.names:
            self.preds[name].append(p["preds"][name])
            self.counts[name].append(p["counts"][name])
            self.infos[name].append(p["infos"][name])
        for other in self.names[1:]:
            self.pairs[other].append(p["pairs"][other])
        if not self.added or (p["diverged"] and not self.kept_diverged):
            # p["kept"] is None only where a later shard replaces it (see _prune_kept)
            self.kept, self.kept_start, self.kept_diverged = p["kept"], p["start"] + p["kept_local"], p["diverged"]
        self.added += 1


def shard_payload(
    ag: AnalysedGraph, names: Sequence[str], results: Dict[str, RunResult], start: int, tol: Tolerances
) -> dict:
    """What one chunk of samples adds to a comparison: per backend its predictions, operation counts
    and run info; per pair the partial agreement; the one sample kept for the plots (the first where
    two backends diverge, else the first) and whether the chunk diverges."""
    ref = names[0]
    outs = {n: {**results[n].outputs, ag.output_node: output_in_nir_units(ag, results[n])} for n in names}
    pairs = {
        other: compare_pair(ag, ref, outs[ref], other, outs[other], ag.output_node, tol, sample_offset=start)
        for other in names[1:]
    }
    diverged = any(p["first_divergence"] is not None for p in pairs.values())
    local = min(
        (p["first_divergence"]["sample"] - start for p in pairs.values() if p["first_divergence"] is not None),
        default=0,
    )
    size = int(next(iter(results.values())).outputs[ag.output_node].shape[0])
    return {
        "start": int(start),
        "stop": int(start) + size,
        "preds": {n: predictions(outs[n][ag.output_node]) for n in names},
        "counts": {n: count_ops(ag, results[n].outputs) for n in names},
        "infos": {n: results[n].info for n in names},
        "pairs": pairs,
        "kept": one_sample(results, local),
        "kept_local": int(local),
        "diverged": bool(diverged),
    }


def _to_file(p: dict) -> dict:
    """A payload as plain data for a shard file (run info: its JSON-able entries, as the report keeps)."""
    kept = {n: S.result_to_plain(r) for n, r in p["kept"].items()}
    return dict(p, infos={n: S.jsonable_part(i) for n, i in p["infos"].items()}, kept=kept)


def _from_file(p: dict) -> dict:
    return dict(p, kept={n: S.result_from_plain(k) for n, k in p["kept"].items()})


def _prune_kept(payloads: Dict[int, dict]) -> None:
    """Free the plotted-sample records of shards that can no longer be the one plotted (the first shard
    where backends diverge, else the first shard): once a shard diverges, those after it and those that
    do not diverge; a shard that does not diverge once a shard before it is in. Shards arrive in any
    order; each condition stays true once true."""
    if not payloads:
        return
    lowest = min(payloads)
    first_div = min((i for i, p in payloads.items() if p["diverged"]), default=None)
    for i, p in payloads.items():
        after_divergence = first_div is not None and (first_div < i or not p["diverged"])
        if after_divergence or (not p["diverged"] and lowest < i):
            p["kept"] = None


@dataclass(frozen=True)
class CompareJob:
    """One shard of a comparison, as a worker gets it."""

    graph: AnalysedGraph
    names: Tuple[str, ...]
    x: np.ndarray
    dt: float
    tol: Tolerances
    start: int
    tag: str


def compare_shard(job: CompareJob) -> dict:
    """Run every backend on one shard (one Lava network per Lava backend) and return its payload, as
    plain data (:func:`_to_file`). Runs in a Dask worker, or in-process."""
    if S.announce(job.tag):
        S.prepare_worker()
    results = run_backends(job.graph, list(job.names), job.x, job.dt, show_progress=False)
    return _to_file(shard_payload(job.graph, job.names, results, job.start, job.tol))


def check_backend_names(names: Sequence[str]) -> None:
    if len(names) < 2:
        raise InputError(f"--backends needs at least two names separated by commas, got {','.join(names)}")
    if len(set(names)) != len(names):
        raise InputError(f"--backends lists a backend twice: {','.join(names)}")


def compare_runs(
    graph,
    graph_path: str,
    names: Sequence[str],
    spikes: np.ndarray,
    labels: Optional[np.ndarray],
    dt: float,
    input_desc: str,
    tol: Tolerances = Tolerances(),
    target: str = DEFAULT_TARGET,
    show_progress: bool = True,
    chunk: Optional[int] = None,
    conventions: Optional[dict] = None,
    shards: Optional[S.ShardOptions] = None,
    integration_samples: Optional[int] = None,
):
    """Run every backend on the same input and compare them: (report dict, {backend: RunResult}).

    A backend that refuses a node of the graph does not stop the others: it is listed under
    ``report["refused"]`` (backend, node, type, reason), the others run and are compared (the first
    that runs is the reference), and the report does not pass. ``conventions`` (the exporter
    profile, dt and the changes made on load, :class:`~snndeploy.ir.exporters.Conventions`) goes
    into the report as given.

    The samples run in chunks (``chunk``, or automatically when all records would not fit in
    memory); agreement (also per step), first divergence, predictions and operation counts are
    merged exactly across chunks. The RunResults returned (for the HTML plots) hold one sample: the
    first where two backends diverge, else the first; ``report["plotted_samples"]`` says which.

    ``shards`` (:class:`~snndeploy.harness.shards.ShardOptions`): run the chunks as shards in Dask
    workers (``workers``/``scheduler``, each shard with a wall-clock limit, retried once, then listed
    under ``report["failed_shards"]``: the report does not pass) and/or write each finished shard to
    ``folder`` (``resume``: load those already there). ``report["execution"]`` says how it ran.

    ``integration_samples``: forward Euler against exact integration on that many samples
    (:mod:`.integration`; ``None``: 32 when ``brian2`` is compared, else none; 0: none), in
    ``report["integration_check"]``; informative, it does not decide whether the comparison passes.
    """
    check_backend_names(names)
    check_samples = samples_to_check(integration_samples, names)
    energy_target(target)  # a bad target fails before anything runs
    ag = as_analysed(graph)
    x = G.check_input(ag.graph, spikes, where=input_desc)
    twin = find_twin(graph_path, ag.graph)  # read before anything runs
    backends, refused = split_refusals(ag, names, dt, x)  # an input any backend refuses fails here
    if not backends:
        raise refused[0]
    ran = [b.name for b in backends]
    n, steps = int(x.shape[0]), int(x.shape[1])
    if labels is not None:
        labels = check_labels(labels, n, input_desc, n_classes=int(np.prod(ag.shape(ag.output_node))))
    opts = shards if shards is not None else S.ShardOptions(progress=show_progress)
    began = time.monotonic()
    if opts.sharded:
        merged, size, execution, failed = _compare_sharded(ag, graph_path, names, ran, x, dt, tol, chunk, opts)
        execution["wall_s"] = time.monotonic() - began  # with the cluster's start and close
    else:
        size = chunk_size(ag, n, steps, ran, chunk)
        merged = _Merged(ran)
        for start in range(0, n, size):
            if show_progress and size < n:
                why = " (records of all samples would not fit at once)" if chunk is None else ""
                print(
                    f"chunk {start // size + 1} of {-(-n // size)}: samples {start}-{min(n, start + size) - 1}{why}",
                    file=sys.stderr,
                    flush=True,
                )
            results = run_backends(ag, ran, x[start : start + size], dt, show_progress, backends)
            merged.add(ag, results, start, tol)
            del results  # a chunk's records are freed before the next chunk runs
        execution, failed = None, []  # the report as it always was
    report = {
        "graph": str(graph_path),
        "dt": dt,
        "input": input_desc,
        "samples": n,
        "steps": steps,
        "reference": ran[0],
        "requested": list(names),
        "refused": [refusal(e) for e in refused],
        "conventions": dict(conventions or {}),
        "backends": {},
        "pairs": [],
        "accuracy_how": readout_description(ag),
        "chunks": {"size": size, "count": -(-n // size), "how": CHUNKS_HOW},
        "plotted_samples": {"start": merged.kept_start, "count": 1, "how": PLOTTED_HOW},
        "tolerances": {
            "min_spike_agreement": tol.min_spike_agreement,
            "min_prediction_agreement": tol.min_prediction_agreement,
        },
    }
    if execution is not None:
        report["execution"], report["failed_shards"] = execution, failed
    compared = n
    if failed:
        keep = np.ones(n, dtype=bool)
        for f in failed:
            keep[f["samples"][0] : f["samples"][1] + 1] = False
        compared = int(keep.sum())
        labels = None if labels is None else labels[keep]
        report["samples_compared"] = compared
        report["failed_shards_how"] = FAILED_HOW
    _fill_backends(report, ag, merged, labels, target, compared)
    if check_samples:
        report["integration_check"] = integration_check(ag, x, dt, check_samples)
    if twin is not None and "skipped" in twin:
        report["ann_twin_skipped"] = twin["skipped"]
    elif twin is not None:
        report["ann_twin"] = twin_section(twin, report, ag.graph)
    report["passed"] = not refused and not failed and all(p["passed"] for p in report["pairs"])
    return report, merged.kept


def _compare_sharded(ag: AnalysedGraph, graph_path, names, ran, x, dt, tol, chunk, opts: S.ShardOptions):
    """The chunks run as shards (see :mod:`.shards`): (merged, shard size, execution, failed shards)."""
    n, steps = int(x.shape[0]), int(x.shape[1])
    if chunk is not None:
        chunk_size(ag, n, steps, ran, chunk)  # a bad --chunk fails here
    manifest = S.ShardStore.manifest(opts.folder) if opts.resume and Path(opts.folder).is_dir() else None
    size = min(int(chunk), n) if chunk is not None else (int(manifest["size"]) if manifest else None)

    def store_for(size: int) -> Optional[S.ShardStore]:
        if opts.folder is None:
            return None
        tols = [tol.min_spike_agreement, tol.min_prediction_agreement]
        return S.store_for(opts.folder, ag.graph, x, dt, names, size, str(graph_path), {"tolerances": tols})

    payloads: Dict[int, dict] = {}

    def open_store(size: int):
        shards = S.plan(n, size)
        store = store_for(size)
        done = store.start(shards, opts.resume) if store is not None else {}
        payloads.update({i: _from_file(p) for i, p in done.items()})
        _prune_kept(payloads)
        return shards, store

    if size is not None:  # a resumed folder of another job is refused here, before any worker starts
        shards, store = open_store(size)
    needed = size is None or len(payloads) < len(shards)
    with S.executor_for(opts, S.forks(ran)) if needed else contextlib.nullcontext(None) as ex:
        if size is None:
            size = S.default_size(n, ex.slots if ex is not None else 1, chunk_size(ag, n, steps, ran, None))
            shards, store = open_store(size)

        def on_done(shard: S.Shard, result: dict) -> None:
            saved = store.save(shard, result) if store is not None else S.round_trip(result)
            payloads[shard.index] = _from_file(saved)
            _prune_kept(payloads)

        def make_job(shard: S.Shard, tag: str) -> CompareJob:
            return CompareJob(ag, tuple(ran), x[shard.start : shard.stop], dt, tol, shard.start, tag)

        timeout = opts.timeout_s or S.default_timeout(len(ag.nodes), ran, size, steps)
        outcome = S.run_shards(
            shards, compare_shard, make_job, on_done, opts, ex, resumed=sorted(payloads), timeout_s=timeout
        )
    if not payloads:
        first = min(outcome.failed, key=lambda f: f["shard"])
        raise BackendError(
            f"every shard failed ({len(outcome.failed)} of {len(shards)}); shard {first['shard']} "
            f"(samples {first['samples'][0]}-{first['samples'][1]}): {'; '.join(first['errors'])}"
        )
    merged = _Merged(ran)
    for i in sorted(payloads):
        merged.add_shard(payloads[i])
    assert merged.kept is not None, "the records of the plotted sample were freed"
    return merged, size, outcome.as_dict(), sorted(outcome.failed, key=lambda f: f["shard"])


def _fill_backends(report: dict, ag: AnalysedGraph, merged: _Merged, labels, target: str, n: int) -> None:
    """Per backend: accuracy, counts and energy; per pair: merged agreement and equal counts."""
    names = merged.names
    counts = {}
    for name in names:
        counts[name] = merge_counts(merged.counts[name])
        er = energy_report(ag, counts[name], target)
        energy = er["estimates"][er["headline"]]
        report["backends"][name] = {
            "accuracy": accuracy(np.concatenate(merged.preds[name]), labels),
            "samples": n,
            "synops_per_sample": energy["synops_per_sample"],
            "neuron_updates_per_sample": energy["neuron_updates_per_sample"],
            "energy_nj_per_sample": energy["energy_nj_per_sample"],
            "energy": energy,
            "ops": er["ops"],
            "estimates": er["estimates"],
            "info": _merge_infos(merged.infos[name]),
        }
        if name == names[0]:
            report["energy"] = {"headline": er["headline"], "from_backend": name, "mapping": er["mapping"]}
    for other in names[1:]:
        pair = merge_pairs(
            merged.pairs[other],
            Tolerances(report["tolerances"]["min_spike_agreement"], report["tolerances"]["min_prediction_agreement"]),
        )
        pair["spikes_equal"] = all(v["mismatches"] == 0 for v in pair["nodes"].values())
        pair["counts_equal"] = counts_equal(counts[names[0]], counts[other])
        pair["counts_how"] = COUNTS_HOW
        report["pairs"].append(pair)


def one_sample(results: Dict[str, RunResult], i: int) -> Dict[str, RunResult]:
    """Copies of every backend's records of sample ``i`` only (batch axis kept, length 1): what the
    report's plots need, without keeping a whole chunk's records alive."""
    return {
        name: RunResult(
            backend=r.backend,
            outputs={n: a[i : i + 1].copy() for n, a in r.outputs.items()},
            states={n: {k: a[i : i + 1].copy() for k, a in st.items()} for n, st in r.states.items()},
            info=r.info,
        )
        for name, r in results.items()
    }


def _merge_infos(infos: List[dict]) -> dict:
    """A backend's run info over chunks: wall time summed, the rest from the first chunk."""
    info = S.jsonable_part(infos[0])
    if len(infos) > 1:
        info["wall_s"] = sum(float(i.get("wall_s", 0.0)) for i in infos)
        info["chunks"] = len(infos)
    return info
