"""Norse model definitions (training side). No Lava import anywhere here.

Models are thin ``nn.Module``s holding an ordered ``layers`` dict whose names
become the NIR node names on export. Architectures are chosen by name from
the model configs in ``models/*.toml`` via :data:`ARCHITECTURES`.
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import torch
from torch import nn


class SpikingMLP(nn.Module):
    """``Linear -> LIF -> ... -> Linear -> LIF``; the output layer's spikes are counted.

    Neurons are Norse ``LIFBoxCell`` (no synaptic current): per step
    ``v <- v + dt/tau * ((v_leak - v) + I)``, spike when ``v > v_th``, reset to ``v_reset``.
    ``forward`` takes spikes (time, batch, features) and returns output spikes (time, batch, classes).
    """

    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, *, tau_mem: float = 1e-2,
                 v_th: float = 1.0, dt: float = 1e-3, surrogate_alpha: float = 100.0,
                 init_gain: float = 1.0):
        super().__init__()
        from norse.torch import LIFBoxCell, LIFBoxParameters

        self.dt = float(dt)
        sizes = [n_in, *hidden, n_out]
        layers: Dict[str, nn.Module] = {}
        for i in range(len(sizes) - 1):
            layers[f"fc{i + 1}"] = nn.Linear(sizes[i], sizes[i + 1])
            p = LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / tau_mem), v_th=torch.as_tensor(v_th),
                                 alpha=torch.as_tensor(surrogate_alpha))
            layers[f"lif{i + 1}"] = LIFBoxCell(p, dt=dt)
        self.layers = nn.ModuleDict(layers)
        for name, m in self.layers.items():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
                with torch.no_grad():
                    m.weight.mul_(init_gain)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states: Dict[str, object] = {}
        outs = []
        for t in range(x.shape[0]):
            h = x[t]
            for name, m in self.layers.items():
                if isinstance(m, nn.Linear):
                    h = m(h)
                else:
                    h, states[name] = m(h, states.get(name))
            outs.append(h)
        return torch.stack(outs)


def build_mlp(cfg: dict, n_in: int, n_out: int) -> nn.Module:
    m = cfg["model"]
    return SpikingMLP(n_in, m["hidden"], n_out, tau_mem=m.get("tau_mem", 1e-2), v_th=m.get("v_th", 1.0),
                      dt=cfg["dt"], surrogate_alpha=m.get("surrogate_alpha", 100.0),
                      init_gain=m.get("init_gain", 1.0))


#: architecture name (``model.arch`` in a config) -> builder(cfg, n_in, n_out)
ARCHITECTURES: Dict[str, Callable[[dict, int, int], nn.Module]] = {
    "mlp": build_mlp,
}
