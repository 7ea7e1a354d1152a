"""Spyx (JAX / Flax NNX) peer fixtures: real spyx.nir.to_nir output + Spyx's own simulation.

Optional peer. Run inside build/peer-venvs/spyx (see scripts/make_peer_fixtures.sh).
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
import numpy as np  # noqa: E402

warnings.simplefilter("ignore")

B, T = 6, 50
N_IN, N_HID, N_OUT = 20, 32, 10
IN_RATE = 0.2
SEED = 1357
DT = 1.0  # spyx.nir.to_nir default dt


def main():
    W = C.Writer("spyx", "spyx")
    try:
        import jax  # noqa: F401
        import jax.numpy as jnp
        import nir
        import spyx.nn as snn
        from flax import nnx
        from spyx.nir import to_nir
    except Exception as e:  # noqa: BLE001
        W.skip("all", "-", f"import failed: {type(e).__name__}: {e}")
        W.finish()
        return

    R = C.labelled(
        {
            "dt_default": C.ref("spyx.nir", r"def to_nir\(model, input_shape, output_shape, dt=1\)"),
            "lif_tau_r_beta": C.ref("spyx.nir", r"tau=dt / \(1 - beta\),", 1),
            "lif_r_is_beta": C.ref("spyx.nir", r"r=beta,", 2),
            "if_r_ones": C.ref("spyx.nir", r"r=np.ones\(cur_shape, dtype=np.float32\),"),
            "cuba_export": C.ref("spyx.nir", r"elif isinstance\(layer, CuBaLIF\):"),
            "scalar_filled": C.ref("spyx.nir", r"return np.full\(nir_shape, float\(p\), dtype=np.float32\)"),
            "rnn_subgraph": C.ref("spyx.nir", r"def _spyx_recurrent_to_nirgraph"),
            "rnn_input_through_wrec": C.ref("spyx.nir", r'\(f"\{node_key\}.input", w_nk\),'),
            "conv_hwio_to_oihw": C.ref(
                "spyx.nir", r"weight = np.array\(layer.kernel\[...\].transpose\(\(3, 2, 0, 1\)\)\)"
            ),
            "flatten_chw": C.ref(
                "spyx.nir", r"nodes\[node_key\] = nir.Flatten\(input_type=cur_shape, start_dim=0, end_dim=-1\)"
            ),
            "unknown_layer_dropped": C.ref("spyx.nir", r"not recognized/supported for NIR export"),
            "lif_step": C.ref("spyx.nn", r"V = beta \* V \+ x - spikes \* self.threshold"),
            "if_step": C.ref("spyx.nn", r"V = V \+ x - spikes \* self.threshold"),
            "cuba_step": C.ref("spyx.nn", r"current_I = alpha \* current_I \+ x$"),
            "rlif_step": C.ref("spyx.nn", r"V = beta \* V \+ x \+ feedback - spikes \* self.threshold"),
            "spike_from_previous_V": C.ref("spyx.nn", r"spikes = self.spike\(V - self.threshold\)", 1),
            "heaviside_gt": C.ref("spyx.axn", r"return jnp.where\(x > 0, 1, 0\).astype\(x.dtype\)"),
            "flatten_channels_last": C.ref("spyx.nn", r"return x.reshape\(x.shape\[0\], -1\)"),
        }
    )

    def build(kind, gains):
        rngs = nnx.Rngs(SEED)
        g1, g2 = gains
        if kind == "cnn":
            layers = [
                nnx.Conv(2, 8, kernel_size=(3, 3), padding="SAME", rngs=rngs),
                snn.IF((8, 8, 8)),
                snn.SumPool((2, 2), (2, 2), "VALID"),
                snn.Flatten(),
                nnx.Linear(8 * 4 * 4, N_OUT, rngs=rngs),
                snn.LIF((N_OUT,), beta=0.9, rngs=rngs),
            ]
            lin = [layers[0], layers[4]]
        else:
            l1, l2 = nnx.Linear(N_IN, N_HID, rngs=rngs), nnx.Linear(N_HID, N_OUT, rngs=rngs)
            if kind == "mlp":
                n1, n2 = snn.IF((N_HID,)), snn.LIF((N_OUT,), beta=0.9, rngs=rngs)
            elif kind == "scalar":
                n1, n2 = snn.LIF((N_HID,), beta=0.9, rngs=rngs), snn.LIF((N_OUT,), beta=0.9, rngs=rngs)
            elif kind == "per_neuron":  # Spyx's default: beta ~ 0.5 + truncnormal(0.25) per neuron
                n1, n2 = snn.LIF((N_HID,), rngs=rngs), snn.LIF((N_OUT,), rngs=rngs)
            elif kind == "cuba":
                n1 = snn.CuBaLIF((N_HID,), alpha=0.8, beta=0.9, rngs=rngs)
                n2 = snn.CuBaLIF((N_OUT,), alpha=0.8, beta=0.9, rngs=rngs)
            elif kind == "recurrent":
                n1 = snn.RLIF((N_HID,), beta=0.9, rngs=rngs)
                rw = np.random.default_rng(SEED).normal(0.0, 0.3 / np.sqrt(N_HID), (N_HID, N_HID))
                n1.recurrent_w[...] = jnp.asarray(rw, dtype=jnp.float32)
                n2 = snn.LIF((N_OUT,), beta=0.9, rngs=rngs)
            else:
                raise ValueError(kind)
            layers = [l1, n1, l2, n2]
            lin = [l1, l2]
        for m, g in zip(lin, (g1, g2)):
            m.kernel[...] = m.kernel[...] * g
            if m.bias is not None:
                m.bias[...] = m.bias[...] * g
        return snn.Sequential(*layers)

    spiking = (snn.IF, snn.LIF, snn.CuBaLIF, snn.RLIF)

    def simulate(model, x):
        """x: (B, T, ...). Same loop as spyx.nn.Sequential/run, recording every layer's output."""
        state = model.initial_state(x.shape[0])
        rec = {i: [] for i, l in enumerate(model.layers) if isinstance(l, spiking)}
        outs = []
        for t in range(x.shape[1]):
            h = jnp.asarray(x[:, t])
            new_state = []
            for i, (layer, s) in enumerate(zip(model.layers, state)):
                if s is not None:
                    h, s = layer(h, s)
                else:
                    h = layer(h)
                new_state.append(s)
                if i in rec:
                    rec[i].append(np.asarray(h))
            state = new_state
            outs.append(np.asarray(h))
        out = np.stack(outs, 1)
        ref, _ = snn.run(model, jnp.asarray(x), batch_major=True)
        assert np.array_equal(np.asarray(ref), out), "own loop != spyx.nn.run"
        return out, {f"layer_{i}": np.stack(v, 1) for i, v in rec.items()}

    common = [
        "spike is computed from the PREVIOUS step's V (spikes = H(V_prev - thr) before the update): outputs lag one step behind a NIR LIF",
        "subtractive reset (V -= spikes*thr), hard-coded; nir has v_reset only",
        "exporter writes LIF/CubaLIF r = beta (not 1/(1-beta)): Euler at dt gives V = beta*V + (1-beta)*beta*x, not beta*V + x",
        "dt=1 (spyx.nir.to_nir default) written into tau = dt/(1-beta)",
        "node names 'layer_<i>'; Input/Output types are whatever the caller passes to to_nir",
    ]
    specs = [
        ("mlp", "mlp", (N_IN,)),
        ("cnn", "cnn", (8, 8, 2)),
        ("cuba", "cuba", (N_IN,)),
        ("recurrent", "recurrent", (N_IN,)),
        ("scalar", "scalar", (N_IN,)),
        ("per_neuron", "per_neuron", (N_IN,)),
    ]
    for name, kind, in_shape in specs:
        try:
            x = C.binary_input(SEED + sum(map(ord, name)), (B, T, *in_shape), IN_RATE)
            names = [f"layer_{i}" for i, l in enumerate(build(kind, [1, 1]).layers) if isinstance(l, spiking)]
            gains = C.calibrate(lambda g: simulate(build(kind, g), x)[1], names)
            model = build(kind, gains)
            out, spikes = simulate(model, x)
            nir_in = (2, 8, 8) if kind == "cnn" else in_shape
            graph = to_nir(model, {"input": np.array(nir_in)}, {"output": np.array([N_OUT])}, dt=DT)
            top = set(graph.nodes)
            for n in spikes:
                assert n in top, (n, sorted(top))
            mid = {k: v for k, v in spikes.items() if k != names[-1]}
            diffs = list(common)
            srefs = [
                R["dt_default"],
                R["spike_from_previous_V"],
                R["heaviside_gt"],
                R["lif_tau_r_beta"],
                R["lif_r_is_beta"],
                R["lif_step"],
            ]
            if kind == "cnn":
                diffs.append(
                    "Spyx is channels-last: input (B,T,H,W,C); exporter transposes the conv kernel HWIO->OIHW and writes a (C,H,W) Flatten, "
                    "but leaves the following Linear weight in Spyx's (H,W,C) flatten order, so a channels-first NIR executor feeds it permuted features"
                )
                srefs += [
                    R["conv_hwio_to_oihw"],
                    R["flatten_chw"],
                    R["flatten_channels_last"],
                    R["if_r_ones"],
                    R["if_step"],
                ]
            if kind == "mlp":
                srefs += [R["if_r_ones"], R["if_step"]]
            if kind == "cuba":
                diffs.append(
                    "CuBaLIF: spikes from previous V, V -= spikes*thr, I = alpha*I + x, V = beta*V + I (new I); exporter leaves w_in=1"
                )
                srefs += [R["cuba_export"], R["cuba_step"]]
            if kind == "recurrent":
                diffs.append(
                    "RLIF is exported as a NESTED NIRGraph 'layer_1' with nodes 'layer_1.lif', 'layer_1.w_rec', 'layer_1.input', 'layer_1.output' "
                    "and edges input->w_rec->lif<->w_rec: the feed-forward input is routed THROUGH w_rec, unlike Spyx (x + W_rec@spikes)"
                )
                srefs += [R["rnn_subgraph"], R["rnn_input_through_wrec"], R["rlif_step"]]
            if kind == "scalar":
                diffs.append(
                    "beta=0.9 is a 0-d nnx.Param in Spyx, but the exporter fills it to the layer shape: no 0-d parameters are written"
                )
                srefs += [R["scalar_filled"]]
            if kind == "per_neuron":
                diffs.append(
                    "Spyx's default beta is drawn per neuron (0.5 + truncated normal, std 0.25, clipped to [0,1] at run time)"
                )
            entry = {
                "kind": kind,
                "variant": "Spyx defaults",
                "dt_assumed_by_exporter": DT,
                "output_is": "spikes",
                "peer_time_convention": "spyx.nn.run is time-major (T, B, ...) unless batch_major=True; channels-last images",
                "peer_step_semantics": "Spyx LIF: s=H(V_prev-thr) (strict >); V=beta*V+x-s*thr. IF: s=H(V_prev-thr); V=V+x-s*thr",
                "expressible_in_nir": False,
                "known_differences": diffs,
                "source_refs": srefs,
                "export_call": f"spyx.nir.to_nir(model, {{'input': np.array({list(nir_in)})}}, {{'output': np.array([{N_OUT}])}}, dt=1)",
                "seed": SEED,
                "twin": None,
                "twin_note": "no Spyx neuron is NIR-expressible: the spike is taken before the update and the reset is subtractive",
            }
            if kind == "recurrent":
                entry["spikes_note"] = (
                    "spikes__layer_1 is the RLIF output; in the NIR graph it is the nested node layer_1 (inner 'layer_1.lif')"
                )
            W.save(name, lambda p, g=graph: (nir.write(p, g), g)[1], x, out, mid, entry, rate_layers=spikes)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            W.skip(name, kind, f"{type(e).__name__}: {e}")
    W.finish()


if __name__ == "__main__":
    main()
