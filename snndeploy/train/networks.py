"""Norse model definitions (training side). No Lava import anywhere here.

Models are thin ``nn.Module``s holding an ordered ``layers`` dict whose names
become the NIR node names on export. Architectures are chosen by name from
the model configs in ``models/*.toml`` via :data:`ARCHITECTURES`.

Forward passes run *layer by layer over time*: a Linear/Conv layer is applied
to all T steps at once (one large matmul instead of T small ones), then the
neuron layer iterates over time. This is the same arithmetic as stepping the
whole network per time step (layers without state are instantaneous), and it
is what makes GPU training fast. Neuron state is kept in float32 even under
mixed precision (bf16 autocast covers only the matmuls/convolutions).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .neurons import NORSE_SURROGATES, OWN_SURROGATES, GradedNeuron, li_box_over_time, lif_box_over_time


def _is_neuron(m: nn.Module) -> bool:
    from norse.torch import LIBoxCell, LIFBoxCell, LIFCell

    return isinstance(m, (LIFBoxCell, LIFCell, LIBoxCell, GradedNeuron))


class SpikingNet(nn.Module):
    """An ordered stack of stateless layers (Linear, Conv2d, AvgPool2d, Flatten) and LIF cells."""

    def __init__(self, layers: Dict[str, nn.Module], surrogate: str, alpha: float, dt: float):
        super().__init__()
        known = NORSE_SURROGATES + tuple(OWN_SURROGATES)
        if surrogate not in known:
            raise InputError(f"model.surrogate '{surrogate}' unknown; available: {', '.join(known)}")
        self.layers = nn.ModuleDict(layers)
        self.surrogate, self.alpha, self.dt = surrogate, float(alpha), float(dt)

    def forward(self, x: torch.Tensor, steps: Optional[int] = None) -> torch.Tensor:
        """Spikes (T, B, *in) -> output spikes (T, B, classes).

        With ``steps``, ``x`` is (B, *in) held constant for ``steps`` steps (direct input): the
        stateless layers before the first neuron then run once instead of ``steps`` times; the
        result is the same as passing ``x`` repeated over time.
        """
        from norse.torch import LIBoxCell, LIFBoxCell, LIFCell

        modules = list(self.layers.values())
        if steps is not None:
            B, T = x.shape[0], int(steps)
            h = x
            while modules and not _is_neuron(modules[0]):
                h = modules.pop(0)(h)
            h = h.unsqueeze(0).expand((T,) + tuple(h.shape))
        else:
            T, B = x.shape[:2]
            h = x
        rates = []  # the mean spike rate of each spiking layer, for train.spike_rate_penalty
        for m in modules:
            if isinstance(m, LIFBoxCell):
                h = lif_box_over_time(h, m, self.surrogate, self.alpha)
            elif isinstance(m, LIFCell):  # current-based: Norse's own cell, step by step
                state, outs = None, []
                for t in range(T):
                    z, state = m(h[t].float() if h.dtype in (torch.float16, torch.bfloat16) else h[t], state)
                    outs.append(z)
                h = torch.stack(outs)
            elif isinstance(m, LIBoxCell):
                h = li_box_over_time(h, m)
            elif isinstance(m, GradedNeuron):
                h = m.over_time(h)
            else:  # stateless: all steps at once
                y = m(h.reshape((T * B,) + tuple(h.shape[2:])))
                h = y.reshape((T, B) + tuple(y.shape[1:]))
            if isinstance(m, (LIFBoxCell, LIFCell)):
                rates.append(h.float().mean())
        self.spike_rate = torch.stack(rates).mean() if rates else None
        return h


def _lif(tau_mem: float, v_th: float, dt: float, alpha: float):
    from norse.torch import LIFBoxCell, LIFBoxParameters

    p = LIFBoxParameters(
        tau_mem_inv=torch.as_tensor(1.0 / tau_mem), v_th=torch.as_tensor(v_th), alpha=torch.as_tensor(alpha)
    )
    return LIFBoxCell(p, dt=dt)


def _li(tau_mem: float, dt: float):
    from norse.torch import LIBoxCell, LIBoxParameters

    return LIBoxCell(LIBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / tau_mem)), dt=dt)


#: ``readout.kind`` -> (output neuron, how a prediction is made); the harness's rule -- argmax over
#: classes of the output summed over time -- gives both: spike counts, or the mean membrane potential
READOUTS = {
    "spike_count": "output layer LIF; prediction = argmax of output spike counts",
    "membrane": "output layer LI (leaky integrator, never spikes); prediction = argmax of its membrane "
    "potential summed (= averaged) over time",
    "mean_output": "graded output neurons (model.arch graded_mlp); prediction = argmax of the output averaged "
    "over time",
}
#: the readout each architecture can build (spiking nets: LIF or LI output; the graded MLP: its own)
ARCH_READOUTS = {
    "mlp": ("spike_count", "membrane"),
    "conv": ("spike_count", "membrane"),
    "graded_mlp": ("mean_output",),
}


def readout_kind(cfg: dict) -> str:
    arch = cfg.get("model", {}).get("arch")
    allowed = ARCH_READOUTS.get(arch, tuple(READOUTS))
    kind = cfg.get("readout", {}).get("kind", allowed[0])
    if kind not in READOUTS:
        raise InputError(f"readout.kind '{kind}' unknown; available: {', '.join(READOUTS)}")
    if kind not in allowed:
        raise InputError(f"readout.kind '{kind}' does not go with model.arch '{arch}' (it takes: {', '.join(allowed)})")
    return kind


def _output_neuron(readout: str, tau_mem: float, v_th: float, dt: float, alpha: float) -> Tuple[str, nn.Module]:
    if readout == "membrane":
        return "li", _li(tau_mem, dt)
    return "lif", _lif(tau_mem, v_th, dt, alpha)


def _gains(init_gain, n: int) -> List[float]:
    """``init_gain``: one number for every layer, or a list with one per weighted layer."""
    if isinstance(init_gain, (int, float)):
        return [float(init_gain)] * n
    gains = [float(g) for g in init_gain]
    if len(gains) != n:
        raise InputError(f"model.init_gain lists {len(gains)} gains for {n} weighted layers")
    return gains


def _mlp_layers(
    sizes: Sequence[int],
    init_gain,
    neuron_prefix: str,
    neuron: Callable[[], nn.Module],
    output: Optional[Tuple[str, nn.Module]] = None,
):
    """``fc1, <neuron>1, fc2, <neuron>2, ...`` for layer widths ``sizes``; ``output`` = (prefix, module)
    replaces the last neuron (e.g. a leaky-integrator readout)."""
    gains = _gains(init_gain, len(sizes) - 1)
    layers: Dict[str, nn.Module] = {}
    n = len(sizes) - 1
    for i in range(n):
        layers[f"fc{i + 1}"] = nn.Linear(sizes[i], sizes[i + 1])
        _init(layers[f"fc{i + 1}"], gains[i])
        prefix, mod = output if (output is not None and i == n - 1) else (neuron_prefix, None)
        layers[f"{prefix}{i + 1}"] = mod if mod is not None else neuron()
    return layers


def _init(m: nn.Module, gain: float) -> None:
    """Kaiming-uniform (fan-in, linear), scaled by ``gain``; zero biases."""
    nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
    with torch.no_grad():
        m.weight.mul_(gain)
    if m.bias is not None:
        nn.init.zeros_(m.bias)


class SpikingMLP(SpikingNet):
    """``Linear -> LIF -> ... -> Linear -> LIF``; the output layer's spikes are counted.

    Neurons are Norse ``LIFBoxCell`` (no synaptic current). ``forward`` takes spikes
    (time, batch, features) and returns output spikes (time, batch, classes).
    """

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_out: int,
        *,
        tau_mem: float = 1e-2,
        v_th: float = 1.0,
        dt: float = 1e-3,
        surrogate_alpha: float = 100.0,
        init_gain: float = 1.0,
        surrogate: str = "super",
        readout: str = "spike_count",
    ):
        layers = _mlp_layers(
            [n_in, *hidden, n_out],
            init_gain,
            "lif",
            lambda: _lif(tau_mem, v_th, dt, surrogate_alpha),
            _output_neuron(readout, tau_mem, v_th, dt, surrogate_alpha),
        )
        super().__init__(layers, surrogate, surrogate_alpha, dt)
        self.input_shape = (n_in,)


def build_mlp(cfg: dict, in_shape: Sequence[int], n_out: int) -> nn.Module:
    m = cfg["model"]
    n_in = int(np.prod(in_shape))
    return SpikingMLP(
        n_in,
        m["hidden"],
        n_out,
        tau_mem=m.get("tau_mem", 1e-2),
        v_th=m.get("v_th", 1.0),
        dt=cfg["dt"],
        surrogate_alpha=m.get("surrogate_alpha", 100.0),
        init_gain=m.get("init_gain", 1.0),
        surrogate=m.get("surrogate", "super"),
        readout=readout_kind(cfg),
    )


class SpikingConvNet(SpikingNet):
    """A small convolutional SNN for 1x28x28 images (Fashion-MNIST), in one of two layouts::

        "lif-pool": conv1 (C1, k5, pad 2) -> lif1 -> pool1 (avg 2) -> conv2 (C2, k3, stride 2, pad 1) -> lif2
        "pool-lif": conv1 (C1, k5, pad 2) -> pool1 (avg 2) -> lif1 -> conv2 (C2, k3, pad 1) -> pool2 (avg 2) -> lif2

    both followed by ``flat -> fc3 (hidden) -> lif3 -> fc4 (classes) -> lif4``. "pool-lif" pools
    the synaptic current (linear, so conv+pool is one linear map, composed into one matrix on
    Lava) and has 4x fewer first-layer neurons: about half the training time for the same shapes.
    """

    LAYOUTS = ("lif-pool", "pool-lif")

    def __init__(
        self,
        in_shape: Sequence[int],
        n_out: int,
        *,
        channels=(16, 32),
        hidden: int = 128,
        tau_mem: float = 1e-2,
        v_th: float = 1.0,
        dt: float = 1e-3,
        surrogate_alpha: float = 100.0,
        init_gain: float = 1.0,
        surrogate: str = "super",
        layout: str = "lif-pool",
        readout: str = "spike_count",
    ):
        if layout not in self.LAYOUTS:
            raise InputError(f"model.layout '{layout}' unknown; available: {', '.join(self.LAYOUTS)}")
        c_in, h, w = (int(d) for d in in_shape)
        c1, c2 = channels
        lif = lambda: _lif(tau_mem, v_th, dt, surrogate_alpha)  # noqa: E731
        if layout == "lif-pool":
            layers: Dict[str, nn.Module] = {
                "conv1": nn.Conv2d(c_in, c1, 5, padding=2),
                "lif1": lif(),
                "pool1": nn.AvgPool2d(2),
                "conv2": nn.Conv2d(c1, c2, 3, stride=2, padding=1),
                "lif2": lif(),
            }
            flat = c2 * ((h // 2 + 1) // 2) * ((w // 2 + 1) // 2)
        else:
            layers = {
                "conv1": nn.Conv2d(c_in, c1, 5, padding=2),
                "pool1": nn.AvgPool2d(2),
                "lif1": lif(),
                "conv2": nn.Conv2d(c1, c2, 3, padding=1),
                "pool2": nn.AvgPool2d(2),
                "lif2": lif(),
            }
            flat = c2 * (h // 4) * (w // 4)
        out_prefix, out_neuron = _output_neuron(readout, tau_mem, v_th, dt, surrogate_alpha)
        layers.update(
            {
                "flat": nn.Flatten(),
                "fc3": nn.Linear(flat, hidden),
                "lif3": lif(),
                "fc4": nn.Linear(hidden, n_out),
                f"{out_prefix}4": out_neuron,
            }
        )
        weighted = [m for m in layers.values() if isinstance(m, (nn.Linear, nn.Conv2d))]
        for m, g in zip(weighted, _gains(init_gain, len(weighted))):
            _init(m, g)
        super().__init__(layers, surrogate, surrogate_alpha, dt)
        self.input_shape = (c_in, h, w)


def build_conv(cfg: dict, in_shape: Sequence[int], n_out: int) -> nn.Module:
    m = cfg["model"]
    shape = tuple(int(d) for d in m.get("input_shape", in_shape))  # e.g. [1, 8, 8] for the flat digits
    if int(np.prod(shape)) != int(np.prod(in_shape)):
        raise InputError(f"model.input_shape {shape} does not hold the dataset's {tuple(in_shape)} values")
    if len(shape) == 2:  # grey images: one channel
        shape = (1,) + shape
    return SpikingConvNet(
        shape,
        n_out,
        channels=tuple(m.get("channels", (16, 32))),
        hidden=m.get("hidden", 128),
        tau_mem=m.get("tau_mem", 1e-2),
        v_th=m.get("v_th", 1.0),
        dt=cfg["dt"],
        surrogate_alpha=m.get("surrogate_alpha", 100.0),
        init_gain=m.get("init_gain", 1.0),
        surrogate=m.get("surrogate", "super"),
        layout=m.get("layout", "lif-pool"),
        readout=readout_kind(cfg),
    )


class GradedMLP(SpikingNet):
    """``Linear -> GradedNeuron -> ... -> Linear -> GradedNeuron``; outputs averaged over time."""

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_out: int,
        *,
        decay: float = 0.9,
        threshold: float = 0.5,
        penalty: float = 1.0,
        dt: float = 1e-3,
        init_gain=1.0,
    ):
        layers = _mlp_layers([n_in, *hidden, n_out], init_gain, "gn", lambda: GradedNeuron(decay, threshold, penalty))
        super().__init__(layers, "super", 100.0, dt)
        self.input_shape = (n_in,)


def build_graded_mlp(cfg: dict, in_shape: Sequence[int], n_out: int) -> nn.Module:
    m = cfg["model"]
    n_in = int(np.prod(in_shape))
    readout_kind(cfg)  # checked here too, before training
    return GradedMLP(
        n_in,
        m["hidden"],
        n_out,
        decay=m.get("decay", 0.9),
        threshold=m.get("threshold", 0.5),
        penalty=m.get("penalty", 1.0),
        dt=cfg["dt"],
        init_gain=m.get("init_gain", 1.0),
    )


#: architecture name (``model.arch`` in a config) -> builder(cfg, input_shape, n_classes)
ARCHITECTURES: Dict[str, Callable[[dict, Sequence[int], int], nn.Module]] = {
    "mlp": build_mlp,
    "conv": build_conv,
    "graded_mlp": build_graded_mlp,
}
