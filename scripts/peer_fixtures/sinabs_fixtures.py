"""Sinabs peer fixtures: real sinabs.nir.to_nir output + Sinabs' own simulation.

Run inside build/peer-venvs/sinabs (see scripts/make_peer_fixtures.sh).
"""

from __future__ import annotations

import sys
import traceback
import warnings
from collections import OrderedDict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
import nir  # noqa: E402
import sinabs  # noqa: E402
import sinabs.layers as sl  # noqa: E402
import sinabs.utils  # noqa: E402
import torch  # noqa: E402
from sinabs.activation import MembraneReset, MembraneSubtract, MultiSpike, SingleSpike  # noqa: E402
from sinabs.nir import to_nir  # noqa: E402

warnings.simplefilter("ignore", DeprecationWarning)

B, T = 6, 50
N_IN, N_H1, N_H2, N_OUT = 20, 32, 24, 10
IN_RATE = 0.2
SEED = 4321
TAU = 10.0  # time constants are in time steps in Sinabs

SPIKING = (sl.IAF, sl.LIF)  # Squeeze variants subclass these


def refs():
    m = "sinabs.nir"
    return {
        "iaf_export": C.ref(m, r"if type\(module\) in \[sl.IAF, sl.IAFSqueeze\]"),
        "iaf_r_ones": C.ref(m, r"r=torch.ones\(\*layer_shape\)"),
        "iaf_threshold_extended": C.ref(m, r"v_threshold=_extend_to_shape"),
        "lif_export": C.ref(m, r"elif type\(module\) in \[sl.LIF, sl.LIFSqueeze\]"),
        "lif_tau_steps": C.ref(m, r"tau=module.tau_mem.detach\(\)"),
        "lif_r_ones": C.ref(m, r"r=torch.ones_like\(module.tau_mem.detach\(\)\)"),
        "explik_export": C.ref(m, r"elif type\(module\) in \[sl.ExpLeak, sl.ExpLeakSqueeze\]"),
        "linear_zero_bias": C.ref(m, r"module.weight.detach\(\), torch.zeros\(\*module.weight.shape\[:-1\]\)"),
        "sumpool_padding_0": C.ref(m, r"padding=\(0, 0\),  # \(Height, width\)"),
        "flatten_drops_batch": C.ref(m, r"start_dim = module.start_dim - 1"),
        "ignore_dims_0": C.ref(m, r"ignore_dims=\[0\]"),
        "lif_alpha_exp": C.ref("sinabs.layers.lif", r"return torch.exp\(-1.0 / self.tau_mem\)"),
        "lif_norm_input": C.ref(
            "sinabs.layers.functional.lif", r"synaptic_input = \(1 - alpha_mem\) \* state\[\"i_syn\"\]"
        ),
        "lif_update": C.ref(
            "sinabs.layers.functional.lif", r"state\[\"v_mem\"\] = alpha_mem \* state\[\"v_mem\"\] \+ synaptic_input"
        ),
        "lif_syn": C.ref(
            "sinabs.layers.functional.lif", r"state\[\"i_syn\"\] = alpha_syn \* \(state\[\"i_syn\"\] \+ input_data\)"
        ),
        "iaf_tau_inf": C.ref("sinabs.layers.iaf", r"tau_mem=np.inf"),
        "iaf_norm_input_false": C.ref("sinabs.layers.iaf", r"norm_input=False"),
        "explik_norm_input_default_false": C.ref("sinabs.layers.exp_leak", r"norm_input: bool = False"),
        "multispike": C.ref("sinabs.activation.spike_generation", r"spikes = \(v_mem > 0\) \* torch.div\("),
        "singlespike_ge": C.ref(
            "sinabs.activation.spike_generation", r"spikes = \(v_mem - spike_threshold >= 0\).float\(\)"
        ),
        "membrane_subtract": C.ref(
            "sinabs.activation.reset_mechanism", r"new_state\[\"v_mem\"\] - spikes \* threshold"
        ),
        "membrane_reset": C.ref(
            "sinabs.activation.reset_mechanism",
            r"new_state\[\"v_mem\"\] \* \(spikes == 0\).float\(\) \+ self.reset_value",
        ),
        "squeeze_reshape": C.ref("sinabs.layers.reshape", r"inflated_input = input_data.reshape\("),
        "nirtorch_input_node": C.ref("nirtorch.to_nir", r'nir_nodes = \{"input": nir.Input\(np.delete'),
    }


def neuron_kw(single: bool):
    if single:
        return dict(spike_fn=SingleSpike, reset_fn=MembraneReset())
    return dict(spike_fn=MultiSpike, reset_fn=MembraneSubtract())


