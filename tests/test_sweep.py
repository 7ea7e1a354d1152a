"""snndeploy sweep: the accuracy-energy trade-off over T x encoding x spike-rate penalty (issue 18)."""

import json

import pytest

from snndeploy.errors import InputError
from snndeploy.train.sweep import pareto, sweep


@pytest.mark.slow
def test_sweep_writes_points_front_and_plot(tmp_path):
    rep = sweep(
        "digits_mlp",
        tmp_path / "s",
        steps=[8],
        encodings=["poisson", "latency"],
        penalties=[0.0, 5.0],
        epochs=3,
        samples=100,
    )
    saved = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert len(saved["points"]) == 4 and saved["pareto"] == rep["pareto"]
    for p in saved["points"]:
        for target in ("loihi", "ann_fp32_45nm", "ann_int8_45nm"):
            assert p["energy"][target]["low"]["nj"] <= p["energy"][target]["high"]["nj"]
        assert set(p["vs_twin"]) == {"ann_fp32_45nm", "ann_int8_45nm"}
    # the penalty lowers the hidden spike rate of the rate-coded point (same seed, same data)
    by = {(p["encoding"], p["spike_rate_penalty"]): p for p in saved["points"]}
    assert by[("poisson", 5.0)]["spike_rate"] < by[("poisson", 0.0)]["spike_rate"]
    # the front recomputed here: a point is on it iff no other point is at least as accurate and cheaper
    pts = saved["points"]
    hi = [p["energy"]["loihi"]["high"]["nj"] for p in pts]
    expected = [
        i
        for i, p in enumerate(pts)
        if not any(
            q["accuracy"] >= p["accuracy"] and hi[j] <= hi[i] and (q["accuracy"] > p["accuracy"] or hi[j] < hi[i])
            for j, q in enumerate(pts)
            if j != i
        )
    ]
    assert saved["pareto"] == expected and expected
    html = (tmp_path / "s" / "report.html").read_text()
    assert "Pareto front" in html and "data:image/png;base64," in html
    assert "ANN twin: accuracy" in (tmp_path / "s" / "report.md").read_text()


def test_pareto_by_hand():
    def pt(acc, e):
        return {"accuracy": acc, "energy": {"loihi": {"high": {"nj": e}}}}

    assert pareto([pt(0.9, 10), pt(0.8, 5), pt(0.85, 20), pt(0.8, 5)]) == [0, 1, 3]


def test_bad_sweep_grids_are_refused(tmp_path):
    with pytest.raises(InputError, match="encodings"):
        sweep("digits_mlp", tmp_path / "x", steps=[8], encodings=["morse"], penalties=[0.0])
    with pytest.raises(InputError, match="steps must be >= 1"):
        sweep("digits_mlp", tmp_path / "x", steps=[0], encodings=["poisson"], penalties=[0.0])
    assert not (tmp_path / "x").exists()


def test_sweep_command(tmp_path, capsys):
    from snndeploy.cli import main

    rc = main(
        ["sweep", "--model", "digits_mlp", "--steps", "8", "--encodings", "poisson", "--penalties", "0"]
        + ["--epochs", "2", "--samples", "50", "--device", "cpu", "--out", str(tmp_path / "sw")]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "sweep of digits_mlp on digits: 1 points" in out and "(Pareto)" in out and "ANN twin: accuracy" in out
    assert (tmp_path / "sw" / "report.html").is_file()
    assert main(["sweep", "--model", "digits_mlp", "--steps", "8,x", "--out", str(tmp_path / "bad")]) == 2
    assert "--steps must be comma-separated int values" in capsys.readouterr().err
