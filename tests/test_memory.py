"""A job whose records would not fit in memory is refused up front, with the numbers."""

import numpy as np
import pytest

from snndeploy.backends import get_backend
from snndeploy.cli import main
from snndeploy.errors import InputError
from snndeploy.harness import memory
from snndeploy.harness.compare import compare_runs
from snndeploy.ir import graph as G


def test_estimate_bounds_what_norse_records(paper):
    """The per-sample estimate must cover what a backend actually holds (outputs + v)."""
    g = G.load_graph(paper / "cnn_sinabs.nir")
    shape = G.input_spec(g).shape
    x = (np.random.default_rng(0).random((3, 6) + tuple(shape)) < 0.3).astype(np.float64)
    r = get_backend("norse").run(g, x, 1e-4)
    held = sum(a.nbytes for a in r.outputs.values()) + sum(a.nbytes for s in r.states.values() for a in s.values())
    est = memory.record_bytes_per_sample(g, 6, 1) * 3
    assert held <= est <= held + 2 * x.nbytes  # the two input copies are the only extra


def test_compare_too_big_even_for_one_sample_exits_2_and_writes_nothing(paper, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 2**14)  # 16 KiB: not even the input
    x = (np.random.default_rng(1).random((50, 40, 12)) < 0.3).astype(np.float32)
    np.savez(tmp_path / "in.npz", spikes=x)
    out = tmp_path / "rep"
    code = main(
        [
            "compare",
            str(paper / "braille_noDelay_bias_zero.nir"),
            "--backends",
            "norse,lava-float",
            "--input",
            str(tmp_path / "in.npz"),
            "--dt",
            "1e-4",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "50 samples x 40 steps" in err and "GiB available" in err and "fewer --samples" in err
    assert not out.exists() or not any(out.iterdir())


def _strip_timing(rep):
    rep = {k: v for k, v in rep.items() if k not in ("chunks", "plotted_samples")}
    rep["backends"] = {n: {k: v for k, v in b.items() if k != "info"} for n, b in rep["backends"].items()}
    return rep


@pytest.mark.slow
def test_compare_in_chunks_when_records_do_not_fit_equals_one_run(paper, monkeypatch):
    """Too big for memory at once: compare runs in chunks, and every figure equals the one-run figure."""
    g = G.load_graph(paper / "braille_noDelay_bias_zero.nir")
    x = (np.random.default_rng(1).random((23, 40, 12)) < 0.3).astype(np.float64)
    labels = np.random.default_rng(2).integers(0, 7, 23)
    names = ["norse", "lava-float"]
    whole, _ = compare_runs(g, "b.nir", names, x, labels, 1e-4, "test", show_progress=False)
    assert whole["chunks"]["count"] == 1
    per = memory.record_bytes_per_sample(g, 40, 2)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: int(per * 20 / memory.MEMORY_HEADROOM))
    chunked, kept = compare_runs(g, "b.nir", names, x, labels, 1e-4, "test", show_progress=False)
    assert chunked["chunks"]["count"] >= 2 and chunked["chunks"]["size"] < 23
    assert {k: chunked["plotted_samples"][k] for k in ("start", "count")} == {"start": 0, "count": 1}
    out = G.io_nodes(g)[1]
    assert np.array_equal(kept["norse"].outputs[out], get_backend("norse").run(g, x[:1], 1e-4).outputs[out])
    assert _strip_timing(chunked) == _strip_timing(whole)
    assert chunked["backends"]["lava-float"]["info"]["chunks"] == chunked["chunks"]["count"]


def test_suggested_sample_count_fits(paper, monkeypatch):
    g = G.load_graph(paper / "braille_noDelay_bias_zero.nir")
    per = memory.record_bytes_per_sample(g, 40, 2)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: int(per * 10 / memory.MEMORY_HEADROOM))
    memory.check_memory(g, 10, 40, ["norse", "lava-float"])  # exactly fits: no error
    with pytest.raises(InputError, match="At most 10 samples fit"):
        memory.check_memory(g, 11, 40, ["norse", "lava-float"])


