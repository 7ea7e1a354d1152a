"""A job whose records would not fit in memory is refused up front, with the numbers."""

import numpy as np
import pytest

from snndeploy import graph as G
from snndeploy import pipeline
from snndeploy.backends import get_backend
from snndeploy.cli import main
from snndeploy.errors import InputError


def test_estimate_bounds_what_norse_records(paper):
    """The per-sample estimate must cover what a backend actually holds (outputs + v)."""
    g = G.load_graph(paper / "cnn_sinabs.nir")
    shape = G.input_spec(g).shape
    x = (np.random.default_rng(0).random((3, 6) + tuple(shape)) < 0.3).astype(np.float64)
    r = get_backend("norse").run(g, x, 1e-4)
    held = sum(a.nbytes for a in r.outputs.values()) + sum(a.nbytes for s in r.states.values() for a in s.values())
    est = pipeline.record_bytes_per_sample(g, 6, 1) * 3
    assert held <= est <= held + 2 * x.nbytes  # the two input copies are the only extra


def test_compare_too_big_for_memory_exits_2_and_writes_nothing(paper, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "available_memory_bytes", lambda: 2**20)  # 1 MiB
    x = (np.random.default_rng(1).random((50, 40, 12)) < 0.3).astype(np.float32)
    np.savez(tmp_path / "in.npz", spikes=x)
    out = tmp_path / "rep"
    code = main(["compare", str(paper / "braille_noDelay_bias_zero.nir"), "--backends", "norse,lava-float",
                 "--input", str(tmp_path / "in.npz"), "--dt", "1e-4", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "50 samples x 40 steps on 2 backend(s)" in err and "GiB available" in err and "--samples" in err
    assert not out.exists() or not any(out.iterdir())


def test_suggested_sample_count_fits(paper, monkeypatch):
    g = G.load_graph(paper / "braille_noDelay_bias_zero.nir")
    per = pipeline.record_bytes_per_sample(g, 40, 2)
    monkeypatch.setattr(pipeline, "available_memory_bytes", lambda: int(per * 10 / pipeline.MEMORY_HEADROOM))
    pipeline.check_memory(g, 10, 40, ["norse", "lava-float"])  # exactly fits: no error
    with pytest.raises(InputError, match="--samples 10 or fewer"):
        pipeline.check_memory(g, 11, 40, ["norse", "lava-float"])
