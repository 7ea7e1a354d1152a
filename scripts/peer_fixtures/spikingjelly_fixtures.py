"""SpikingJelly peer fixtures: real spikingjelly.activation_based.nir_exchange.export_to_nir output
+ SpikingJelly's own simulation (multi-step mode, CPU torch path).

Run inside build/peer-venvs/spikingjelly (see scripts/make_peer_fixtures.sh).
"""

from __future__ import annotations

import logging
import math
import sys
import traceback
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
logging.disable(logging.WARNING)  # torch prints "Triton not available" on CPU-only installs

import _common as C  # noqa: E402
import nir  # noqa: E402
import torch  # noqa: E402
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402
from spikingjelly.activation_based.nir_exchange import export_to_nir  # noqa: E402

warnings.simplefilter("ignore")
try:  # silence SpikingJelly's loguru "Export completed" info line
    from spikingjelly.logger import logger as _sj_logger

    _sj_logger.remove()
except Exception:  # noqa: BLE001
    pass

B, T = 6, 50
N_IN, N_HID, N_OUT = 20, 32, 10
IN_RATE = 0.2
SEED = 2468
DT = 1e-4  # export_to_nir default

NEURONS = (neuron.IFNode, neuron.LIFNode, neuron.ParametricLIFNode, neuron.CUBALIFNode)


def refs():
    m = "spikingjelly.activation_based.nir_exchange.to_nir"
    return {
        "dt_default": C.ref(m, r"dt: float = 1e-4,", 1),
        "if_r_1_over_dt": C.ref(m, r"r=np.full\(shape, 1.0 / self.dt\)"),
        "lif_tau_times_dt": C.ref(m, r"tau=np.full\(shape, tau \* self.dt\)", 0),
        "lif_r_decay_input": C.ref(m, r"r=np.full\(shape, 1.0 if module.decay_input else tau\)", 0),
        "lif_v_leak_is_v_reset": C.ref(m, r"v_leak=np.full\(shape, v_reset\)", 0),
        "plif_tau_from_w": C.ref(m, r"tau = 1.0 / module.w.sigmoid\(\).item\(\)"),
        "cuba_tau_syn": C.ref(m, r"tau_syn = self.dt / \(1.0 - module.c_decay\)"),
        "cuba_w_in": C.ref(m, r"w_in=np.full\(shape, tau_syn / self.dt\)"),
        "soft_reset_rejected": C.ref(m, r'raise NotImplementedError\("NIR does not distinguish soft reset."\)'),
        "neuron_shape_strips_T_B": C.ref(m, r'type_start = 1 if module.step_mode == "s" else 2'),
        "flatten_drops_T_B": C.ref(m, r"input_type=input_shape\[input_type_start:\]"),
        "torch_to_nir_type_check": C.ref(m, r"graph = nirtorch.torch_to_nir\(net, mapper.map_dict, type_check=True\)"),
        "lif_charge": C.ref("spikingjelly._ops.lif.cpu", r"v \+ \(current - \(v - reset_value\)\) / tau"),
        "lif_fire_ge": C.ref("spikingjelly._ops.lif.cpu", r"spike = \(h >= threshold\).to\(torch.float32\)"),
        "lif_hard_reset": C.ref(
            "spikingjelly._ops.lif.cpu",
            r"v = h - spike \* threshold if reset is None else spike \* reset \+ \(1 - spike\) \* h",
        ),
        "if_charge": C.ref("spikingjelly._ops.if_.cpu", r"h = v \+ current"),
        "plif_charge": C.ref("spikingjelly._ops.plif.cpu", r"v \+ \(current - \(v - reset_value\)\) \* q"),
        "cuba_step": C.ref(
            "spikingjelly.activation_based.functional.neuron", r"current_next = current \* current_decay \+ x"
        ),
        "cuba_v": C.ref(
            "spikingjelly.activation_based.functional.neuron", r"v_charged = v \* voltage_decay \+ current_next"
        ),
        "lif_tau_python_float": C.ref(
            "spikingjelly.activation_based.neuron.lif", r"assert isinstance\(tau, float\) and tau > 1.0"
        ),
        "plif_scalar_w": C.ref(
            "spikingjelly.activation_based.neuron.plif", r"self.w = nn.Parameter\(torch.as_tensor\(init_w\)\)"
        ),
    }