@pytest.mark.slow
def test_cli_compare_with_chunk_option(paper, tmp_path, capsys):
    import json

    x = (np.random.default_rng(3).random((9, 40, 12)) < 0.3).astype(np.float32)
    np.savez(tmp_path / "in.npz", spikes=x, labels=np.arange(9) % 7)
    args = [
        "compare",
        str(paper / "braille_noDelay_bias_zero.nir"),
        "--backends",
        "norse,lava-float",
        "--input",
        str(tmp_path / "in.npz"),
        "--dt",
        "1e-4",
    ]
    assert main(args + ["--out", str(tmp_path / "bad"), "--chunk", "0"]) == 2
    assert "--chunk must be a positive number of samples, got 0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
    assert main(args + ["--out", str(tmp_path / "rep"), "--chunk", "4"]) == 0
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["chunks"]["size"] == 4 and rep["chunks"]["count"] == 3 and rep["samples"] == 9
    assert rep["pairs"][0]["nodes"]["lif1.lif"]["entries"] == 9 * 40 * 38  # every sample counted once
    assert "Agreement per layer over time (all 9 samples)" in (tmp_path / "rep" / "report.html").read_text()


class _FlipOneSpike:
    """norse, but one spike of sample ``at`` flipped: a backend that diverges in a known place."""

    name = "flip"

    def __init__(self, at):
        from snndeploy.backends.norse import NorseBackend

        self.inner, self.at = NorseBackend(), at
        self.supports = self.inner.supports

    def check(self, graph, dt):
        self.inner.check(graph, dt)

    def check_input(self, x):
        self.inner.check_input(x)

    def run(self, graph, spikes, dt, progress=None):
        r = self.inner.run(graph, spikes, dt)
        outs = {k: v.copy() for k, v in r.outputs.items()}
        local = self.at - self.start
        if 0 <= local < len(spikes):
            outs["lif1.lif"][local, 5, 3] = 1 - outs["lif1.lif"][local, 5, 3]
        self.start += len(spikes)
        return type(r)(backend="flip", outputs=outs, states=r.states, info=r.info)


def test_plots_show_the_sample_where_backends_first_diverge(paper, monkeypatch):
    from snndeploy import backends

    flip = _FlipOneSpike(at=9)
    flip.start = 0
    monkeypatch.setitem(backends.BACKENDS, "flip", lambda **kw: flip)
    g = G.load_graph(paper / "braille_noDelay_bias_zero.nir")
    x = (np.random.default_rng(1).random((14, 40, 12)) < 0.3).astype(np.float64)
    rep, kept = compare_runs(g, "b.nir", ["norse", "flip"], x, None, 1e-4, "test", show_progress=False, chunk=4)
    assert rep["pairs"][0]["first_divergence"] == {"node": "lif1.lif", "sample": 9, "step": 5, "neuron": 3}
    per_step = rep["pairs"][0]["nodes"]["lif1.lif"]["mismatches_per_step"]
    assert len(per_step) == 40 and per_step[5] == 1 and sum(per_step) == 1  # merged over the chunks
    assert {k: rep["plotted_samples"][k] for k in ("start", "count")} == {"start": 9, "count": 1}
    assert np.array_equal(
        kept["norse"].outputs["lif1.lif"], get_backend("norse").run(g, x[9:10], 1e-4).outputs["lif1.lif"]
    )
    assert kept["flip"].outputs["lif1.lif"][0, 5, 3] != kept["norse"].outputs["lif1.lif"][0, 5, 3]
    from snndeploy.report.html import render_html

    html = render_html(rep, kept, g)
    assert "Spikes, sample 9" in html and "Agreement per layer over time (all 14 samples)" in html


class _WatchRecords:
    """norse, remembering weak references to what it returned: a chunk's records must be freed
    before the next chunk runs (only one sample's copy is kept for the plots)."""

    name = "watch"

    def __init__(self):
        from snndeploy.backends.norse import NorseBackend

        self.inner, self.previous, self.alive_at_next_run = NorseBackend(), [], []
        self.supports = self.inner.supports

    def check(self, graph, dt):
        self.inner.check(graph, dt)

    def check_input(self, x):
        self.inner.check_input(x)

    def run(self, graph, spikes, dt, progress=None):
        import gc
        import weakref

        gc.collect()
        self.alive_at_next_run.append(sum(ref() is not None for ref in self.previous))
        r = self.inner.run(graph, spikes, dt)
        self.previous = [weakref.ref(a) for a in r.outputs.values()]
        return r


def test_a_chunks_records_are_freed_before_the_next_chunk_runs(paper, monkeypatch):
    from snndeploy import backends

    watch = _WatchRecords()
    monkeypatch.setitem(backends.BACKENDS, "watch", lambda **kw: watch)
    g = G.load_graph(paper / "braille_noDelay_bias_zero.nir")
    x = (np.random.default_rng(1).random((12, 40, 12)) < 0.3).astype(np.float64)
    compare_runs(g, "b.nir", ["norse", "watch"], x, None, 1e-4, "test", show_progress=False, chunk=4)
    assert watch.alive_at_next_run == [0, 0, 0]
