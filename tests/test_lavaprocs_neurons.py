"""``PopLIF`` (per-neuron du, dv, vth) against Lava's own ``LIFReset`` and a numpy re-implementation.

Real Lava on both sides: a RingBuffer of random binary spikes drives one Dense whose output fans out
to every neuron process under test; spikes, u and v come back through the memmap recorders. The
numpy references below are written from Lava's equations (lava/proc/lif/models.py), not from
``snndeploy.runtime.lavaprocs.neurons``, and consume the Dense output as recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pytest

from snndeploy.runtime.lava import import_lava

pytestmark = [pytest.mark.lava]

import_lava()  # Lava's runtime needs the 'fork' start method, set at its import

from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIFReset

from snndeploy.runtime.lavaprocs.neurons import PopLIF
from snndeploy.runtime.lavaprocs.recorders import MemmapRecorder, MemmapStateProbe

STEPS = 60
N_IN = 12
INTERVAL, OFFSET = 7, 10  # resets at the start of steps t with t % 7 == 3 (LIFReset takes offset mod interval)


def run_net(tag: str, x: np.ndarray, w: np.ndarray, procs: Sequence, tmp: Path, **dense) -> Dict[str, object]:
    """Run RingBuffer(x) -> Dense(w, **dense) -> every process of ``procs`` (all of shape (n,)) for x.shape[1] steps.

    Returns ``{"a": Dense output (steps, n), "procs": [{"s", "u", "v"}: (steps, n) each]}``.
    """
    steps, n = x.shape[1], w.shape[0]
    dtype = float if tag == "floating_pt" else np.int32
    files: List[Path] = []

    def memmap() -> str:
        path = tmp / f"{len(files)}.npy"
        np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(steps, n)).flush()
        files.append(path)
        return str(path)

    src = RingBuffer(data=x.astype(dtype))
    dense = Dense(weights=w.astype(dtype), num_message_bits=0, **dense)
    src.s_out.connect(dense.s_in)
    keep: list = [dense, MemmapRecorder(shape=(n,), path=memmap())]
    dense.a_out.connect(keep[-1].a_in)
    for proc in procs:
        dense.a_out.connect(proc.a_in)
        rec = MemmapRecorder(shape=(n,), path=memmap())
        proc.s_out.connect(rec.a_in)
        keep += [rec, MemmapStateProbe(var=proc.u, path=memmap()), MemmapStateProbe(var=proc.v, path=memmap())]
    try:
        src.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag=tag))
    finally:
        src.stop()
    rec = [np.load(f) for f in files]
    return {"a": rec[0], "procs": [dict(zip("suv", rec[1 + 3 * i : 4 + 3 * i])) for i in range(len(procs))]}


# --- numpy references, from Lava's equations ---------------------------------------------------


def reset_due(t: int, interval: int, offset: int) -> bool:
    """LIFReset: u and v are zeroed at the start of 1-based step t, before it integrates its input."""
    return t % interval == offset % interval


def ref_float(a, du, dv, vth, bias, interval, offset):
    """AbstractPyLifModelFloat + PyLifResetModelFloat, vectorised over neurons: (s, u, v) per step."""
    n = a.shape[1]
    u, v = np.zeros(n), np.zeros(n)
    out = {k: np.zeros_like(a, dtype=float) for k in "suv"}
    for t in range(1, a.shape[0] + 1):
        if reset_due(t, interval, offset):
            u, v = u * 0, v * 0
        u = u * (1 - du) + a[t - 1]
        v = v * (1 - dv) + u + bias
        s = v > vth
        v = np.where(s, 0.0, v)
        for k, val in zip("suv", (s, u, v)):
            out[k][t - 1] = val
    return out


def ref_fixed(a, du, dv, vth, bias_mant, bias_exp, interval, offset):
    """PyLifResetModelBitAcc in Python integers, one neuron at a time: (s, u, v) per step."""

    def decay(x: int, keep: int) -> int:  # x * keep / 2**12, rounded toward zero
        q = abs(x * keep) >> 12
        return q if x * keep >= 0 else -q

    steps, n = a.shape
    out = {k: np.zeros((steps, n), dtype=np.int64) for k in "suv"}
    for i in range(n):
        b_m, b_e = int(bias_mant[i]), int(bias_exp[i])
        bias = b_m << b_e if b_e >= 0 else b_m >> -b_e
        u = v = 0
        for t in range(1, steps + 1):
            if reset_due(t, interval, offset):
                u = v = 0
            u = decay(u, 4096 - (int(du[i]) + 1)) + (int(a[t - 1, i]) << 6)  # current decays by du + 1
            if u > 2**23:  # one wrap into 24 bits (2**23 itself stays)
                u -= 2**24
            elif u <= -(2**23):
                u += 2**24
            v = decay(v, 4096 - int(dv[i])) + u + bias
            v = min(max(v, -(2**23 - 1)), 2**23 - 1)  # saturates
            s = v > (int(vth[i]) << 6)
            if s:
                v = 0
            out["s"][t - 1, i], out["u"][t - 1, i], out["v"][t - 1, i] = s, u, v
    return out


# --- helpers ------------------------------------------------------------------------------------


def spikes(rng, n_in=N_IN, steps=STEPS, p=0.3) -> np.ndarray:
    return (rng.random((n_in, steps)) < p).astype(float)


def assert_bitwise(got: dict, want: dict, index=slice(None), what="") -> None:
    for k in "suv":
        g, w = np.asarray(got[k])[:, index], np.asarray(want[k])[:, index]
        assert g.dtype == w.dtype, (what, k)
        bits = (lambda z: z.view(np.int64)) if g.dtype == np.float64 else (lambda z: z)
        np.testing.assert_array_equal(bits(g), bits(w), err_msg=f"{what} {k}")


def assert_values(got: dict, want: dict, what="") -> None:
    for k in "suv":
        np.testing.assert_array_equal(
            np.asarray(got[k]), np.asarray(want[k]).astype(got[k].dtype), err_msg=f"{what} {k}"
        )


def assert_resets_matter(rec: dict, interval=INTERVAL, offset=OFFSET) -> None:
    """Some reset step found nonzero state left by the step before, and the run spiked."""
    rows = [t - 1 for t in range(2, STEPS + 1) if reset_due(t, interval, offset)]
    assert np.any(rec["u"][np.array(rows) - 1] != 0)
    assert rec["s"].sum() > 0


def float_params(rng, n):
    return dict(du=rng.uniform(0.05, 0.6, n), dv=rng.uniform(0.05, 0.6, n), vth=rng.uniform(0.5, 2.0, n))


def fixed_params(rng, n):
    p = dict(du=rng.integers(0, 4096, n), dv=rng.integers(0, 4096, n), vth=rng.integers(40, 400, n))
    p["du"][:2], p["dv"][:2] = (0, 4095), (4095, 0)  # the ends of the 12-bit range
    return p


# --- uniform parameters: PopLIF == LIFReset -------------------------------------------------------


def test_uniform_float_equals_lifreset_bit_for_bit(tmp_path):
    rng = np.random.default_rng(1)
    n = 10
    kw = dict(du=0.3, dv=0.15, vth=1.2, bias_mant=rng.normal(0, 0.05, n), reset_interval=INTERVAL, reset_offset=OFFSET)
    out = run_net(
        "floating_pt",
        spikes(rng),
        rng.normal(0, 1.0, (n, N_IN)),
        [LIFReset(shape=(n,), **kw), PopLIF(shape=(n,), **kw)],
        tmp_path,
    )
    lava, pop = out["procs"]
    assert_resets_matter(lava)
    assert_bitwise(pop, lava, what="PopLIF vs LIFReset")


def test_uniform_fixed_equals_lifreset(tmp_path):
    rng = np.random.default_rng(2)
    n = 10
    kw = dict(
        du=700,
        dv=300,
        vth=160,
        bias_mant=rng.integers(-100, 100, n),
        bias_exp=np.array([0, 1, 2, 3, 7, 0, 1, 2, 3, -1]),  # -1: Lava's right-shift branch
        reset_interval=INTERVAL,
        reset_offset=OFFSET,
    )
    out = run_net(
        "fixed_pt",
        spikes(rng),
        rng.integers(-128, 128, (n, N_IN)),
        [LIFReset(shape=(n,), **kw), PopLIF(shape=(n,), **kw)],
        tmp_path,
    )
    lava, pop = out["procs"]
    assert_resets_matter(lava)
    assert_bitwise(pop, lava, what="PopLIF vs LIFReset")


def test_fixed_wrap_and_saturation_equal_lifreset_and_numpy(tmp_path):
    """Strong constant input, u integrating (du = 0): u wraps around 24 bits and v saturates both ways."""
    n = 4
    w = np.repeat([[254], [-254], [254], [-254]], 24, axis=1)  # even: Dense truncates a mixed sign's LSB
    x = np.ones((24, 40))
    kw = dict(du=0, dv=0, vth=2**18, bias_mant=0, reset_interval=1000, reset_offset=0)  # vth << 6 > 2**23: no spike
    out = run_net("fixed_pt", x, w, [LIFReset(shape=(n,), **kw), PopLIF(shape=(n,), **kw)], tmp_path)
    lava, pop = out["procs"]
    assert_bitwise(pop, lava, what="PopLIF vs LIFReset")
    one = np.ones(n, dtype=int)
    assert_values(pop, ref_fixed(out["a"], 0 * one, 0 * one, 2**18 * one, 0 * one, 0 * one, 1000, 0), "numpy")
    assert np.abs(np.diff(lava["u"], axis=0)).max() > 2**23  # a wrap
    assert set(np.unique(lava["v"][-1])) == {-(2**23 - 1), 2**23 - 1}  # saturated at both ends


def test_fixed_current_at_the_24_bit_boundary_equals_lifreset_and_numpy(tmp_path):
    """u = +2**23 exactly stays (Lava wraps only above it); u = -2**23 exactly wraps to +2**23."""
    w = np.array([[128], [-128]])  # even, so Dense keeps them; << weight_exp 10: a = +-2**17, a << 6 = +-2**23
    kw = dict(
        du=4095, dv=4095, vth=2**18, bias_mant=0, reset_interval=1000, reset_offset=0
    )  # du + 1 = 4096: u = a << 6
    out = run_net(
        "fixed_pt", np.ones((1, 6)), w, [LIFReset(shape=(2,), **kw), PopLIF(shape=(2,), **kw)], tmp_path, weight_exp=10
    )
    lava, pop = out["procs"]
    assert_bitwise(pop, lava, what="PopLIF vs LIFReset")
    np.testing.assert_array_equal(out["a"][1:], [[2**17, -(2**17)]] * 5)
    np.testing.assert_array_equal(lava["u"][1:], 2**23)  # both: the negative one wrapped to +2**23
    one = np.ones(2, dtype=int)
    assert_values(pop, ref_fixed(out["a"], 4095 * one, 4095 * one, 2**18 * one, 0 * one, 0 * one, 1000, 0), "numpy")


# --- per-neuron parameters: PopLIF == LIFReset per distinct tuple == numpy ------------------------


def per_neuron_case(tag: str, seed: int, tmp_path: Path, n: int = 30):
    """Every neuron has its own (du, dv, vth); a Lava LIFReset of the whole population runs per
    neuron's tuple, and neuron i of PopLIF must equal neuron i of the LIFReset with its tuple."""
    rng = np.random.default_rng(seed)
    if tag == "floating_pt":
        par = float_params(rng, n)
        bias = dict(bias_mant=rng.normal(0, 0.05, n))
        w = rng.normal(0, 1.0, (n, N_IN))
    else:
        par = fixed_params(rng, n)
        bias = dict(bias_mant=rng.integers(-200, 200, n), bias_exp=rng.integers(0, 4, n))
        w = rng.integers(-128, 128, (n, N_IN))
    scalar = float if tag == "floating_pt" else int
    lava = [
        LIFReset(
            shape=(n,),
            **{k: scalar(par[k][i]) for k in ("du", "dv", "vth")},
            **bias,
            reset_interval=INTERVAL,
            reset_offset=OFFSET,
        )
        for i in range(n)
    ]
    pop = PopLIF(shape=(n,), **par, **bias, reset_interval=INTERVAL, reset_offset=OFFSET)
    out = run_net(tag, spikes(rng), w, [pop] + lava, tmp_path)
    got = out["procs"][0]
    assert got["s"].sum() > 0 and len({tuple(np.asarray(got["s"][:, i])) for i in range(n)}) > 3
    for i in range(n):
        assert_bitwise(got, out["procs"][1 + i], index=[i], what=f"neuron {i} vs LIFReset")
    return out["a"], par, bias, got