def build(kind: str, single: bool, gains, squeeze=True):
    torch.manual_seed(SEED)
    kw = neuron_kw(single)
    sq = dict(batch_size=B)
    if kind == "cnn":
        conv = torch.nn.Conv2d(2, 8, 3, padding=1)
        fc = torch.nn.Linear(8 * 4 * 4, N_OUT)
        net = torch.nn.Sequential(
            OrderedDict(
                conv1=conv,
                iaf1=sl.IAFSqueeze(**sq, **kw),
                pool1=sl.SumPool2d(2),
                flat=torch.nn.Flatten(),
                fc2=fc,
                iaf2=sl.IAFSqueeze(**sq, **kw),
            )
        )
        layers = [conv, fc]
    elif kind == "cuba":
        fc1, fc2 = torch.nn.Linear(N_IN, N_H1), torch.nn.Linear(N_H1, N_OUT)
        net = torch.nn.Sequential(
            OrderedDict(
                fc1=fc1,
                lif1=sl.LIFSqueeze(tau_mem=TAU, tau_syn=5.0, **sq, **kw),
                fc2=fc2,
                lif2=sl.LIFSqueeze(tau_mem=TAU, tau_syn=5.0, **sq, **kw),
            )
        )
        layers = [fc1, fc2]
    elif kind == "verbatim":  # non-squeeze layers, (batch, time, N) tensors
        fc1, fc2 = torch.nn.Linear(N_IN, N_H1), torch.nn.Linear(N_H1, N_OUT)
        net = torch.nn.Sequential(OrderedDict(fc1=fc1, iaf1=sl.IAF(**kw), fc2=fc2, iaf2=sl.IAF(**kw)))
        layers = [fc1, fc2]
    else:  # mlp (per-neuron tensors) / scalar (python floats)
        fc1, fc2, fc3 = torch.nn.Linear(N_IN, N_H1), torch.nn.Linear(N_H1, N_H2), torch.nn.Linear(N_H2, N_OUT)
        if kind == "scalar":
            tau, thr, tau_out = TAU, 1.0, TAU
        else:
            gen = torch.Generator().manual_seed(SEED + 1)
            tau = 5.0 + 15.0 * torch.rand(N_H2, generator=gen)
            thr = 0.8 + 0.4 * torch.rand(N_H2, generator=gen)
            tau_out = 5.0 + 15.0 * torch.rand(N_OUT, generator=gen)
        net = torch.nn.Sequential(
            OrderedDict(
                fc1=fc1,
                iaf1=sl.IAFSqueeze(**sq, **kw),
                fc2=fc2,
                lif2=sl.LIFSqueeze(tau_mem=tau, spike_threshold=thr, **sq, **kw),
                fc3=fc3,
                li3=sl.ExpLeakSqueeze(tau_mem=tau_out, norm_input=single, **sq),
            )
        )
        layers = [fc1, fc2, fc3]
    with torch.no_grad():
        for layer, g in zip(layers, gains):
            layer.weight.mul_(g)
            layer.bias.mul_(g)
    return net


def simulate(net, x, squeeze=True):
    """x: (B, T, ...). Squeeze layers take (B*T, ...); plain layers (B, T, ...)."""
    sinabs.utils.reset_states(net)
    rec = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o, n=n: rec.__setitem__(n, o))
        for n, m in net.named_children()
        if isinstance(m, SPIKING) and not isinstance(m, sl.ExpLeak)
    ]
    xt = torch.from_numpy(x)
    with torch.no_grad():
        out = net(xt.flatten(0, 1) if squeeze else xt)
    for h in hooks:
        h.remove()
    sinabs.utils.reset_states(net)
    unflat = (lambda a: a.reshape(B, T, *a.shape[1:]).numpy()) if squeeze else (lambda a: a.numpy())
    return unflat(out), {n: unflat(v) for n, v in rec.items()}


