"""Loihi fixed point: quantization rules, loihi-emu == lava-fixed bit for bit, conformance, bad input.

Conformance (lif_norse.nir, dt = 1e-4, paper's input spikes): both fixed backends fire at NIR
steps 460, 510, 710, 760, like the Loihi 2 chip (raw steps 461, 511, 711, 761 = the same spikes
seen through Lava's one-step Dense delay). The paper quantized this graph to vth = 25
(raw 25 << 6 = 1600), weight 10 (raw 640 per input spike), dv = 164, i.e. 250 raw units per
volt-unit (v' = 0.1 -> 25). :mod:`snndeploy.quantize` picks the largest scale the threshold allows
(threshold at 2**22 raw): vth mantissa 65536 (raw 4194304), weight 205 << 7 (raw 1679360 per
spike, ratio to threshold 0.40039 instead of the exact 0.4), dv = 164 too. Voltages are thus
2621x the paper's raw values, with a finer decay rounding; the spike steps are the same.
"""

from __future__ import annotations

from dataclasses import replace

import nir
import numpy as np
import pytest
from conftest import CONFORMANCE as PAPER

from snndeploy.backends import get_backend
from snndeploy.errors import GraphError, InputError
from snndeploy.lower.fixed import quantize_plan, validate_fixed_plan
from snndeploy.lower.plan import build_plan
from snndeploy.lower.quantize import STATE_MAX, VTH_MAX, QuantizationError, representable_weights, round_half_away

PAPER_SPIKES = [460, 510, 710, 760]
DT = 1e-3


