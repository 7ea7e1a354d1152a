"""loihi-emu's fast paths are exact: every kernel, the sparse sum, the convolution path, the integer state
and the chunking give the very integers of :func:`emulate_reference` (the documented arithmetic, int64,
step by step), and of Lava (marked lava). Not timing tests: the speed is benchmarks/bench_emulator.py's.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from snndeploy.errors import InputError
from snndeploy.lower.fixed import FixedConn, FixedNeuron, FixedPlan, fixed_plan_for
from snndeploy.lower.plan import Topology
from snndeploy.lower.quantize import BIAS_MANT_MAX, VTH_MAX

torch = pytest.importorskip("torch")

from snndeploy.backends.loihi_emu import (  # noqa: E402
    F32_EXACT,
    LoihiEmuBackend,
    compile_plan,
    conv_geometry,
    emulate,
    emulate_reference,
)

DT = 1e-3


# --------------------------------------------------------------------------- plans built by hand


def _neuron(rng, name, n, spiking=True, kind="mixed"):
    """Random integer parameters in Loihi's ranges: plain (du = 4095), Cuba (small du), IF (dv = 0)."""
    du = {"plain": np.full(n, 4095), "cuba": rng.integers(0, 400, n), "mixed": rng.choice([4095, 100, 0], n)}[kind]
    dv = rng.choice([0, 64, 410, 4095], n)
    drive = rng.integers(-200, 200, n) * 2 if rng.random() < 0.5 else None
    return FixedNeuron(
        name,
        "CubaLIF" if kind != "plain" else "LIF",
        (n,),
        du,
        dv,
        rng.integers(1, VTH_MAX // 4, n),
        rng.integers(-BIAS_MANT_MAX - 1, BIAS_MANT_MAX + 1, n) // 8,
        rng.integers(0, 8, n),
        1.0,
        spiking,
        drive=drive,
        drive_exp=int(rng.integers(-3, 4)),
    )


def _weights(rng, shape, mode):
    if mode == "mixed":
        w = rng.integers(-128, 128, shape) * 2
    elif mode == "excitatory":
        w = rng.integers(0, 256, shape)
    else:
        w = -rng.integers(0, 256, shape)
    w[rng.random(shape) < 0.3] = 0
    return w


def random_plan(seed: int, sizes=(24, 16, 12, 6), back=True, spiking_out=True, depths=None) -> FixedPlan:
    """Input -> p1 -> ... -> pk -> out with random integers; self-recurrent back edges on some populations;
    ``depths`` overrides the topology's depths (a plan that must run as one stepped group)."""
    rng = np.random.default_rng(seed)
    pops = [f"p{i}" for i in range(1, len(sizes))]
    neurons, conns = {}, []
    for i, name in enumerate(pops, start=1):
        kind = ["plain", "cuba", "mixed"][(seed + i) % 3]
        neurons[name] = _neuron(rng, name, sizes[i], spiking_out or i < len(pops), kind)
        src = "in" if i == 1 else pops[i - 2]
        mode = ["mixed", "excitatory", "inhibitory"][(seed + 2 * i) % 3] if i > 1 else "mixed"
        conns.append(FixedConn(src, name, _weights(rng, (sizes[i], sizes[i - 1]), mode), int(rng.integers(-4, 8))))
        if back and neurons[name].spiking and rng.random() < 0.6:
            w = _weights(rng, (sizes[i], sizes[i]), "mixed")
            conns.append(FixedConn(name, name, w, int(rng.integers(-3, 5)), back_edge=True))
    depth = {"in": 0, **{n: i for i, n in enumerate(pops, start=1)}, "out": len(pops)}
    if depths is not None:
        depth.update(depths)
    top = Topology("in", (sizes[0],), depth, "out", pops[-1], (sizes[-1],), frozenset())
    return FixedPlan(top, neurons, conns, ())


def spikes(seed: int, shape, p=0.3):
    x = (np.random.default_rng(seed + 1000).random(shape) < p).astype(np.float64)
    x[0] = 0  # a silent sample
    return x


def assert_same(ref, got, what=""):
    (rs, rst), (gs, gst) = ref, got
    assert rs.keys() == gs.keys()
    for n in rs:
        np.testing.assert_array_equal(rs[n], gs[n], err_msg=f"{what} spikes of {n}")
    assert rst.keys() == gst.keys(), what
    for n in rst:
        assert rst[n].keys() == gst[n].keys(), what
        for k in rst[n]:
            np.testing.assert_array_equal(rst[n][k], gst[n][k], err_msg=f"{what} {n}.{k}")


# --------------------------------------------------------------------------- every path == the reference


@pytest.mark.parametrize("seed", range(6))
def test_every_kernel_and_the_sparse_sum_equal_the_reference(seed):
    fp = random_plan(seed, spiking_out=seed % 2 == 0)
    x = spikes(seed, (5, 40, 24))
    ref = emulate_reference(fp, x)
    ref_lean = emulate_reference(fp, x, record_states=False)
    active = sum(a.sum() for a in ref[0].values())
    assert active > 0, "nothing spiked: the plan tests nothing"
    for kernel in ("auto", "int8", "float32", "float64"):
        for sparse in ("never", "always", "auto"):
            what = f"kernel={kernel} sparse={sparse}"
            assert_same(ref, emulate(fp, x, kernel=kernel, sparse=sparse), what)
            assert_same(ref_lean, emulate(fp, x, record_states=False, kernel=kernel, sparse=sparse), what)


def test_the_int8_kernel_is_the_default_on_the_cpu_and_other_kernels_are_chosen_on_request():
    fp = random_plan(0)
    assert set(compile_plan(fp).paths.values()) <= {"int8 dense", "int8 dense (back edge)"}
    assert {v.split()[0] for v in compile_plan(fp, kernel="float32").paths.values()} == {"float32"}
    assert {v.split()[0] for v in compile_plan(fp, kernel="float64").paths.values()} == {"float64"}
    with pytest.raises(InputError, match="kernel must be one of"):
        compile_plan(fp, kernel="bf16")


@pytest.mark.parametrize("chunk", [1, 2, 4])
def test_chunks_of_samples_change_nothing(chunk):
    fp = random_plan(3)
    x = spikes(3, (5, 30, 24))
    assert_same(emulate_reference(fp, x), emulate(fp, x, chunk=chunk), f"chunk={chunk}")


def test_a_plan_whose_depths_do_not_allow_batching_runs_stepped():
    """Every population at depth 1 (a hand-made topology): one group, forward inputs made per step."""
    fp = random_plan(4, depths={"p2": 1, "p3": 1, "out": 1})
    assert len(compile_plan(fp).groups) == 1
    x = spikes(4, (4, 30, 24))
    assert_same(emulate_reference(fp, x), emulate(fp, x))


def test_input_of_any_binary_dtype_and_refusal_of_the_rest():
    fp = random_plan(1)
    x = spikes(1, (3, 20, 24))
    ref = emulate(fp, x)
    for dtype in (np.bool_, np.uint8, np.int64, np.float32):
        assert_same(ref, emulate(fp, x.astype(dtype)), str(dtype))
    for bad in (0.5, 2.0, -1.0, np.nan, np.inf):
        y = x.copy()
        y[1, 3, 5] = bad
        with pytest.raises(InputError, match=r"binary spikes.*index \(1, 3, 5\)"):
            LoihiEmuBackend(device="cpu").run_fixed(fp, y)
        with pytest.raises(InputError, match=r"binary spikes.*index \(1, 3, 5\)"):
            LoihiEmuBackend().check_input(y)
    LoihiEmuBackend().check_input(x.astype(np.float32))


# --------------------------------------------------------------------------- float32 bound: the fallback


def big_sum_plan(k: int, extra: int) -> FixedPlan:
    """One input of k lines into two neurons: every weight 255 except the last, ``extra``: with every input
    active the sum is (k - 1) * 255 + extra (2**24 - 1 + 2 = 2**24 + 1 for k = 65794, extra = 2)."""
    w = np.full((2, k), 255)
    w[:, -1] = extra
    w[1, :10] = 0  # the second neuron stays below the bound
    zeros = np.zeros(2, int)
    n = FixedNeuron("p1", "LIF", (2,), np.full(2, 4095), np.full(2, 410), np.full(2, VTH_MAX), zeros, zeros, 1.0, True)
    top = Topology("in", (k,), {"in": 0, "p1": 1, "out": 1}, "out", "p1", (2,), frozenset())
    return FixedPlan(top, {"p1": n}, [FixedConn("in", "p1", w, 0)], ())


@pytest.mark.parametrize("extra,kind", [(2, "float64"), (1, "float32")])
def test_float32_only_below_two_to_the_24(extra, kind):
    k = 65794
    fp = big_sum_plan(k, extra)
    prog = compile_plan(fp, kernel="float32")
    (p,) = prog.projections
    assert p.bound == (k - 1) * 255 + extra
    assert prog.paths == {"in -> p1": f"{kind} dense"}, "the float64 fallback must take over above 2**24"
    x = np.ones((2, 3, k))
    x[1, 1, ::3] = 0
    if extra == 2:  # what float32 would have done: 2**24 + 1 is not a float32
        s = torch.ones(1, k, dtype=torch.float32) @ torch.as_tensor(fp.conns[0].weight.T, dtype=torch.float32)
        assert int(s[0, 0]) != 2**24 + 1 == p.bound
    ref = emulate_reference(fp, x)
    for kernel in ("float32", "int8", "float64"):
        for sparse in ("never", "always"):
            assert_same(ref, emulate(fp, x, kernel=kernel, sparse=sparse), f"{kernel} {sparse}")
    assert p.bound > F32_EXACT if extra == 2 else p.bound == F32_EXACT


def test_huge_sums_run_the_int64_state_and_the_integer_decay():
    """u of ~2**30 per step with a slow current decay: the bounds pick int64 state and the int64 decay."""
    fp = big_sum_plan(65794, 2)
    fp = replace(fp, neurons={"p1": replace(fp.neurons["p1"], du=np.array([0, 40]))})
    prog = compile_plan(fp)
    (pop,) = prog.groups[0]
    assert pop.dtype == torch.int64 and pop.keep_int is not None and pop.wrap
    x = np.ones((2, 6, 65794))
    assert_same(emulate_reference(fp, x), emulate(fp, x))


# --------------------------------------------------------------------------- convolutions


def conv_graph(layout="pool-lif", in_hw=12, channels=(4, 6), hidden=10, readout="membrane", seed=0):
    """A small fashion_conv-style network (the trained model's architecture), random weights."""
    from snndeploy.frontends.norse import to_nir
    from snndeploy.train.config import load_model_config
    from snndeploy.train.networks import ARCHITECTURES

    cfg = copy.deepcopy(load_model_config("fashion_conv"))
    gains = [40.0, 16.0, 24.0, 1.0]  # ~5 % spike rates with 10-20 % binary input (the config's are for graded input)
    cfg["model"].update({"channels": list(channels), "hidden": hidden, "layout": layout, "init_gain": gains})
    cfg["readout"] = {"kind": readout}
    torch.manual_seed(seed)
    model = ARCHITECTURES["conv"](cfg, (in_hw, in_hw), 10)
    return to_nir(model, tuple(model.input_shape), cfg["dt"])


@pytest.mark.parametrize("layout", ["pool-lif", "lif-pool"])
def test_conv_path_equals_dense_path_and_reference(layout):
    g = conv_graph(layout)
    fp = fixed_plan_for(g, DT, "loihi-emu")
    prog = compile_plan(fp)
    convs = [k for k, v in prog.paths.items() if "conv" in v]
    assert len(convs) == 2, prog.paths  # both convolution chains recovered (the Affine ones stay dense)
    x = spikes(7, (3, 8, 1, 12, 12), p=0.15)
    ref = emulate_reference(fp, x)
    assert all(a.any() for n, a in ref[0].items()), {n: a.mean() for n, a in ref[0].items()}
    assert_same(ref, emulate(fp, x), "conv")
    assert_same(ref, emulate(fp, x, conv="never"), "dense")
    assert_same(ref, emulate(fp, x, kernel="float32", chunk=2), "float32 conv")
    lean = emulate_reference(fp, x, record_states=False)
    assert_same(lean, emulate(fp, x, record_states=False), "conv, lean")


def test_conv_geometry_is_checked_against_every_entry():
    g = conv_graph()
    fp = fixed_plan_for(g, DT, "loihi-emu")
    c = next(c for c in fp.conns if c.src == "input")
    shape_in, shape_out = fp.topology.input_shape, fp.neurons[c.dst].shape
    geo = conv_geometry(c.weight.astype(np.int64), shape_in, shape_out)
    assert geo is not None and geo.stride == (2, 2) and geo.kernel.shape[2:] == (6, 6)  # conv k5 p2 + avgpool 2
    # the matrix rebuilt from the geometry is the matrix
    co, ho, wo = shape_out
    _, hi, wi = shape_in
    rebuilt = np.zeros((co, ho, wo) + tuple(shape_in), np.int64)
    for i in range(ho):
        for j in range(wo):
            for a in range(geo.kernel.shape[2]):
                for b in range(geo.kernel.shape[3]):
                    h, w = i * geo.stride[0] + geo.offset[0] + a, j * geo.stride[1] + geo.offset[1] + b
                    if 0 <= h < hi and 0 <= w < wi:
                        rebuilt[:, i, j, :, h, w] = geo.kernel[:, :, a, b]
    np.testing.assert_array_equal(rebuilt.reshape(c.weight.shape), c.weight)
    for i, j in ((0, 0), (37, 5), (c.weight.shape[0] - 1, c.weight.shape[1] - 1)):
        w = c.weight.astype(np.int64).copy()
        w[i, j] += 2  # one entry off (a tap, or a nonzero outside every window)
        assert conv_geometry(w, shape_in, shape_out) is None
    rng = np.random.default_rng(0)
    assert conv_geometry(rng.integers(-3, 4, c.weight.shape), shape_in, shape_out) is None
    assert conv_geometry(c.weight.astype(np.int64), (c.weight.shape[1],), shape_out) is None


# --------------------------------------------------------------------------- against Lava


@pytest.mark.lava
@pytest.mark.slow
def test_fast_emulator_equals_lava_fixed_on_a_conv_graph():
    from snndeploy.backends import get_backend

    g = conv_graph("pool-lif", in_hw=12, channels=(3, 4), hidden=8, readout="spike_count")
    x = spikes(11, (2, 10, 1, 12, 12), p=0.2)
    emu = get_backend("loihi-emu", device="cpu").run(g, x, DT)
    assert sum("conv" in v for v in emu.info["paths"].values()) == 2, emu.info["paths"]
    lava = get_backend("lava-fixed").run(g, x, DT)
    assert lava.outputs.keys() == emu.outputs.keys()
    for n in lava.outputs:
        np.testing.assert_array_equal(lava.outputs[n], emu.outputs[n], err_msg=n)
    for n in lava.states:
        for k in ("u", "v"):
            np.testing.assert_array_equal(lava.states[n][k], emu.states[n][k], err_msg=f"{n}.{k}")
    assert any(emu.outputs[n].any() for n in ("lif1", "lif2", "lif3"))


@pytest.mark.lava
@pytest.mark.slow
def test_fast_emulator_equals_lava_fixed_on_an_mlp():
    import sys
    from pathlib import Path

    from snndeploy.backends import get_backend

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_fixed import random_graph

    g = random_graph(48, 32, 10, seed=3)
    x = spikes(3, (3, 25, 48), p=0.1)
    emu = get_backend("loihi-emu", device="cpu").run(g, x, DT)
    assert set(emu.info["paths"].values()) == {"int8 dense"}
    lava = get_backend("lava-fixed").run(g, x, DT)
    for n in lava.outputs:
        np.testing.assert_array_equal(lava.outputs[n], emu.outputs[n], err_msg=n)
    for n in lava.states:
        for k in ("u", "v"):
            np.testing.assert_array_equal(lava.states[n][k], emu.states[n][k], err_msg=f"{n}.{k}")
    assert emu.outputs["lif1"].any()
