"""The Python API: what a user's train-then-export script or CI test calls. The CLI is a thin layer
over it (:mod:`snndeploy.cli`).

::

    import snndeploy

    graph = snndeploy.load("model.nir")                      # or a nir.NIRGraph
    result = snndeploy.run(graph, spikes, "lava-float")       # records per NIR node, NIR timeline
    report = snndeploy.compare(graph, spikes, ["norse", "lava-float"], labels=labels)
    report.passed, report.first_divergence, report.to_json()
    report.write("out/")                                      # report.json, report.md, report.html

Errors are :class:`snndeploy.errors.SnnDeployError` subclasses naming what and where.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .errors import InputError

DEFAULT_BACKENDS = ("norse", "lava-float")


def load(path):
    """Read and validate a NIR file (errors name the file and the cause)."""
    from .ir import graph as G

    return G.load_graph(path)


def export(model, input_shape, dt: float, path=None, config: Optional[dict] = None):
    """A Norse model of this project's shape (an ordered ``layers`` ModuleDict, see
    :mod:`snndeploy.train.networks`) as a ``nir.NIRGraph``; written atomically to ``path`` if given."""
    from .frontends.norse import to_nir
    from .ir.graph import save_graph

    graph = to_nir(model, input_shape, dt, config)
    if path is not None:
        save_graph(graph, path)
    return graph


def _graph_and_conventions(graph, dt: Optional[float], exporter: Optional[str]):
    """(analysed graph, Conventions): a path is read (repairs noted), then the exporter profile applies."""
    from .ir import graph as G
    from .ir.analysed import analyse
    from .ir.exporters import prepare

    where, notes = "graph", []
    if isinstance(graph, (str, Path)):
        where = f"graph '{graph}'"
        graph, notes = G.read_graph(graph)
    graph, conv = prepare(graph, exporter, dt, where=where, notes=notes)
    return analyse(graph, where=where), conv


def run(
    graph,
    spikes: np.ndarray,
    backend: str = "norse",
    dt: Optional[float] = None,
    exporter: Optional[str] = None,
    chunk: Optional[int] = None,
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
    shard_timeout: Optional[float] = None,
):
    """Run one backend: a :class:`~snndeploy.backends.RunResult` (``outputs[node]`` is (batch, time,
    *shape) on the NIR timeline; ``states[node]["v"]`` where recorded). ``graph``: a path or a NIR graph;
    ``dt`` in seconds, needed when neither the graph nor ``exporter`` supplies one; ``exporter``: the
    framework that wrote the graph (``snndeploy.ir.exporters.EXPORTERS``; docs/exporters.md).
    ``chunk``/``workers``/``scheduler``/``shard_timeout``: run in shards of ``chunk`` samples, on a local
    Dask cluster of ``workers`` processes or an existing one (:mod:`snndeploy.harness.shards`)."""
    from .harness.run import run_backends, run_sharded
    from .harness.shards import ShardOptions
    from .ir import graph as G

    opts = ShardOptions(workers, scheduler, shard_timeout, progress=False)
    ag, conv = _graph_and_conventions(graph, dt, exporter)
    x = G.check_input(ag.graph, spikes)
    if opts.distributed or chunk is not None:
        result = run_sharded(ag, backend, x, conv.dt, chunk, opts)
    else:
        result = run_backends(ag, [backend], x, conv.dt, show_progress=False)[backend]
    result.info["conventions"] = conv.as_dict()
    return result


@dataclass(frozen=True, eq=False)
class Report:
    """A comparison: the report dict (``data``, as ``report.json``) and what rendering it needs."""

    data: dict
    results: Dict[str, object]  # one sample's RunResults per backend, for the HTML plots
    graph: object  # the analysed graph

    @property
    def passed(self) -> bool:
        return bool(self.data["passed"])

    @property
    def pairs(self) -> List[dict]:
        return self.data["pairs"]

    @property
    def first_divergence(self) -> Optional[dict]:
        """The earliest divergence over all pairs: {pair, node, sample, step, neuron}, or None."""
        found = [
            dict(p["first_divergence"], pair=f"{p['a']} vs {p['b']}")
            for p in self.pairs
            if p["first_divergence"] is not None
        ]
        return min(found, key=lambda d: (d["sample"], d["step"]), default=None)

    def to_json(self) -> str:
        from .util.files import json_bytes

        return json_bytes(self.data).decode()

    def markdown(self) -> str:
        from .report.markdown import render_markdown

        return render_markdown(self.data)

    def junit(self) -> str:
        from .report.junit import render_junit

        return render_junit(self.data)

    def summary(self) -> str:
        from .report.markdown import summary

        return summary(self.data)

    def write(self, out_dir, junit: bool = False) -> List[Path]:
        """``report.json``, ``report.md``, ``report.html`` (and ``report.junit.xml``) under ``out_dir``,
        all or none (the same files as ``snndeploy compare``)."""
        from .report.html import render_html
        from .util.files import json_bytes, write_files

        files = {
            "report.json": json_bytes(self.data),
            "report.md": self.markdown().encode(),
            "report.html": render_html(self.data, self.results, self.graph).encode(),
        }
        if junit:
            files["report.junit.xml"] = self.junit().encode()
        return write_files(out_dir, files)


def compare(
    graph,
    spikes: np.ndarray,
    backends: Sequence[str] = DEFAULT_BACKENDS,
    labels: Optional[np.ndarray] = None,
    tolerances=None,
    dt: Optional[float] = None,
    target: str = "loihi",
    chunk: Optional[int] = None,
    input_desc: str = "spikes given by the caller",
    show_progress: bool = False,
    exporter: Optional[str] = None,
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
    shard_timeout: Optional[float] = None,
    shards_dir=None,
    resume: bool = False,
    integration_samples: Optional[int] = None,
) -> Report:
    """Run every backend on the same input and compare them with the first (the reference).
    ``tolerances``: a :class:`~snndeploy.harness.agreement.Tolerances` or a dict with
    ``min_spike_agreement`` / ``min_prediction_agreement``. ``workers``/``scheduler``: run the chunks
    as shards on a local Dask cluster of ``workers`` processes or an existing one, each limited to
    ``shard_timeout`` seconds; ``shards_dir``: write each finished shard there; ``resume``: load the
    shards already there (:mod:`snndeploy.harness.shards`). ``integration_samples``: brian2 with forward
    Euler against exact integration on that many samples, in ``report.data["integration_check"]``
    (default: 32 when ``brian2`` is compared, else off; :mod:`snndeploy.harness.integration`)."""
    from .harness.agreement import Tolerances
    from .harness.compare import compare_runs
    from .harness.shards import ShardOptions

    shards = ShardOptions(
        workers,
        scheduler,
        shard_timeout,
        folder=None if shards_dir is None else Path(shards_dir),
        resume=resume,
        progress=show_progress,
    )

    if tolerances is None:
        tol = Tolerances()
    elif isinstance(tolerances, dict):
        unknown = set(tolerances) - {"min_spike_agreement", "min_prediction_agreement"}
        if unknown:
            raise InputError(
                f"tolerances: unknown keys {sorted(unknown)}; known: min_spike_agreement, min_prediction_agreement"
            )
        tol = Tolerances(**tolerances)
    else:
        tol = tolerances
    path = str(graph) if isinstance(graph, (str, Path)) else "(in memory)"
    ag, conv = _graph_and_conventions(graph, dt, exporter)
    data, kept = compare_runs(
        ag,
        path,
        list(backends),
        spikes,
        labels,
        conv.dt,
        input_desc,
        tol,
        target,
        show_progress=show_progress,
        chunk=chunk,
        conventions=conv.as_dict(),
        shards=shards,
        integration_samples=integration_samples,
    )
    return Report(data, kept, ag)
