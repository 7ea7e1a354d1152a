"""Fold build/peer-fixtures/<framework>.json into tests/fixtures/peers/manifest.json.

Run with the MAIN venv (nir 1.0.8, torch): for every fixture it records
  loads_with_nir_1_0_8 / nir_read_error   -- does nir.read() accept the file as written
  nir_reference_check                    -- a plain NIR-semantics simulation of the graph
                                            (this file, numpy/torch, no snndeploy code)
                                            compared with the peer's own output/spikes
The reference simulation implements the documented NIR ODEs with one step of size
dt_assumed_by_exporter, either forward Euler or exact exponential (zero-order-hold)
integration (chosen per fixture from nir_integration_that_matches, default Euler):
  LIF      v += dt/tau*(v_leak - v + r*I)        spike v > v_threshold, then v = v_reset
  CubaLIF  I_s += dt/tau_syn*(-I_s + w_in*I); v += dt/tau_mem*(v_leak - v + r*I_s)  (new I_s)
  IF       v += dt*r*I
  LI       v += dt/tau*(v_leak - v + r*I)
  edges closing a cycle deliver the previous step's value (at t=0: an Affine on the
  cycle delivers its bias, i.e. the Affine applied to the zero initial state).
It is a consistency check of the manifest claims, not a product test.

Usage: merge_manifest.py [framework ...]   (default: every part file present)
"""

from __future__ import annotations

import json
import sys
import traceback
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "peers"
PARTS = REPO / "build" / "peer-fixtures"
MANIFEST = FIXTURES / "manifest.json"


class Unsupported(Exception):
    pass


def _t(a):
    import torch

    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _ints(v, n=2):
    a = np.atleast_1d(np.asarray(v)).astype(int).tolist()
    return tuple(a * n if len(a) == 1 else a)


def simulate_nir(graph, x: np.ndarray, dt: float, integration: str):
    """Run graph on x (batch, time, *input). Returns {node: (batch, time, ...)} for all nodes."""
    import nir
    import torch
    import torch.nn.functional as F

    nodes, edges = graph.nodes, list(graph.edges)
    for k, v in nodes.items():
        if isinstance(v, nir.NIRGraph):
            raise Unsupported(f"nested NIRGraph node {k!r}")
    succ, pred = defaultdict(list), defaultdict(list)
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise Unsupported(f"{len(inputs)} Input nodes")
    order, seen = [], set()

    def dfs(u):
        seen.add(u)
        for v in succ[u]:
            if v not in seen:
                dfs(v)
        order.append(u)

    dfs(inputs[0])
    order.reverse()
    pos = {n: i for i, n in enumerate(order)}
    delayed = {(a, b) for a, b in edges if a in pos and b in pos and pos[a] >= pos[b]}

    B, T = x.shape[:2]
    state, prev, rec = {}, {}, defaultdict(list)
    for t in range(T):
        cur = {}
        for n in order:
            node = nodes[n]
            if isinstance(node, nir.Input):
                h = _t(x[:, t])
                want = tuple(int(d) for d in np.asarray(node.input_type["input"]))
                if tuple(h.shape[1:]) != want:
                    raise Unsupported(f"Input node type {list(want)} != data {list(h.shape[1:])}")
            else:
                parts = []
                for p in pred[n]:
                    if (p, n) in delayed:
                        if p in prev:
                            parts.append(prev[p])
                        elif type(nodes[p]).__name__ == "Affine":
                            # t=0: the cycle's previous value is w_rec applied to a zero
                            # state, i.e. its bias (this is what snnTorch RLeaky does)
                            parts.append(_t(nodes[p].bias).expand(B, -1))
                    else:
                        parts.append(cur[p])
                if not parts:
                    raise Unsupported(f"node {n!r} has no ready input at t=0")
                h = parts[0]
                for q in parts[1:]:
                    h = h + q
            cls = type(node).__name__
            if cls in ("Input", "Output"):
                y = h
            elif cls == "Affine":
                y = h @ _t(node.weight).T + _t(node.bias)
            elif cls == "Linear":
                y = h @ _t(node.weight).T
            elif cls == "Conv2d":
                pad = node.padding if isinstance(node.padding, str) else _ints(node.padding)
                y = F.conv2d(
                    h, _t(node.weight), _t(node.bias), _ints(node.stride), pad, _ints(node.dilation), int(node.groups)
                )
            elif cls in ("AvgPool2d", "SumPool2d"):
                k = _ints(node.kernel_size)
                y = F.avg_pool2d(h, k, _ints(node.stride), _ints(node.padding), count_include_pad=True)
                if cls == "SumPool2d":
                    y = y * (k[0] * k[1])
            elif cls == "Flatten":
                sd, ed = int(node.start_dim), int(node.end_dim)
                y = torch.flatten(h, sd + 1 if sd >= 0 else sd, ed + 1 if ed >= 0 else ed)
            elif cls in ("LIF", "LI", "IF", "CubaLIF"):
                v = state.get(n, torch.zeros_like(h))
                if cls == "IF":
                    v = v + dt * _t(node.r) * h
                elif cls == "CubaLIF":
                    i_s = state.get(n + "#i", torch.zeros_like(h))
                    ts, tm = _t(node.tau_syn), _t(node.tau_mem)
                    if integration == "zoh":
                        a = torch.exp(-dt / ts)
                        i_s = a * i_s + (1 - a) * _t(node.w_in) * h
                        b = torch.exp(-dt / tm)
                        v = _t(node.v_leak) + (v - _t(node.v_leak)) * b + (1 - b) * _t(node.r) * i_s
                    else:
                        i_s = i_s + dt / ts * (-i_s + _t(node.w_in) * h)
                        v = v + dt / tm * (_t(node.v_leak) - v + _t(node.r) * i_s)
                    state[n + "#i"] = i_s
                else:
                    tau = _t(node.tau)
                    if integration == "zoh":
                        a = torch.exp(-dt / tau)
                        v = _t(node.v_leak) + (v - _t(node.v_leak)) * a + (1 - a) * _t(node.r) * h
                    else:
                        v = v + dt / tau * (_t(node.v_leak) - v + _t(node.r) * h)
                if cls == "LI":
                    y = v
                else:
                    z = (v > _t(node.v_threshold)).double()
                    v_reset = getattr(node, "v_reset", None)
                    v_reset = _t(v_reset) if v_reset is not None else torch.zeros_like(v)
                    v = torch.where(z > 0, v_reset.expand_as(v), v)
                    y = z
                state[n] = v
            elif cls == "Threshold":
                y = (h > _t(node.threshold)).double()
            else:
                raise Unsupported(f"node type {cls}")
            cur[n] = y
            rec[n].append(y.numpy())
        prev = cur
    return {k: np.stack(v, 1) for k, v in rec.items()}