def build(kind, gains, decay_input=True):
    torch.manual_seed(SEED)
    g1, g2 = gains
    if kind == "cnn":
        conv, fc = layer.Conv2d(2, 8, 3, padding=1), layer.Linear(8 * 4 * 4, N_OUT)
        net = torch.nn.Sequential(
            conv, neuron.LIFNode(tau=5.0), layer.AvgPool2d(2), layer.Flatten(), fc, neuron.IFNode()
        )
        lin = (conv, fc)
    else:
        fc1, fc2 = layer.Linear(N_IN, N_HID), layer.Linear(N_HID, N_OUT)
        if kind == "mlp":
            n1, n2 = neuron.IFNode(), neuron.LIFNode(tau=10.0, decay_input=decay_input)
        elif kind == "cuba":
            n1 = neuron.CUBALIFNode(c_decay=0.8, v_decay=0.9, v_threshold=1.0)
            n2 = neuron.CUBALIFNode(c_decay=0.8, v_decay=0.9, v_threshold=1.0)
        elif kind == "per_neuron":
            n1 = neuron.ParametricLIFNode(init_tau=2.0)
            n2 = neuron.ParametricLIFNode(init_tau=2.0)
            with torch.no_grad():  # as if trained: tau 6.5 and 12.0 (w = -log(tau - 1))
                n1.w.fill_(-math.log(6.5 - 1.0))
                n2.w.fill_(-math.log(12.0 - 1.0))
        else:
            raise ValueError(kind)
        net = torch.nn.Sequential(fc1, n1, fc2, n2)
        lin = (fc1, fc2)
    with torch.no_grad():
        for m, g in zip(lin, (g1, g2)):
            m.weight.mul_(g)
            m.bias.mul_(g)
    functional.set_step_mode(net, "m")
    return net


def simulate(net, x):
    """x: (B, T, ...). SpikingJelly multi-step mode is time-major: (T, B, ...)."""
    functional.reset_net(net)
    rec = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o, n=n: rec.__setitem__(n, o))
        for n, m in net.named_children()
        if isinstance(m, NEURONS)
    ]
    with torch.no_grad():
        out = net(torch.from_numpy(x).transpose(0, 1).contiguous())
    for h in hooks:
        h.remove()
    functional.reset_net(net)
    tb = lambda a: a.transpose(0, 1).numpy()  # noqa: E731
    return tb(out), {n: tb(v) for n, v in rec.items()}


