"""Rockpool peer fixtures: real rockpool.nn.modules.torch.nir.to_nir output + Rockpool's own simulation.

Run inside build/peer-venvs/rockpool (see scripts/make_peer_fixtures.sh).
"""

from __future__ import annotations

import sys
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
import nir  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from rockpool.nn.combinators import Sequential  # noqa: E402
from rockpool.nn.modules import ExpSynTorch, LIFNeuronTorch, LIFTorch, LinearTorch  # noqa: E402
from rockpool.nn.modules.torch.nir import to_nir  # noqa: E402

warnings.simplefilter("ignore")

B, T = 6, 50
N_IN, N_HID, N_OUT = 20, 32, 10
IN_RATE = 0.2
SEED = 777
DT = 1e-3  # Rockpool's default module dt


def refs():
    m = "rockpool.nn.modules.torch.nir"
    return {
        "li_export": C.ref(m, r"if type\(module\) == ExpSynTorch:"),
        "li_r": C.ref(m, r"r=\(module.tau \* torch.exp\(-module.dt / module.tau\) / module.dt\)"),
        "cubalif_export": C.ref(m, r"if type\(module\) == LIFTorch:"),
        "cubalif_r": C.ref(m, r"module.tau_mem \* torch.exp\(-module.dt / module.tau_mem\) / module.dt", 0),
        "cubalif_v_leak_zero_bias_dropped": C.ref(
            m, r"_to_numpy\(torch.zeros_like\(module.bias\).squeeze\(\)\), module.size_out", 0
        ),
        "cubalif_no_w_rec": C.ref(m, r"return nir.CubaLIF\("),
        "linear_export": C.ref(m, r"return nir.Linear\(module.weight.detach\(\).T\)"),
        "lif_export": C.ref(m, r"elif isinstance\(module, LIFNeuronTorch\):"),
        "default_sample_batch_1": C.ref(m, r"torch.zeros\(\(1, module.size_in\)\) if sample_data is None"),
        "extract_no_ignore_dims": C.ref(m, r"module, _extract_rockpool_module, sample_data, model_name=model_name"),
        "lif_update_order": C.ref("rockpool.nn.modules.torch.lif_torch", r"isyn = isyn \+ input_data\[:, t\]"),
        "lif_w_rec": C.ref("rockpool.nn.modules.torch.lif_torch", r"irec = F.linear\(spikes, self.w_rec.T\)"),
        "lif_decay": C.ref("rockpool.nn.modules.torch.lif_torch", r"isyn \*= self.beta.to\(isyn.device\)"),
        "lif_vmem": C.ref(
            "rockpool.nn.modules.torch.lif_torch", r"vmem = vmem \+ isyn.sum\(2\) \+ noise_ts\[:, t, :\] \+ self.bias"
        ),
        "lif_subtract": C.ref("rockpool.nn.modules.torch.lif_torch", r"vmem = vmem - spikes \* self.threshold"),
        "steppwl_multispike_ge": C.ref(
            "rockpool.nn.modules.torch.lif_torch",
            r"nr_spikes = \(\(x >= threshold\) \* torch.floor\(x / threshold\)\).float\(\)",
        ),
        "lifneuron_update": C.ref("rockpool.nn.modules.torch.lif_neuron_torch", r"vmem \+= input_data\[:, t, :\]"),
        "lifneuron_decay": C.ref("rockpool.nn.modules.torch.lif_neuron_torch", r"vmem \*= alpha.to\(vmem.device\)"),
        "expsyn_update": C.ref("rockpool.nn.modules.torch.exp_syn_torch", r"isyn \+= data\[:, t, :\]"),
        "expsyn_decay": C.ref("rockpool.nn.modules.torch.exp_syn_torch", r"isyn \*= beta"),
        "default_dt": C.ref("rockpool.nn.modules.torch.lif_torch", r"dt: P_float = 1e-3"),
        "nirtorch_input_node": C.ref("nirtorch.to_nir", r'nir_nodes = \{"input": nir.Input\(input_shape\)\}'),
        "nirtorch_output_node": C.ref("nirtorch.to_nir", r"out_shape = torch_graph.module_output_types\[node.elem\]"),
    }


def weight(gen, n_in, n_out, gain):
    return (gain * torch.randn(n_in, n_out, generator=gen) / np.sqrt(n_in)).float()


