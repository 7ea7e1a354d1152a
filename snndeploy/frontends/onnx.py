"""ONNX ReLU networks to rate-coded spiking NIR graphs (the reading and the mathematics; no data).

Reading (:func:`read_onnx`): the ONNX graph must be one chain from its input to its output of
``Gemm``, ``MatMul`` (+ ``Add``), ``Conv``, ``Relu``, ``AveragePool``, ``GlobalAveragePool``,
``Flatten``/``Reshape`` (to one axis), ``BatchNormalization`` (folded into the Conv/Gemm before
it), ``Dropout``/``Identity`` (skipped) and a final ``Softmax``/``LogSoftmax`` (dropped: the argmax
does not change). Anything else is refused naming the ONNX node, its op type and the supported
ops; so is a non-ReLU activation, ``MaxPool`` (no rate-coded equivalent without a winner-take-all
circuit), a dynamic input shape and a file ONNX's checker rejects.

The ops are grouped into **segments**: the linear ops up to and including the next ``Relu`` (the
last segment ends at the output). Each segment becomes the same linear NIR nodes followed by an
``IF`` population (threshold 1, reset to 0, per-step integration). Rate coding (Diehl et al.
2015, Rueckauer et al. 2017): with ``a_l`` the ReLU activations of segment ``l`` on calibration
data and ``lambda_l`` their maximum or P-th percentile (``lambda_0 = 1``: inputs are rates in
[0, 1]), segment ``l``'s map ``f_l`` becomes ``f'_l(x) = f_l(lambda_{l-1} x) / lambda_l``: the
first weighted op's weight is multiplied by ``lambda_{l-1}``, the last one's weight and bias
divided by ``lambda_l``. An IF neuron driven by ``f'_l`` of input rates fires at a rate close to
``a_l / lambda_l`` (clipped at 1 spike per step).

Rate calibration (:func:`rate_gains`): reset to 0 loses the charge above threshold at every spike,
so the measured rate ``r_l`` falls below ``a_l / lambda_l``, more at higher drive. The factor that
turns segment ``l``'s rates back into activations for the next segment (``lambda_l`` above) is
then fitted per channel (per neuron of a dense layer) by least squares on the calibration
samples, ``mu_c = sum(a r) / sum(r^2)``, from rates simulated on ``norse`` layer by layer
(``f'_{l+1}(x) = f_{l+1}(mu_l x) / lambda_{l+1}``).

Readout (:data:`READOUTS`): the output segment drives a non-spiking LI (``membrane``, default:
its potential summed over time, no ties and no charge lost at reset) or an IF whose spike counts
are read (``spike_count``); the prediction is the argmax either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import GraphError, InputError

#: op types converted, and what happens to them
SUPPORTED_OPS = (
    "Gemm",
    "MatMul",
    "Add",
    "Conv",
    "Relu",
    "AveragePool",
    "GlobalAveragePool",
    "Flatten",
    "Reshape",
    "BatchNormalization",
    "Dropout",
    "Identity",
    "Softmax",
    "LogSoftmax",
)
#: activations other than ReLU: refused with that reason
OTHER_ACTIVATIONS = ("Sigmoid", "Tanh", "LeakyRelu", "Elu", "Selu", "Gelu", "HardSigmoid", "HardSwish", "PRelu", "Clip")
#: the IF threshold of every converted population (weights carry the scale)
THRESHOLD = 1.0
#: readouts of a converted graph: the output segment into a non-spiking LI whose potential, summed
#: over time, is read (``membrane``), or into an IF whose spike counts are read (``spike_count``)
READOUTS = ("membrane", "spike_count")
DEFAULT_READOUT = "membrane"
#: the membrane readout's LI: ``tau = 2 dt``, ``r = tau / dt``, ``v_leak = 0``, so per step
#: ``v <- v + (dt/tau)(-v + r I) = v / 2 + I`` and ``sum_t v_t = sum_s (2 - 2^-(T-1-s)) I_s`` (s = 0..T-1): each step's
#: input weighs 2 but the last few (no ties between equal spike counts, no charge lost at reset).
#: ``tau = dt`` (``v = I``) would need the decay 1 = 4096/4096, one more than Loihi's 12-bit dv holds.
READOUT_TAU_STEPS = 2.0


@dataclass
class Op:
    """One linear op of the ANN (weights in NIR's conventions) or a ReLU."""

    kind: str  # "dense" | "conv" | "avgpool" | "flatten" | "relu"
    onnx_node: str
    params: Dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Ann:
    """A ReLU network read from ONNX: its ops in order and its per-sample input shape."""

    path: str
    input_name: str
    input_shape: Tuple[int, ...]
    ops: Tuple[Op, ...]

    def segments(self) -> List[List[Op]]:
        """The ops split after every ReLU (the ReLU itself dropped); the last segment is the output's."""
        out, cur = [], []
        for op in self.ops:
            if op.kind == "relu":
                if not cur:
                    raise GraphError(f"{self.path}: ONNX node '{op.onnx_node}' (Relu) follows another Relu")
                out.append(cur)
                cur = []
            else:
                cur.append(op)
        if not cur:
            raise GraphError(f"{self.path}: the network ends with a Relu; the output layer must be linear (logits)")
        return out + [cur]


def _refuse(path, node, why: str = "") -> GraphError:
    detail = f": {why}" if why else ""
    return GraphError(
        f"{path}: ONNX node '{node.name or '(unnamed)'}' has op type {node.op_type}{detail}; supported ops: "
        f"{', '.join(SUPPORTED_OPS)}"
    )


def _attrs(node) -> Dict[str, object]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _load(path: Path):
    import onnx

    if not path.is_file():
        raise InputError(f"ONNX file '{path}' does not exist")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise GraphError(f"'{path}' is not a valid ONNX model: {type(exc).__name__}: {first}") from None
    return model


def _input(path: Path, model) -> Tuple[str, Tuple[int, ...]]:
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise GraphError(f"{path}: the ONNX graph has {len(inputs)} data inputs; exactly one is converted")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = []
    for k, d in enumerate(dims[1:], start=1):
        if not d.HasField("dim_value") or d.dim_value <= 0:
            raise GraphError(
                f"{path}: input '{inputs[0].name}' has a dynamic size on axis {k} ('{d.dim_param or '?'}'); "
                "only the batch axis (0) may be dynamic: export the model with a fixed input shape"
            )
        shape.append(int(d.dim_value))
    return inputs[0].name, tuple(shape)


def read_onnx(path) -> Ann:
    """The ONNX file as a chain of ops (see the module doc); refusals name the ONNX node."""
    from onnx import numpy_helper

    path = Path(path)
    model = _load(path)
    name, shape = _input(path, model)
    consts = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(_attrs(n)["value"]).astype(np.float64)
    ops: List[Op] = []
    current = name
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        data = [i for i in node.input if i and i not in consts]
        if data != [current]:
            raise _refuse(path, node, f"it does not continue the chain from '{current}' (branches are not converted)")
        _read_node(path, node, consts, ops)
        current = node.output[0]
    if current != model.graph.output[0].name:
        end = model.graph.output[0].name
        raise GraphError(f"{path}: the chain ends at '{current}', not at the graph output '{end}'")
    if not any(op.kind in ("dense", "conv") for op in ops):
        raise GraphError(f"{path}: the network has no Gemm, MatMul or Conv to convert")
    return Ann(str(path), name, shape, tuple(ops))


def _read_node(path, node, consts, ops: List[Op]) -> None:
    t, a = node.op_type, _attrs(node)
    if t in ("Dropout", "Identity", "Softmax", "LogSoftmax"):
        return
    if t == "Relu":
        ops.append(Op("relu", node.name))
    elif t == "Gemm":
        ops.append(_gemm(path, node, a, consts))
    elif t == "MatMul":
        w = consts[[i for i in node.input if i in consts][0]]
        if w.ndim != 2:
            raise _refuse(path, node, f"its weight has shape {w.shape}; a 2-D matrix is converted")
        ops.append(Op("dense", node.name, {"weight": w.T.copy(), "bias": np.zeros(w.shape[1])}))
    elif t == "Add":
        if not ops or ops[-1].kind not in ("dense", "conv"):
            raise _refuse(path, node, "an Add is converted only as the bias of the MatMul/Conv before it")
        b = consts[[i for i in node.input if i in consts][0]].reshape(-1)
        ops[-1].params["bias"] = ops[-1].params["bias"] + b
    elif t == "Conv":
        ops.append(_conv(path, node, a, consts))
    elif t == "BatchNormalization":
        _fold_bn(path, node, a, consts, ops)
    elif t in ("AveragePool", "GlobalAveragePool"):
        ops.append(_avgpool(path, node, a))
    elif t in ("Flatten", "Reshape"):
        if t == "Flatten" and a.get("axis", 1) != 1:
            raise _refuse(path, node, f"Flatten axis {a.get('axis')}; only axis 1 (keep the batch axis) is converted")
        if t == "Reshape":
            target = consts[node.input[1]].astype(np.int64).reshape(-1)
            if len(target) != 2:
                raise _refuse(path, node, f"Reshape to {target.tolist()}; only a flatten to (batch, features)")
        ops.append(Op("flatten", node.name))
    elif t in OTHER_ACTIVATIONS:
        raise _refuse(path, node, "a non-ReLU activation has no rate-coded IF equivalent")
    elif t == "MaxPool":
        raise _refuse(path, node, "max pooling has no rate-coded equivalent here; retrain with AveragePool")
    else:
        raise _refuse(path, node)


def _gemm(path, node, a, consts) -> Op:
    if a.get("transA", 0):
        raise _refuse(path, node, "transA = 1 is not converted")
    b = consts[node.input[1]]
    w = (b if a.get("transB", 0) else b.T) * float(a.get("alpha", 1.0))  # (out, in)
    bias = np.zeros(w.shape[0])
    if len(node.input) > 2 and node.input[2]:
        bias = np.broadcast_to(consts[node.input[2]].reshape(-1) * float(a.get("beta", 1.0)), (w.shape[0],)).copy()
    return Op("dense", node.name, {"weight": w.copy(), "bias": bias})


def _pads(path, node, a) -> Tuple[int, int]:
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise _refuse(path, node, f"auto_pad {a['auto_pad']!r}; give explicit pads")
    p = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
    if p[:2] != p[2:]:
        raise _refuse(path, node, f"asymmetric pads {p}")
    return p[0], p[1]


def _conv(path, node, a, consts) -> Op:
    w = consts[node.input[1]]
    if w.ndim != 4:
        raise _refuse(path, node, f"weight of shape {w.shape}; only 2-D convolutions are converted")
    bias = consts[node.input[2]].reshape(-1) if len(node.input) > 2 and node.input[2] else np.zeros(w.shape[0])
    return Op(
        "conv",
        node.name,
        {
            "weight": w.copy(),
            "bias": bias.copy(),
            "stride": tuple(int(v) for v in a.get("strides", [1, 1])),
            "padding": _pads(path, node, a),
            "dilation": tuple(int(v) for v in a.get("dilations", [1, 1])),
            "groups": int(a.get("group", 1)),
        },
    )


def _fold_bn(path, node, a, consts, ops: List[Op]) -> None:
    """y = gamma (x - mean) / sqrt(var + eps) + beta folded into the Conv/Gemm just before it."""
    if not ops or ops[-1].kind not in ("dense", "conv"):
        raise _refuse(path, node, "BatchNormalization is folded only into a Conv or Gemm right before it")
    gamma, beta, mean, var = (consts[i].reshape(-1) for i in node.input[1:5])
    k = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
    p = ops[-1].params
    p["weight"] = p["weight"] * k.reshape((-1,) + (1,) * (p["weight"].ndim - 1))
    p["bias"] = (p["bias"] - mean) * k + beta


def _avgpool(path, node, a) -> Op:
    if node.op_type == "GlobalAveragePool":
        return Op("avgpool", node.name, {"global": True})
    if a.get("ceil_mode", 0):
        raise _refuse(path, node, "ceil_mode = 1 is not converted")
    pads = _pads(path, node, a)
    if any(pads) and not a.get("count_include_pad", 0):
        raise _refuse(path, node, "padding without count_include_pad = 1 (NIR's AvgPool2d counts the padding)")
    k = tuple(int(v) for v in a["kernel_shape"])
    return Op(
        "avgpool",
        node.name,
        {"kernel": k, "stride": tuple(int(v) for v in a.get("strides", k)), "padding": pads},
    )


# --------------------------------------------------------------------------- the ANN's own forward


def forward(ops, x, relu_outputs: Optional[list] = None):
    """The ANN on a float64 torch batch ``x`` (B, *input_shape): the logits; the ReLU activations are
    appended to ``relu_outputs`` when given. Also fills in every op's input/output shapes."""
    import torch
    import torch.nn.functional as F

    h = x
    for op in ops:
        op.params["in_shape"] = tuple(h.shape[1:])
        p = op.params
        if op.kind == "dense":
            h = F.linear(h.reshape(h.shape[0], -1), torch.as_tensor(p["weight"]), torch.as_tensor(p["bias"]))
        elif op.kind == "conv":
            w, b = torch.as_tensor(p["weight"]), torch.as_tensor(p["bias"])
            h = F.conv2d(h, w, b, p["stride"], p["padding"], p["dilation"], p["groups"])
        elif op.kind == "avgpool":
            if p.get("global"):
                p.update(kernel=tuple(h.shape[2:]), stride=tuple(h.shape[2:]), padding=(0, 0))
            h = F.avg_pool2d(h, p["kernel"], p["stride"], p["padding"], count_include_pad=True)
        elif op.kind == "flatten":
            h = h.reshape(h.shape[0], -1)
        elif op.kind == "relu":
            h = torch.relu(h)
            if relu_outputs is not None:
                relu_outputs.append(h.detach())
        op.params["out_shape"] = tuple(h.shape[1:])
    return h


#: hidden layers' lambda is multiplied by this (see :func:`scales`)
DEFAULT_HEADROOM = 1.5


def scales(
    ann: Ann, x_calib: np.ndarray, normalization: str, headroom: float = DEFAULT_HEADROOM, acts=None
) -> List[float]:
    """lambda per segment (module doc): the max or P-th percentile of its activations on ``x_calib``
    (the output segment: of its positive logits), times ``headroom`` for the hidden segments.

    Why the headroom: an IF neuron that resets to 0 (NIR's reset; NIR has no reset by
    subtraction) loses ``v - threshold`` at every spike, which grows with the input per step; at
    rates near 1 spike per step the loss is large and systematic (more steps do not remove it).
    Hidden rates kept at or below ``1 / headroom`` make the loss small, at the price of rate
    resolution. Measured on a Fashion-MNIST CNN, 2000 test samples, T = 64 (docs/conversion.md):
    headroom 1 lost 4.1 points against the ANN (4.0 at T = 128: more steps do not help), 1.5 lost
    0.5, 2 lost 1.0, 3 lost 1.45."""
    kind, pct = parse_normalization(normalization)
    acts = activations(ann, x_calib) if acts is None else acts  # (already computed: :func:`activations`)
    out = []
    if not headroom >= 1:
        raise InputError(f"--headroom must be >= 1, got {headroom}")
    for i, a in enumerate(acts):
        v = a.reshape(-1)
        lam = float(v.max()) if kind == "max" else float(np.percentile(v, pct))
        lam *= headroom if i < len(acts) - 1 else 1.0
        if not lam > 0:
            raise GraphError(
                f"{ann.path}: segment {i} never activates on the calibration data (its {normalization} is 0); "
                "cannot set its threshold"
            )
        out.append(lam)
    return out


def activations(ann: Ann, x: np.ndarray) -> List[np.ndarray]:
    """Per segment, the ANN's ReLU activations on ``x`` (the output segment: its logits clipped at 0)."""
    import torch

    acts: list = []
    with torch.no_grad():
        logits = forward(list(ann.ops), torch.as_tensor(x, dtype=torch.float64), acts)
    return [a.numpy() for a in acts] + [np.clip(logits.numpy(), 0, None)]


def rate_gains(acts: np.ndarray, rates: np.ndarray, fallback: float) -> np.ndarray:
    """The factor per channel (axis 1; per neuron for a dense layer) that turns a population's spike
    rates ``rates`` (N, C, ...) back into its ANN activations ``acts`` (same shape), by least squares
    over samples and positions: ``mu_c = sum(a r) / sum(r^2)``; ``fallback`` for a channel that never
    fired. Reset to 0 makes ``r`` fall short of ``a / lambda`` (module doc), so typically ``mu_c > lambda``."""
    if acts.shape != rates.shape or acts.ndim < 2:
        raise GraphError(f"rate calibration: activations {acts.shape} and rates {rates.shape} must match (N, C, ...)")
    axes = (0,) + tuple(range(2, acts.ndim))
    num, den = (acts * rates).sum(axis=axes), (rates * rates).sum(axis=axes)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), float(fallback))