SEM = {
    "IAF": "Sinabs IAF (dt=1 step): v=v+I; MultiSpike: s=trunc(v/thr) if v>0 (several spikes per step possible, v>=thr fires); MembraneSubtract: v-=s*thr",
    "IAF_single": "Sinabs IAF with SingleSpike+MembraneReset: v=v+I; s=(v>=thr); v:=0 where s",
    "LIF": "Sinabs LIF (dt=1 step): v=alpha*v+(1-alpha)*I with alpha=exp(-1/tau) (norm_input=True); MultiSpike trunc(v/thr); MembraneSubtract",
    "LIF_single": "Sinabs LIF with SingleSpike+MembraneReset: v=exp(-1/tau)*v+(1-exp(-1/tau))*I; s=(v>=thr); v:=0 where s",
    "LIFsyn": "Sinabs LIF with tau_syn: i=alpha_syn*(i+I); v=alpha*v+(1-alpha)*i; MultiSpike; MembraneSubtract",
    "ExpLeak": "Sinabs ExpLeak (default norm_input=False): v=exp(-1/tau)*v+I, output = v",
    "ExpLeak_norm": "Sinabs ExpLeak(norm_input=True): v=exp(-1/tau)*v+(1-exp(-1/tau))*I, output = v",
}


def write_graph(path, graph, entry):
    """nir.write the exporter's graph; if nir 1.0.4 cannot serialise it as exported
    (Conv2d.input_shape=None, SumPool/Flatten types None), run nir's own
    graph.infer_types() -- no manual edits -- and record that in the manifest."""
    try:
        nir.write(path, graph)
    except Exception as e:  # noqa: BLE001
        Path(path).unlink(missing_ok=True)
        graph.infer_types()
        nir.write(path, graph)
        entry["write_note"] = (
            f"nir.write of the graph exactly as sinabs.nir.to_nir returned it fails with nir {C.version('nir')}: "
            f"{type(e).__name__}: {e} (Conv2d.input_shape=None). Written after calling nir's own graph.infer_types() "
            "(fills Conv2d.input_shape and the None input/output types); nothing edited by hand"
        )
        entry["source_refs"].append(C.ref("sinabs.nir", r"input_shape=None,", 1) + " (conv2d_input_shape_none)")
    return graph