def build(kind, gains):
    gen = torch.Generator().manual_seed(SEED)
    g1, g2 = gains[0], gains[1]
    if kind == "mlp":
        return Sequential(
            LinearTorch((N_IN, N_HID), weight=weight(gen, N_IN, N_HID, g1)),
            LIFNeuronTorch(N_HID, tau_mem=0.02, dt=DT),
            LinearTorch(
                (N_HID, N_OUT),
                weight=weight(gen, N_HID, N_OUT, g2),
                bias=0.1 * torch.randn(N_OUT, generator=gen),
                has_bias=True,
            ),
            LIFNeuronTorch(N_OUT, tau_mem=0.02, dt=DT),
            LinearTorch((N_OUT, N_OUT), weight=weight(gen, N_OUT, N_OUT, 1.0)),
            ExpSynTorch(N_OUT, tau=0.01, dt=DT),
        )
    if kind == "cuba":
        return Sequential(
            LinearTorch((N_IN, N_HID), weight=weight(gen, N_IN, N_HID, g1)),
            LIFTorch(N_HID, tau_mem=0.02, tau_syn=0.005, dt=DT),
            LinearTorch((N_HID, N_OUT), weight=weight(gen, N_HID, N_OUT, g2)),
            LIFTorch(N_OUT, tau_mem=0.02, tau_syn=0.005, dt=DT),
        )
    if kind == "recurrent":
        w_rec = 0.2 * torch.randn(N_HID, N_HID, generator=gen) / np.sqrt(N_HID)
        return Sequential(
            LinearTorch((N_IN, N_HID), weight=weight(gen, N_IN, N_HID, g1)),
            LIFTorch(N_HID, tau_mem=0.02, tau_syn=0.005, has_rec=True, w_rec=w_rec, dt=DT),
            LinearTorch((N_HID, N_OUT), weight=weight(gen, N_HID, N_OUT, g2)),
            LIFTorch(N_OUT, tau_mem=0.02, tau_syn=0.005, dt=DT),
        )
    if kind == "per_neuron":
        w1, w2 = weight(gen, N_IN, N_HID, g1), weight(gen, N_HID, N_OUT, g2)
        tm1 = 0.01 + 0.03 * torch.rand(N_HID, generator=gen)
        ts1 = 0.002 + 0.008 * torch.rand(N_HID, generator=gen)
        th1 = 0.8 + 0.4 * torch.rand(N_HID, generator=gen)
        b1 = 0.02 * torch.randn(N_HID, generator=gen)
        tm2 = 0.01 + 0.03 * torch.rand(N_OUT, generator=gen)
        ts2 = 0.002 + 0.008 * torch.rand(N_OUT, generator=gen)
        return Sequential(
            LinearTorch((N_IN, N_HID), weight=w1),
            LIFTorch(N_HID, tau_mem=tm1, tau_syn=ts1, threshold=th1, bias=b1, dt=DT),
            LinearTorch((N_HID, N_OUT), weight=w2),
            LIFTorch(N_OUT, tau_mem=tm2, tau_syn=ts2, dt=DT),
        )
    if kind == "verbatim":  # every neuron argument at its default (dt=1e-3, tau_mem=tau_syn=20 ms, threshold=1)
        return Sequential(
            LinearTorch((N_IN, N_HID), weight=weight(gen, N_IN, N_HID, g1)),
            LIFTorch(N_HID),
            LinearTorch((N_HID, N_OUT), weight=weight(gen, N_HID, N_OUT, g2)),
            LIFTorch(N_OUT),
        )
    raise ValueError(kind)


def spiking_names(net):
    return [n for n, m in net.modules().items() if isinstance(m, (LIFTorch, LIFNeuronTorch))]


def simulate(net, x):
    net.reset_state()
    with torch.no_grad():
        out, _, rec = net(torch.from_numpy(x), record=True)
    net.reset_state()
    spikes = {n: rec[f"{n}_output"].detach().numpy() for n in spiking_names(net)}
    return out.detach().numpy(), spikes


SEM = {
    "LIFNeuronTorch": "Rockpool LIFNeuronTorch: v=exp(-dt/tau)*v + I + bias; s=floor(v/thr) if v>=thr (multi-spike); v-=s*thr",
    "LIFTorch": "Rockpool LIFTorch: i=(i + I + W_rec@s_prev)*exp(-dt/tau_syn); v=exp(-dt/tau_mem)*v + i + bias; s=floor(v/thr) if v>=thr (multi-spike); v-=s*thr",
    "ExpSynTorch": "Rockpool ExpSynTorch: i=(i + I)*exp(-dt/tau); output = i",
}

COMMON_DIFFS = [
    "LIFTorch/LIFNeuronTorch fire floor(v/thr) spikes per step when v>=thr (default max_spikes_per_dt=2**16); NIR emits at most one spike per step on v>thr",
    "reset is subtractive (v -= s*thr, hard-coded, no option); nir 1.0.4 has no v_reset field (0 implied on read): not expressible, no twin possible",
    "exporter writes r = tau*exp(-dt/tau)/dt and w_in=1 (CubaLIF): neither forward Euler nor exact integration of the NIR ODE reproduces v=alpha*v+I / i=beta*(i+I) with these values (approximately right for dt << tau)",
    "to_nir default sample_data=torch.zeros((1, size_in)) and no ignore_dims: Input type is [1, N] (batch axis), Output type is [1, 1, N] (batch and time axes)",
    "module dt is not written anywhere in the graph except folded into r",
]