def reference_check(entry, graph) -> dict:
    npz = np.load(FIXTURES / entry["npz"])
    integ_txt = str(entry.get("nir_integration_that_matches", "forward Euler"))
    integration = "zoh" if "exact" in integ_txt else "euler"
    dt = float(entry["dt_assumed_by_exporter"])
    res = {"integration": integration, "dt": dt}
    try:
        sim = simulate_nir(graph, npz["input"].astype(np.float64), dt, integration)
    except Unsupported as e:
        return {**res, "ran": False, "reason": str(e)}
    outs = [k for k, v in graph.nodes.items() if type(v).__name__ == "Output"]
    got = sim[outs[0]]
    want = npz["output"].astype(np.float64)
    res["ran"] = True
    if got.shape != want.shape:
        res.update(match=False, reason=f"output shape {list(got.shape)} != peer {list(want.shape)}")
        return res
    if entry.get("output_is") == "spikes":
        res["output_mismatch_fraction"] = round(float((got != want).mean()), 5)
        ok = res["output_mismatch_fraction"] == 0.0
    else:
        res["output_max_abs_diff"] = float(np.max(np.abs(got - want)))
        ok = bool(np.allclose(got, want, rtol=1e-3, atol=1e-4))
    layers = {}
    for key in npz.files:
        if key.startswith("spikes__"):
            n = key[len("spikes__") :]
            if n in sim and sim[n].shape == npz[key].shape:
                layers[n] = round(float((sim[n] != npz[key]).mean()), 5)
                ok = ok and layers[n] == 0.0
            else:
                layers[n] = None
    res["spikes_mismatch_fraction"] = layers
    res["match"] = bool(ok)
    return res


def main(argv):
    import nir

    frameworks = argv or sorted(p.stem for p in PARTS.glob("*.json"))
    old = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else []
    kept = [e for e in old if e["framework"] not in frameworks]
    new = []
    for fw in frameworks:
        part = PARTS / f"{fw}.json"
        if not part.exists():
            print(f"!! no entries for {fw} (generator did not finish); its manifest entries were dropped")
            continue
        new += json.loads(part.read_text())
    warn = []
    for e in new:
        if not e.get("file"):
            continue
        path = FIXTURES / e["file"]
        e.pop("nir_read_error", None)
        try:
            g = nir.read(str(path))
            e["loads_with_nir_1_0_8"] = True
        except Exception as ex:  # noqa: BLE001
            e["loads_with_nir_1_0_8"] = False
            e["nir_read_error"] = f"{type(ex).__name__}: {ex}"
            g = None
        if g is not None:
            try:
                e["nir_reference_check"] = reference_check(e, g)
            except Exception as ex:  # noqa: BLE001
                traceback.print_exc()
                e["nir_reference_check"] = {"ran": False, "reason": f"{type(ex).__name__}: {ex}"}
        else:
            e["nir_reference_check"] = {"ran": False, "reason": "nir.read failed"}
        chk = e["nir_reference_check"]
        if e.get("expressible_in_nir") and chk.get("ran") and not chk.get("match"):
            warn.append(f"{e['file']}: marked expressible but the NIR reference simulation differs: {chk}")
        print(
            f"{e['file']:40s} loads={str(e['loads_with_nir_1_0_8']):5s} expressible={str(e.get('expressible_in_nir')):5s} "
            f"ref={'match' if chk.get('match') else ('DIFF' if chk.get('ran') else 'n/a')}"
        )
    entries = kept + new
    entries.sort(key=lambda e: (e["framework"], e.get("file") or "~" + e.get("name", "")))
    MANIFEST.write_text(json.dumps(entries, indent=1, sort_keys=False) + "\n")
    print(
        f"manifest: {len(entries)} entries ({sum(1 for e in entries if e.get('file'))} fixtures) -> {MANIFEST.relative_to(REPO)}"
    )
    for w in warn:
        print("WARNING", w)


if __name__ == "__main__":
    main(sys.argv[1:])