@pytest.mark.slow
def test_per_neuron_float_equals_lifreset_per_neuron_and_numpy(tmp_path):
    a, par, bias, got = per_neuron_case("floating_pt", 3, tmp_path)
    assert_values(got, ref_float(a, **par, bias=bias["bias_mant"], interval=INTERVAL, offset=OFFSET), "numpy")


@pytest.mark.slow
def test_per_neuron_fixed_equals_lifreset_per_neuron_and_numpy(tmp_path):
    a, par, bias, got = per_neuron_case("fixed_pt", 4, tmp_path)
    assert_values(got, ref_fixed(a, **par, **bias, interval=INTERVAL, offset=OFFSET), "numpy")


# --- one process for a large population with all-distinct parameters -----------------------------


@pytest.mark.parametrize("tag", ["floating_pt", "fixed_pt"])
def test_512_distinct_neurons_in_one_process(tag, tmp_path):
    """The case that broke Lava's compiler as one LIFReset per distinct tuple."""
    rng = np.random.default_rng(5)
    n, steps = 512, 10
    if tag == "floating_pt":
        par = dict(du=rng.permutation(n) / n, dv=rng.permutation(n) / (2 * n), vth=0.2 + rng.permutation(n) / n)
        bias = dict(bias_mant=rng.normal(0, 0.1, n))
        w = rng.normal(0, 1.0, (n, N_IN))
    else:
        par = dict(du=rng.choice(4096, n, False), dv=rng.choice(4096, n, False), vth=10 + rng.choice(4096, n, False))
        bias = dict(bias_mant=rng.integers(-200, 200, n), bias_exp=rng.integers(0, 4, n))
        w = rng.integers(-128, 128, (n, N_IN))
    assert len({tuple(k) for k in np.stack(list(par.values()), axis=1)}) == n
    pop = PopLIF(shape=(n,), **par, **bias, reset_interval=4, reset_offset=2)
    out = run_net(tag, spikes(rng, steps=steps, p=0.5), w, [pop], tmp_path)
    got = out["procs"][0]
    assert got["s"].sum() > 0
    if tag == "floating_pt":
        want = ref_float(out["a"], **par, bias=bias["bias_mant"], interval=4, offset=2)
    else:
        want = ref_fixed(out["a"], **par, **bias, interval=4, offset=2)
    assert_values(got, want, "numpy")


def test_reset_checks_as_lifreset():
    with pytest.raises(ValueError, match="interval"):
        PopLIF(shape=(2,), du=0, dv=0, vth=1, bias_mant=0, reset_interval=0, reset_offset=0)
    with pytest.raises(ValueError, match="offset"):
        PopLIF(shape=(2,), du=0, dv=0, vth=1, bias_mant=0, reset_interval=2, reset_offset=-1)
    p = PopLIF(shape=(3,), du=[0.1, 0.2, 0.3], dv=0.5, vth=1, bias_mant=0, reset_interval=2, reset_offset=1)
    assert p.du.shape == p.dv.shape == p.vth.shape == p.bias_exp.shape == (3,)
    np.testing.assert_array_equal(p.dv.init, [0.5, 0.5, 0.5])