def write_graph(path, graph, net, entry):
    """nir.write the exporter's graph. If it cannot be serialised as exported (ExpSynTorch
    -> nir.LI(tau=module.tau) keeps a tensor that requires grad), freeze the model's
    parameters (requires_grad=False), export again with the same call and record it."""
    try:
        nir.write(path, graph)
        return graph
    except Exception as e:  # noqa: BLE001
        Path(path).unlink(missing_ok=True)
        for _, prm in torch.nn.Module.named_parameters(net):  # Rockpool's own .parameters() returns a dict
            prm.requires_grad_(False)
        graph = to_nir(net)
        nir.write(path, graph)
        entry["write_note"] = (
            f"nir.write of to_nir(net) fails: {type(e).__name__}: {e} (ExpSynTorch export passes tau=module.tau without "
            f"detach, {C.ref('rockpool.nn.modules.torch.nir', r'tau=module.tau,')}). Written from to_nir(net) after "
            "setting requires_grad=False on the model's parameters; the graph itself is not edited"
        )
        return graph


def main():
    C.seed_everything(SEED)
    W = C.Writer("rockpool", "rockpool")
    R = C.labelled(refs())
    base = [
        R["default_sample_batch_1"],
        R["extract_no_ignore_dims"],
        R["nirtorch_input_node"],
        R["nirtorch_output_node"],
        R["default_dt"],
        R["steppwl_multispike_ge"],
        R["linear_export"],
    ]
    for name, kind in (
        ("mlp", "mlp"),
        ("cuba", "cuba"),
        ("recurrent", "recurrent"),
        ("per_neuron", "per_neuron"),
        ("verbatim", "verbatim"),
    ):
        x = C.binary_input(SEED + sum(map(ord, kind)), (B, T, N_IN), IN_RATE)
        names = spiking_names(build(kind, [1.0, 1.0]))
        gains = C.calibrate(lambda g: simulate(build(kind, g), x)[1], names)
        net = build(kind, gains)
        out, spikes = simulate(net, x)
        graph = to_nir(net)  # exactly the documented call; sample_data defaults to zeros((1, size_in))
        for n in spikes:
            assert n in graph.nodes, (n, list(graph.nodes))
        last = names[-1] if kind != "mlp" else None
        mid = {k: v for k, v in spikes.items() if k != last}
        diffs = list(COMMON_DIFFS)
        srefs = list(base)
        if kind == "mlp":
            sem = "; ".join(SEM[k] for k in ("LIFNeuronTorch", "ExpSynTorch"))
            diffs.append(
                "ExpSynTorch exported as LI with r=tau*exp(-dt/tau)/dt: the LI ODE does not give i=(i+I)*exp(-dt/tau)"
            )
            diffs.append("LinearTorch(has_bias=True) -> Affine; default has_bias=False -> Linear")
            srefs += [
                R["lif_export"],
                R["lifneuron_update"],
                R["lifneuron_decay"],
                R["li_export"],
                R["li_r"],
                R["expsyn_update"],
                R["expsyn_decay"],
            ]
        else:
            sem = SEM["LIFTorch"]
            srefs += [
                R["cubalif_export"],
                R["cubalif_r"],
                R["cubalif_v_leak_zero_bias_dropped"],
                R["lif_update_order"],
                R["lif_decay"],
                R["lif_vmem"],
                R["lif_subtract"],
            ]
            diffs.append(
                "synaptic current is updated before the membrane and the membrane sees the NEW i in the same step"
            )
        if kind == "recurrent":
            diffs.insert(
                0,
                "LIFTorch(has_rec=True) w_rec is NOT exported: the exporter returns a bare CubaLIF (no recurrent Linear, no cycle); the recurrence is silently lost",
            )
            srefs += [R["cubalif_no_w_rec"], R["lif_w_rec"]]
        if kind == "per_neuron":
            diffs.insert(
                0,
                "per-neuron LIFTorch bias is dropped: exporter writes v_leak=zeros_like(bias) (bias != v_leak anyway: bias is a current)",
            )
        entry = {
            "kind": kind,
            "variant": "Rockpool defaults except the stated taus"
            if kind != "verbatim"
            else "all neuron arguments at Rockpool defaults",
            "dt_assumed_by_exporter": DT,
            "output_is": "membrane" if kind == "mlp" else "spikes",
            "peer_time_convention": "(batch, time, channels); modules auto-batch",
            "peer_step_semantics": sem,
            "expressible_in_nir": False,
            "known_differences": diffs,
            "source_refs": srefs,
            "export_call": "rockpool.nn.modules.torch.nir.to_nir(net)",
            "seed": SEED,
            "max_spikes_per_step": float(max(float(v.max()) for v in spikes.values())),
            "twin": None,
            "twin_note": "no Rockpool configuration is NIR-expressible: subtractive reset is hard-coded and the exporter's r/w_in do not encode Rockpool's update",
        }
        W.save(name, lambda p, g=graph, n=net, e=entry: write_graph(p, g, n, e), x, out, mid, entry, rate_layers=spikes)
    W.finish()


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