def main():
    C.seed_everything(SEED)
    W = C.Writer("spikingjelly", "spikingjelly")
    R = C.labelled(refs())
    base = [
        R["dt_default"],
        R["torch_to_nir_type_check"],
        R["neuron_shape_strips_T_B"],
        R["lif_fire_ge"],
        R["lif_hard_reset"],
        R["soft_reset_rejected"],
    ]
    common_diffs = [
        "SpikingJelly fires on h >= v_threshold; NIR on v > v_threshold (differs only at exact equality)",
        "exporter bakes dt=1e-4 (export_to_nir default): NIR forward-Euler at dt=1e-4 reproduces the discrete update exactly; exact exponential integration does not",
        "node names come from torch.fx: Sequential children '_0', '_1', ... and the Input node is 'input_1' (its output_type key is 'input')",
        "all neuron parameters are written as float64 arrays of the layer shape (np.full), even though SpikingJelly keeps python-float scalars",
    ]
    specs = [
        ("mlp", "mlp", True, (N_IN,)),
        ("mlp_nodecay", "mlp", False, (N_IN,)),
        ("cnn", "cnn", True, (2, 8, 8)),
        ("cuba", "cuba", True, (N_IN,)),
        ("per_neuron", "per_neuron", True, (N_IN,)),
    ]
    for name, kind, decay_input, in_shape in specs:
        x = C.binary_input(SEED + sum(map(ord, name)), (B, T, *in_shape), IN_RATE)
        names = [n for n, m in build(kind, [1, 1], decay_input).named_children() if isinstance(m, NEURONS)]
        gains = C.calibrate(lambda g: simulate(build(kind, g, decay_input), x)[1], names)
        net = build(kind, gains, decay_input)
        out, spikes = simulate(net, x)
        graph = export_to_nir(net, torch.zeros(T, B, *in_shape), dt=DT)
        functional.reset_net(net)
        ren = {n: f"_{n}" for n in spikes}  # torch.fx names Sequential child '1' as node '_1'
        for n in ren.values():
            assert n in graph.nodes, (n, list(graph.nodes))
        spikes = {ren[k]: v for k, v in spikes.items()}
        last = ren[names[-1]]
        mid = {k: v for k, v in spikes.items() if k != last}
        diffs = list(common_diffs)
        srefs = list(base)
        if kind == "mlp":
            sem = (
                "SpikingJelly IFNode: h=v+x; s=(h>=thr); v=v_reset where s else h. LIFNode(tau=10, decay_input="
                + str(decay_input)
                + "): h=v+(x-(v-v_reset))/tau"
                + ("" if decay_input else " replaced by h=v-(v-v_reset)/tau+x")
                + "; same fire/hard reset"
            )
            srefs += [
                R["if_r_1_over_dt"],
                R["if_charge"],
                R["lif_tau_times_dt"],
                R["lif_r_decay_input"],
                R["lif_v_leak_is_v_reset"],
                R["lif_charge"],
                R["lif_tau_python_float"],
            ]
            if not decay_input:
                diffs.append("decay_input=False is encoded as r=tau (in steps, not seconds) with tau_nir=tau*dt")
        elif kind == "cnn":
            sem = "SpikingJelly layer.Conv2d/AvgPool2d/Flatten/Linear in multi-step mode (T*B folded), LIFNode(tau=5) then IFNode, hard reset to 0"
            srefs += [R["if_r_1_over_dt"], R["lif_tau_times_dt"], R["flatten_drops_T_B"], R["lif_charge"]]
        elif kind == "cuba":
            sem = "SpikingJelly CUBALIFNode: c=c_decay*c+x; v=v_decay*v+c (new c, same step); s=(v>=thr); v=v_reset where s"
            srefs += [R["cuba_tau_syn"], R["cuba_w_in"], R["cuba_step"], R["cuba_v"]]
            diffs.append(
                "the membrane uses the synaptic current of the SAME step; an executor that updates v with the previous I is one step late"
            )
        else:
            sem = "SpikingJelly ParametricLIFNode: h=v+(x-(v-v_reset))*sigmoid(w); s=(h>=thr); hard reset"
            srefs += [R["plif_tau_from_w"], R["plif_charge"], R["plif_scalar_w"], R["lif_tau_times_dt"]]
            diffs.append(
                "PLIF learns ONE tau per layer (scalar w); the exporter broadcasts 1/sigmoid(w)*dt to the layer shape, so 'per-neuron' arrays are uniform"
            )
        entry = {
            "kind": kind,
            "variant": f"decay_input={decay_input}" if kind == "mlp" else "defaults, v_reset=0 (hard reset)",
            "dt_assumed_by_exporter": DT,
            "nir_integration_that_matches": "forward Euler at dt=1e-4",
            "output_is": "spikes",
            "peer_time_convention": "multi-step mode (step_mode='m'): time-major (T, B, ...); fixtures transposed to (B, T, ...)",
            "peer_step_semantics": sem,
            "expressible_in_nir": True,
            "known_differences": diffs,
            "source_refs": srefs,
            "export_call": f"export_to_nir(net, torch.zeros{(T, B, *in_shape)}, dt=1e-4)",
            "seed": SEED,
        }
        W.save(name, lambda p, g=graph: (nir.write(p, g), g)[1], x, out, mid, entry, rate_layers=spikes)

    # Attempts that the real exporter refuses: record them, re-checked on every run.
    attempts = [
        (
            "soft_reset",
            "mlp",
            lambda: torch.nn.Sequential(layer.Linear(N_IN, N_HID), neuron.IFNode(v_reset=None)),
            [R["soft_reset_rejected"]],
        ),
        (
            "recurrent",
            "recurrent",
            lambda: torch.nn.Sequential(
                layer.Linear(N_IN, N_HID),
                layer.LinearRecurrentContainer(neuron.IFNode(), in_features=N_HID, out_features=N_HID),
                layer.Linear(N_HID, N_OUT),
                neuron.IFNode(),
            ),
            [],
        ),
    ]
    for name, kind, make, srefs in attempts:
        net = make()
        functional.set_step_mode(net, "m")
        try:
            export_to_nir(net, torch.zeros(T, B, N_IN))
        except Exception as e:  # noqa: BLE001
            W.skip(
                name, kind, f"export_to_nir raises {type(e).__name__}: {str(e).splitlines()[0]}", {"source_refs": srefs}
            )
        else:
            raise SystemExit(f"SpikingJelly now exports {name}: turn it into a fixture")
    W.skip(
        "scalar",
        "scalar",
        "SpikingJelly keeps tau/v_threshold/v_reset as python floats (LIFNode asserts isinstance(tau, float)), but the exporter "
        "always writes np.full(layer_shape, value): no 0-d parameters are ever written",
        {"source_refs": [R["lif_tau_python_float"], R["lif_tau_times_dt"]]},
    )
    W.finish()


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