def two_layer_graph(seed: int, n_in=4, n_hid=5, n_out=3, **over):
    """Input -> Affine -> LIF -> Affine -> LIF -> Output with seeded random parameters."""
    rng = np.random.default_rng(seed)
    w1 = over.get("w1", rng.normal(0.6, 1.0, (n_hid, n_in)))
    w2 = over.get("w2", rng.normal(0.3, 1.0, (n_out, n_hid)))

    def lif(n, tau):
        return nir.LIF(
            tau=np.full(n, tau),
            r=np.ones(n),
            v_leak=np.zeros(n),
            v_threshold=np.full(n, over.get("vth", 1.0)),
            v_reset=np.zeros(n),
        )

    nodes = {
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Affine(weight=w1, bias=over.get("b1", rng.normal(0, 0.5, n_hid))),
        "lif1": lif(n_hid, over.get("tau1", 5e-3)),
        "fc2": nir.Affine(weight=w2, bias=over.get("b2", rng.normal(-0.2, 0.5, n_out))),
        "lif2": lif(n_out, over.get("tau2", 2e-2)),
        "out": nir.Output(output_type={"output": np.array([n_out])}),
    }
    return nir.NIRGraph(
        nodes=nodes, edges=[("in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "out")]
    )


def random_spikes(seed: int, batch=3, steps=40, n=4, p=0.3):
    """Batch with an all-zero sample first, then Poisson spikes."""
    x = (np.random.default_rng(seed + 100).random((batch, steps, n)) < p).astype(float)
    x[0] = 0
    return x


def assert_same(a, b):
    assert a.outputs.keys() == b.outputs.keys()
    for k in a.outputs:
        np.testing.assert_array_equal(a.outputs[k], b.outputs[k], err_msg=f"output {k}")
    assert a.states.keys() == b.states.keys()
    for n in a.states:
        for var in ("u", "v"):
            np.testing.assert_array_equal(a.states[n][var], b.states[n][var], err_msg=f"{n}.{var}")


def edge_plan(seed: int):
    """A quantized plan with hand-set integers that reach Loihi's edges.

    lif1: threshold exactly reached (vth 10 -> 640 raw, weights 10 -> 640 per spike, dv = 0:
    v == threshold does not spike, the next spike does); lif2: du = 0 (u keeps 4095/4096 per
    step) with 255 << 7 weights so u wraps at 24 bits, dv = 0 so v clips at +-(2**23 - 1),
    negative bias and inhibitory weights for negative voltages; threshold VTH_MAX.
    """
    fp = quantize_plan(build_plan(two_layer_graph(seed), DT, "test"))
    rng = np.random.default_rng(seed)
    n1, n2 = fp.neurons["lif1"], fp.neurons["lif2"]
    lif1 = replace(
        n1,
        du=np.full(5, 4095),
        dv=np.zeros(5, int),
        vth=np.full(5, 10),
        bias_mant=np.zeros(5, int),
        bias_exp=np.zeros(5, int),
    )
    lif2 = replace(
        n2,
        du=np.zeros(3, int),
        dv=np.zeros(3, int),
        vth=np.full(3, VTH_MAX),
        bias_mant=np.array([0, -4096, 4095]),
        bias_exp=np.array([0, 7, 3]),
    )
    w1 = np.full((5, 4), 10)
    w2 = np.where(rng.random((3, 5)) < 0.5, 254, -256)
    w2[0] = 254  # an all-excitatory row to push u to wrap and v to clip
    c1, c2 = fp.conns
    return replace(
        fp,
        neurons={"lif1": lif1, "lif2": lif2},
        conns=[replace(c1, weight=w1, weight_exp=0), replace(c2, weight=w2, weight_exp=7)],
    )


# --------------------------------------------------------------------------- quantization rules (fast)


def test_round_half_away_from_zero():
    np.testing.assert_array_equal(round_half_away(np.array([2.5, -2.5, 0.49, -0.5, 1.5])), [3, -3, 0, -1, 2])


def test_representable_weights_follow_lava_clip_and_truncate():
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    rng = np.random.default_rng(0)
    for w in (rng.integers(-300, 300, (6, 7)), rng.integers(0, 300, (6, 7)), -rng.integers(0, 300, (6, 7))):
        mode = determine_sign_mode(w)
        lava = truncate_weights(clip_weights(w, mode, num_bits=8), mode, 8)
        np.testing.assert_array_equal(representable_weights(w), lava)


def test_lif_norse_quantization_report():
    fp = quantize_plan(build_plan(nir.read(PAPER / "lif_norse.nir"), 1e-4, "test"))
    rep = fp.report_dict()["1"]
    assert rep["dv"] == (164,) and rep["du"] == (4095,)
    assert rep["vth_mant"] == (65536, 65536) and rep["scale_limited_by"] == "threshold"
    (conn,) = rep["conns"]
    assert conn["weight_exp"] == 7 and conn["n_clipped"] == 0 and conn["n_zero"] == 0
    assert fp.conns[0].weight.tolist() == [[205]]
    assert rep["headroom_bits"] > 0


@pytest.mark.parametrize("seed", range(20))
def test_random_plans_are_representable(seed):
    fp = quantize_plan(build_plan(two_layer_graph(seed), DT, "test"))
    validate_fixed_plan(fp)
    for r in fp.report:
        assert isinstance(r.headroom_bits, float)  # worst case; may be < 0 (v then clips, see docs)
        assert r.max_step_input_raw < STATE_MAX // 2
        for c in r.conns:
            assert c.n_clipped == 0 and 0 <= c.weight_exp <= 7


def test_emulator_tracks_float_plan():
    """Quantization error is small: loihi-emu voltages / scale follow lava-float's closely."""
    pytest.importorskip("torch")
    g = two_layer_graph(3)
    x = random_spikes(3, batch=2, steps=30)
    emu = get_backend("loihi-emu", device="cpu").run(g, x, DT)
    scale = emu.info["quantization"]["lif1"]["scale"]
    fp = quantize_plan(build_plan(g, DT, "test"))
    assert scale == fp.neurons["lif1"].scale
    v = emu.states["lif1"]["v"] / scale
    assert np.all(np.abs(v) < 5)  # same order as the float threshold 1.0


# --------------------------------------------------------------------------- bad input (fast)


def test_weights_too_small_for_threshold():
    g = two_layer_graph(1, w1=np.full((5, 4), 1e-9))
    with pytest.raises(QuantizationError, match=r"layer 'lif1'.*weight.*fc1.*quantize to 0"):
        quantize_plan(build_plan(g, DT, "test"))


def test_threshold_too_small_for_weights():
    g = two_layer_graph(1, vth=1e-9)
    with pytest.raises(QuantizationError, match=r"layer 'lif1' field 'vth' = 1e-09.*rounds to 0"):
        quantize_plan(build_plan(g, DT, "test"))


def test_nan_parameter_named():
    plan = build_plan(two_layer_graph(1), DT, "test")
    w = plan.conns[1].weight.copy()
    w[1, 2] = np.nan
    bad = replace(plan, conns=[plan.conns[0], replace(plan.conns[1], weight=w)])
    with pytest.raises(QuantizationError, match=r"layer 'lif2' field 'weight \(from 'fc2'\)' = nan"):
        quantize_plan(bad)
    nl = plan.neurons["lif1"]
    bad = replace(plan, neurons={**plan.neurons, "lif1": replace(nl, bias=np.full(nl.size, np.inf))})
    with pytest.raises(GraphError, match=r"'lif1' field 'bias' = inf"):
        quantize_plan(bad)


@pytest.mark.parametrize("dv, msg", [(1.0, "4096"), (1.5, "6144"), (-0.1, "-409.6")])
def test_decay_out_of_range(dv, msg):
    plan = build_plan(two_layer_graph(1), DT, "test")
    nl = plan.neurons["lif2"]
    bad = replace(plan, neurons={**plan.neurons, "lif2": replace(nl, dv=np.full(nl.size, dv))})
    with pytest.raises(QuantizationError, match=rf"layer 'lif2' field 'dv' = {dv}.*{msg}"):
        quantize_plan(bad)


def test_du_zero_is_the_du_plus_one_trap():
    plan = build_plan(two_layer_graph(1), DT, "test")
    nl = plan.neurons["lif1"]
    bad = replace(plan, neurons={**plan.neurons, "lif1": replace(nl, du=np.zeros(nl.size))})
    with pytest.raises(QuantizationError, match=r"'lif1' field 'du' = 0.0.*adds 1"):
        quantize_plan(bad)


def test_unrepresentable_hand_set_integers():
    fp = edge_plan(0)
    c1, c2 = fp.conns
    w = c2.weight.copy()
    w[0, 0] = 253  # odd in a mixed-sign matrix: Lava drops the lowest bit
    with pytest.raises(QuantizationError, match=r"'lif2' field 'weight \(from 'fc2'\)' = 253.*252"):
        validate_fixed_plan(replace(fp, conns=[c1, replace(c2, weight=w)]))
    n1 = fp.neurons["lif1"]
    with pytest.raises(QuantizationError, match=r"'lif1' field 'vth' = 131072"):
        validate_fixed_plan(replace(fp, neurons={**fp.neurons, "lif1": replace(n1, vth=np.full(5, VTH_MAX + 1))}))


def test_fixed_backends_refuse_graded_input():
    g = two_layer_graph(1)
    with pytest.raises(InputError, match=r"binary spikes.*0.5"):
        get_backend("loihi-emu").run(g, np.full((1, 3, 4), 0.5), DT)


# --------------------------------------------------------------------------- emulator (fast)


def test_emulator_reaches_edges():
    pytest.importorskip("torch")
    from snndeploy.backends.loihi_emu import LoihiEmuBackend

    x = np.ones((1, 30, 4))
    r = LoihiEmuBackend(device="cpu").run_fixed(edge_plan(0), x)
    assert r.states["lif1"]["v"][0, :, 0].tolist() == [0] * 30  # 4 x 640 > 640 every step: spike, reset
    assert r.outputs["lif1"][0].all()
    u2, v2 = r.states["lif2"]["u"][0], r.states["lif2"]["v"][0]
    assert np.any((u2[:-1] > 2**22) & (u2[1:] < -(2**22)))  # u wrapped at 24 bits
    assert v2.min() == -STATE_MAX  # v clipped


def test_value_equal_to_threshold_does_not_spike():
    pytest.importorskip("torch")
    from snndeploy.backends.loihi_emu import LoihiEmuBackend

    x = np.zeros((1, 4, 4))
    x[0, 0, 0] = 1  # one spike: v = 10 << 6 = 640 = vth << 6
    x[0, 2, 0] = 1
    r = LoihiEmuBackend(device="cpu").run_fixed(edge_plan(0), x)
    assert r.states["lif1"]["v"][0, :, 0].tolist() == [640, 640, 0, 0]
    assert r.outputs["lif1"][0, :, 0].tolist() == [0, 0, 1, 0]


@pytest.mark.gpu
def test_emulator_cuda_equals_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    g, x = two_layer_graph(5), random_spikes(5, batch=8, steps=50)
    assert_same(
        get_backend("loihi-emu", device="cpu").run(g, x, DT), get_backend("loihi-emu", device="cuda").run(g, x, DT)
    )


def test_conformance_lif_norse_emulator():
    pytest.importorskip("torch")
    g = nir.read(PAPER / "lif_norse.nir")
    x = np.loadtxt(PAPER / "lif_norse.csv", delimiter=",")[:, 0].reshape(1, 1000, 1)
    r = get_backend("loihi-emu", device="cpu").run(g, x, 1e-4)
    assert np.flatnonzero(r.outputs["output"][0, :, 0]).tolist() == PAPER_SPIKES


# --------------------------------------------------------------------------- against Lava


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_emulator_equals_lava_fixed_random(seed):
    g = two_layer_graph(seed, tau1=[2e-3, 5e-3, 2e-2][seed])
    x = random_spikes(seed)
    lava = get_backend("lava-fixed").run(g, x, DT)
    emu = get_backend("loihi-emu", device="cpu").run(g, x, DT)
    assert_same(emu, lava)
    assert lava.outputs["lif1"].any()  # something happened
    assert lava.states["lif2"]["v"].min() < 0


@pytest.mark.lava
@pytest.mark.slow
def test_emulator_equals_lava_fixed_at_the_edges():
    from snndeploy.backends.lava_fixed import LavaFixedBackend
    from snndeploy.backends.loihi_emu import LoihiEmuBackend

    fp = edge_plan(0)
    x = random_spikes(0, batch=3, steps=30, p=0.6)
    x[1, :, :] = 1
    lava = LavaFixedBackend().run_fixed(fp, x)
    emu = LoihiEmuBackend(device="cpu").run_fixed(fp, x)
    assert_same(emu, lava)
    v2, u2 = lava.states["lif2"]["v"], lava.states["lif2"]["u"]
    assert v2.min() == -STATE_MAX  # clipped (the positive clip 2**23-1 > vth << 6 always spikes and resets)
    assert np.any((u2[:, :-1] > 2**22) & (u2[:, 1:] < -(2**22)))  # u wrapped at 24 bits
    assert lava.outputs["lif2"].any()


@pytest.mark.lava
@pytest.mark.slow
def test_conformance_lif_norse_lava_fixed():
    g = nir.read(PAPER / "lif_norse.nir")
    x = np.loadtxt(PAPER / "lif_norse.csv", delimiter=",")[:, 0].reshape(1, 1000, 1)
    lava = get_backend("lava-fixed").run(g, x, 1e-4)
    emu = get_backend("loihi-emu", device="cpu").run(g, x, 1e-4)
    assert np.flatnonzero(lava.outputs["output"][0, :, 0]).tolist() == PAPER_SPIKES
    assert_same(emu, lava)


@pytest.mark.lava
@pytest.mark.slow
def test_conformance_cnn_sinabs_emulator_equals_lava_fixed():
    """Sinabs' conv graph (Conv2d, IF, SumPool2d, Flatten, Affine; chains composed, then quantized)."""
    from snndeploy.ir import graph as G

    g = G.load_graph(PAPER / "cnn_sinabs.nir")
    x = (np.random.default_rng(0).random((2, 12, 2, 34, 34)) < 0.15).astype(float)
    emu = get_backend("loihi-emu", record_states=True).run(g, x, 1e-4)
    lava = get_backend("lava-fixed", record_states=True).run(g, x, 1e-4)
    spiking = ["1", "3", "6", "10", "12"]
    assert sum(emu.outputs[n].sum() for n in spiking) > 0
    for n in spiking:
        np.testing.assert_array_equal(lava.outputs[n], emu.outputs[n], err_msg=n)
        for var in ("u", "v"):
            np.testing.assert_array_equal(lava.states[n][var], emu.states[n][var], err_msg=f"{n}.{var}")


def test_quantization_report_of_an_if_layer_is_json_safe():
    """An IF with inhibitory input integrates without leak: its |v| has no bound (headroom -inf), which
    the JSON report says in words (json.dumps refuses -inf; a compare report once failed on it)."""
    import json

    g = nir.NIRGraph.from_list(
        nir.Linear(weight=np.array([[1.0, -0.5], [0.5, 1.0]])),
        nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2)),
    )
    rep = quantize_plan(build_plan(g, DT, "test")).report_dict()
    (layer,) = rep.values()
    assert layer["headroom_bits"] == "unbounded (no leak)"
    json.dumps(rep, allow_nan=False)