def parse_normalization(text: str) -> Tuple[str, float]:
    if text == "max":
        return "max", 100.0
    if text.startswith("percentile:"):
        try:
            p = float(text.split(":", 1)[1])
        except ValueError:
            p = -1.0
        if 0 < p <= 100:
            return "percentile", p
    raise InputError(f"--normalization must be 'max' or 'percentile:P' with 0 < P <= 100, got '{text}'")


# --------------------------------------------------------------------------- to NIR


def _nir_node(op: Op):
    import nir

    p = op.params
    if op.kind == "dense":
        return nir.Affine(weight=p["weight"], bias=p["bias"])
    if op.kind == "conv":
        return nir.Conv2d(
            input_shape=tuple(p["in_shape"][1:]),
            weight=p["weight"],
            stride=p["stride"],
            padding=p["padding"],
            dilation=p["dilation"],
            groups=p["groups"],
            bias=p["bias"],
        )
    if op.kind == "avgpool":
        return nir.AvgPool2d(
            kernel_size=np.array(p["kernel"]), stride=np.array(p["stride"]), padding=np.array(p["padding"])
        )
    return nir.Flatten(input_type={"input": np.array(p["in_shape"])}, start_dim=0, end_dim=-1)


def _input_gain(op: Op, gain) -> np.ndarray:
    """``gain`` (a scalar, or one value per channel of the segment's input population) broadcast onto
    ``op``'s weight, which reads that population (through pooling / flatten, which keep channels)."""
    g = np.asarray(gain, dtype=np.float64)
    w = op.params["weight"]
    if g.ndim == 0:
        return g
    if op.kind == "conv":  # weight (out, in / groups, kh, kw): input channel of [o, j] is its group's j-th
        out_ch, per_group = w.shape[0], w.shape[1]
        group = np.arange(out_ch) // (out_ch // op.params["groups"])
        idx = group[:, None] * per_group + np.arange(per_group)[None, :]
        return g[idx][:, :, None, None]
    features = w.shape[1]  # dense: channel-major flattened (C, H, W) reads each channel's gain H*W times
    if features % len(g):
        raise GraphError(f"ONNX node '{op.onnx_node}': {features} inputs do not split into {len(g)} channels")
    return np.repeat(g, features // len(g))[None, :]


def _scaled(segment: List[Op], gain_in, lam_out: float) -> List[Op]:
    """Copies of a segment's ops with f'(x) = f(gain_in x) / lam_out (module doc)."""
    ops = [Op(o.kind, o.onnx_node, dict(o.params)) for o in segment]
    weighted = [o for o in ops if o.kind in ("dense", "conv")]
    if not weighted:
        raise GraphError(f"a segment of only pooling/flatten ({[o.onnx_node for o in segment]}) is not converted")
    weighted[0].params["weight"] = weighted[0].params["weight"] * _input_gain(weighted[0], gain_in)
    last = weighted[-1].params
    last["weight"] = last["weight"] / lam_out
    last["bias"] = last["bias"] / lam_out
    return ops


def to_snn(ann: Ann, lambdas: List[float], dt: float, metadata: dict, gains=None, readout: str = DEFAULT_READOUT):
    """The spiking NIR graph (module doc): per segment its scaled linear nodes and an IF population
    (``if{i}``); the output segment's population is an LI (``li{i}``) for the ``membrane`` readout.
    ``gains[i]`` multiplies segment i's input (default ``lambdas[i - 1]``, 1 for the first)."""
    import nir
    import torch

    if readout not in READOUTS:
        raise InputError(f"--readout must be one of {', '.join(READOUTS)}, got '{readout}'")
    with torch.no_grad():
        forward(list(ann.ops), torch.zeros((1,) + ann.input_shape, dtype=torch.float64))
    segs = ann.segments()
    if len(lambdas) != len(segs):
        raise GraphError(f"{len(lambdas)} scales for {len(segs)} segments")
    gains = [1.0] + list(lambdas[:-1]) if gains is None else list(gains)
    if len(gains) != len(segs):
        raise GraphError(f"{len(gains)} input gains for {len(segs)} segments")
    nodes = {"input": nir.Input(input_type={"input": np.array(ann.input_shape)})}
    edges, prev = [], "input"
    for i, (seg, lam, gain) in enumerate(zip(segs, lambdas, gains)):
        for op in _scaled(seg, gain, lam):
            if op.kind == "dense" and len(op.params["in_shape"]) > 1:  # ONNX's Gemm flattens implicitly
                flat = Op("flatten", f"{op.onnx_node}_flatten", {"in_shape": op.params["in_shape"]})
                flat.params["out_shape"] = (int(np.prod(op.params["in_shape"])),)
                nodes[f"flatten{i}_{len(nodes)}"] = _nir_node(flat)
                nodes[f"flatten{i}_{len(nodes) - 1}"].output_type = {"output": np.array(flat.params["out_shape"])}
                edges.append((prev, f"flatten{i}_{len(nodes) - 1}"))
                prev = f"flatten{i}_{len(nodes) - 1}"
                op.params["in_shape"] = flat.params["out_shape"]
            name = f"{op.kind}{i}_{op.onnx_node or len(nodes)}".replace("/", "_").replace(".", "_")
            node = _nir_node(op)
            node.input_type = {"input": np.array(op.params["in_shape"])}
            node.output_type = {"output": np.array(op.params["out_shape"])}
            nodes[name] = node
            edges.append((prev, name))
            prev = name
        shape = seg[-1].params["out_shape"]
        if i == len(segs) - 1 and readout == "membrane":
            tau = READOUT_TAU_STEPS * dt
            pop = f"li{i}"
            nodes[pop] = nir.LI(tau=np.full(shape, tau), r=np.full(shape, tau / dt), v_leak=np.zeros(shape))
        else:
            pop = f"if{i}"
            nodes[pop] = nir.IF(r=np.ones(shape), v_threshold=np.full(shape, THRESHOLD), v_reset=np.zeros(shape))
        edges.append((prev, pop))
        prev = pop
    nodes["output"] = nir.Output(output_type={"output": np.array(segs[-1][-1].params["out_shape"])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={**metadata, "dt": float(dt)}, type_check=True)
