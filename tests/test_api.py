"""The Python API, the testing helper and the CI outputs (JUnit, summary)."""

import json
import xml.etree.ElementTree as ET

import nir
import numpy as np
import pytest

import snndeploy
from snndeploy.cli import main
from snndeploy.testing import assert_equivalent

DT = 1e-3


def _graph(weight_scale=1.0, n_in=12, n_hid=24, n_out=5, seed=0):
    rng = np.random.default_rng(seed)

    def lif(n):
        return nir.LIF(
            tau=np.full(n, 2e-2), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 1.0), v_reset=np.zeros(n)
        )

    nodes = {
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Affine(weight=weight_scale * rng.uniform(-2, 6, (n_hid, n_in)), bias=np.zeros(n_hid)),
        "lif1": lif(n_hid),
        "fc2": nir.Affine(weight=weight_scale * rng.uniform(-2, 6, (n_out, n_hid)), bias=np.zeros(n_out)),
        "lif2": lif(n_out),
        "out": nir.Output(output_type={"output": np.array([n_out])}),
    }
    edges = [("in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT})


def _spikes(n=6, t=30, n_in=12, seed=1):
    return (np.random.default_rng(seed).random((n, t, n_in)) < 0.4).astype(np.float64)


def test_run_and_compare_from_python(tmp_path):
    g = _graph()
    nir.write(str(tmp_path / "g.nir"), g)
    x = _spikes()
    res = snndeploy.run(str(tmp_path / "g.nir"), x, "norse")
    assert res.outputs["lif1"].shape == (6, 30, 24) and res.outputs["lif1"].sum() > 0
    rep = snndeploy.compare(snndeploy.load(tmp_path / "g.nir"), x, ["norse", "lava-float"], labels=np.arange(6) % 5)
    assert rep.passed and rep.first_divergence is None
    assert json.loads(rep.to_json())["pairs"][0]["nodes"]["lif1"]["mismatches"] == 0
    written = rep.write(tmp_path / "rep", junit=True)
    assert sorted(p.name for p in written) == ["report.html", "report.json", "report.junit.xml", "report.md"]


def test_assert_equivalent_passes_on_equal_backends():
    rep = assert_equivalent(_graph(), _spikes(), ["norse", "lava-float"])
    assert rep.passed


def test_assert_equivalent_names_the_first_divergence_of_differing_backends():
    g, x = _graph(weight_scale=0.37, seed=3), _spikes(n=8, seed=4)
    ref = snndeploy.run(g, x, "norse").outputs
    emu = snndeploy.run(g, x, "loihi-emu").outputs
    differ = np.argwhere(ref["lif1"] != emu["lif1"])
    assert len(differ), "this case must make fixed point differ from float (else the test proves nothing)"
    with pytest.raises(AssertionError) as e:
        assert_equivalent(g, x, ["norse", "loihi-emu"], min_spike_agreement=1.0)
    msg = str(e.value)
    assert "loihi-emu differs from norse" in msg
    b, t, n = differ[0]  # argwhere is lexicographic: the earliest sample, step, neuron of lif1
    assert f"node 'lif1', sample {b}, step {t}, neuron {n}" in msg


def test_assert_equivalent_refuses_a_silent_reference():
    with pytest.raises(AssertionError, match="does not spike on this input"):
        assert_equivalent(_graph(weight_scale=0.0), _spikes(), ["norse", "lava-float"])


def test_compare_writes_junit_and_prints_a_summary(tmp_path, capsys):
    g = _graph(weight_scale=0.37, seed=3)
    nir.write(str(tmp_path / "g.nir"), g)
    np.savez(tmp_path / "in.npz", spikes=_spikes(n=8, seed=4))
    rc = main(
        [
            "compare",
            str(tmp_path / "g.nir"),
            "--backends",
            "norse,loihi-emu",
            "--input",
            str(tmp_path / "in.npz"),
            "--out",
            str(tmp_path / "rep"),
            "--junit",
            str(tmp_path / "ci.xml"),
            "--min-spike-agreement",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 1
    assert out.startswith("snndeploy comparison: NOT PASSED") and len(out.splitlines()) <= 6
    assert "worst node" in out and "first divergence: node lif1" in out
    suite = ET.parse(tmp_path / "ci.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["spikes.lif1", "spikes.lif2", "predictions"]
    assert {c.get("classname") for c in cases} == {"snndeploy.norse_vs_loihi-emu"}
    failed = [c for c in cases if c.find("failure") is not None]
    assert failed and "first divergence: sample" in failed[0].find("failure").get("message")
    assert int(suite.get("failures")) == len(failed) and int(suite.get("tests")) == 3


def test_verbose_prints_the_whole_report(tmp_path, capsys):
    nir.write(str(tmp_path / "g.nir"), _graph())
    np.savez(tmp_path / "in.npz", spikes=_spikes())
    main(
        [
            "compare",
            str(tmp_path / "g.nir"),
            "--backends",
            "norse,loihi-emu",
            "--input",
            str(tmp_path / "in.npz"),
            "--out",
            str(tmp_path / "rep"),
            "--verbose",
        ]
    )
    assert capsys.readouterr().out.startswith("# snndeploy comparison")


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"snndeploy {snndeploy.__version__}"


@pytest.mark.parametrize("bad", [{"min_spike_agreement": 1.5}, {"min_prediction_agreement": float("nan")}])
def test_tolerances_outside_0_1_are_refused_by_name(bad):
    from snndeploy.errors import InputError

    with pytest.raises(InputError, match=f"{next(iter(bad))} .* must be within \\[0, 1\\]"):
        snndeploy.compare(_graph(), _spikes(), ["norse", "loihi-emu"], tolerances=bad)