def main():
    C.seed_everything(SEED)
    W = C.Writer("sinabs", "sinabs")
    R = C.labelled(refs())
    base_refs = [
        R["ignore_dims_0"],
        R["nirtorch_input_node"],
        R["multispike"],
        R["singlespike_ge"],
        R["membrane_subtract"],
        R["membrane_reset"],
        R["squeeze_reshape"],
    ]
    specs = [
        # name, kind, single, in_shape, spiking layers
        ("mlp", "mlp", False, (N_IN,), ["iaf1", "lif2"]),
        ("mlp_single", "mlp", True, (N_IN,), ["iaf1", "lif2"]),
        ("scalar", "scalar", False, (N_IN,), ["iaf1", "lif2"]),
        ("scalar_single", "scalar", True, (N_IN,), ["iaf1", "lif2"]),
        ("cnn", "cnn", False, (2, 8, 8), ["iaf1", "iaf2"]),
        ("cnn_single", "cnn", True, (2, 8, 8), ["iaf1", "iaf2"]),
        ("cuba", "cuba", False, (N_IN,), ["lif1", "lif2"]),
        ("verbatim", "verbatim", False, (N_IN,), ["iaf1", "iaf2"]),
    ]
    gains_cache = {}
    for name, kind, single, in_shape, spk_layers in specs:
        squeeze = kind != "verbatim"
        x = C.binary_input(SEED + sum(map(ord, kind)), (B, T, *in_shape), IN_RATE)
        if kind not in gains_cache:
            g0 = [1.0] * (len(spk_layers) + (1 if kind in ("mlp", "scalar") else 0))
            g = C.calibrate(
                lambda g: simulate(build(kind, single, g), x, squeeze)[1], spk_layers, g0[: len(spk_layers)]
            )
            gains_cache[kind] = g + g0[len(spk_layers) :]
        gains = gains_cache[kind]
        net = build(kind, single, gains)
        out, spikes = simulate(net, x, squeeze)
        sinabs.utils.reset_states(net)
        sample = torch.zeros(B, *in_shape) if squeeze else torch.zeros(B, T, *in_shape)
        graph = to_nir(net, sample)
        sinabs.utils.reset_states(net)
        for n in spikes:
            assert n in graph.nodes, (n, list(graph.nodes))
        last = list(net.named_children())[-1][0]
        mid = {k: v for k, v in spikes.items() if k != last}
        out_is = "membrane" if kind in ("mlp", "scalar") else "spikes"

        diffs, sem = [], []
        integ = (
            "exact exponential (zero-order-hold) at dt=1"
            if kind in ("mlp", "scalar", "cuba")
            else "any (IF: v += R*I*dt with dt=1)"
        )
        if kind in ("mlp", "scalar"):
            sem = [
                SEM["IAF_single" if single else "IAF"],
                SEM["LIF_single" if single else "LIF"],
                SEM["ExpLeak_norm" if single else "ExpLeak"],
            ]
        elif kind == "cuba":
            sem = [SEM["LIFsyn"]]
        else:
            sem = [SEM["IAF_single" if single else "IAF"]]
        if not single:
            diffs += [
                "default spike_fn=MultiSpike emits trunc(v/thr) spikes per step (counts > 1 possible); NIR neurons emit at most one spike per step",
                "default reset_fn=MembraneSubtract (v -= spikes*thr); NIR resets to v_reset (nir<=1.0.4 has no v_reset field: 0 implied): lost in export",
            ]
            if kind in ("mlp", "scalar"):
                diffs.append(
                    "ExpLeak default norm_input=False (v=a*v+I) but the exporter writes LI with r=1, which integrates to v=a*v+(1-a)*I: readout scaled by 1/(1-a)"
                )
        diffs.append(
            "Sinabs fires on v >= thr (MultiSpike/SingleSpike); NIR fires on v > thr (differs only at exact equality)"
        )
        diffs.append(
            "exporter writes time constants in time steps (dt=1); LIF/LI r=1, IF r=1; v_leak=0; no v_reset (nir 1.0.4 has none)"
        )
        if kind in ("mlp", "scalar", "cuba"):
            diffs.append(
                "LIF/LI match NIR only under exact exponential integration at dt=1 (alpha=exp(-1/tau)); forward Euler gives 1-1/tau"
            )
        if kind == "cuba":
            diffs.insert(
                0,
                "LIF(tau_syn=5) is exported as a plain nir.LIF: tau_syn is silently dropped (no CubaLIF), so the synaptic filter is lost",
            )
        if kind == "scalar":
            diffs.append(
                "tau_mem/spike_threshold given as python floats: LIF and LI nodes are written with 0-d tau/r/v_leak/v_threshold; IF threshold is extended to the layer shape"
            )
        if kind == "cnn":
            diffs.append(
                "SumPool2d exported with padding forced to (0,0); Conv2d input_shape=None in the node, inferred on read"
            )
        if kind == "verbatim":
            diffs.append(
                "non-Squeeze layers run on (batch, time, N): to_nir drops only dim 0 of the sample, so the Input node type is [time, N] (time axis baked in) while the IF nodes are [N]"
            )
        expressible = bool(single) and kind != "cuba"
        entry = {
            "kind": kind,
            "variant": "SingleSpike + MembraneReset"
            + (", ExpLeak norm_input=True" if kind in ("mlp", "scalar") else "")
            if single
            else "defaults: MultiSpike + MembraneSubtract"
            + (", ExpLeak norm_input=False" if kind in ("mlp", "scalar") else ""),
            "dt_assumed_by_exporter": 1.0,
            "nir_integration_that_matches": integ,
            "output_is": out_is,
            "peer_time_convention": "(batch, time, ...) for plain layers; Squeeze layers take (batch*time, ...) with batch_size fixed at construction"
            if kind != "verbatim"
            else "(batch, time, ...) plain layers",
            "peer_step_semantics": "; ".join(sem),
            "expressible_in_nir": expressible,
            "known_differences": diffs,
            "source_refs": base_refs
            + [
                R["iaf_export"],
                R["iaf_r_ones"],
                R["iaf_threshold_extended"],
                R["iaf_tau_inf"],
                R["iaf_norm_input_false"],
            ]
            + (
                [
                    R["lif_export"],
                    R["lif_tau_steps"],
                    R["lif_r_ones"],
                    R["lif_alpha_exp"],
                    R["lif_norm_input"],
                    R["lif_update"],
                    R["explik_export"],
                    R["explik_norm_input_default_false"],
                ]
                if kind in ("mlp", "scalar", "cuba")
                else []
            )
            + ([R["lif_syn"]] if kind == "cuba" else [])
            + ([R["sumpool_padding_0"], R["flatten_drops_batch"]] if kind == "cnn" else [])
            + [R["linear_zero_bias"]],
            "export_call": f"sinabs.nir.to_nir(net, torch.zeros{(B, *in_shape) if squeeze else (B, T, *in_shape)})",
            "seed": SEED,
            "max_spikes_per_step": float(max(float(v.max()) for v in spikes.values())),
        }
        if kind in ("mlp", "scalar"):
            entry["twin"] = name[:-7] if single else name + "_single"
        if kind == "cnn":
            entry["twin"] = "cnn" if single else "cnn_single"
        W.save(name, lambda p, g=graph, e=entry: write_graph(p, g, e), x, out, mid, entry, rate_layers=spikes)
    W.finish()


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
