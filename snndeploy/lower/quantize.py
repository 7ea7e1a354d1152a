"""Quantizing a float LavaPlan to Loihi fixed point: bit widths and the pieces of the rules.

Pure numpy, no Lava import. The arithmetic it targets is Lava's bit-accurate
``PyLifResetModelBitAcc`` + ``PyDenseModelBitAcc`` (all values integers)::

    a_out  = (sum_j w[i, j] * s_j) << weight_exp          Dense, one step late on Lava
    u     <- trunc0(u * (4096 - (du + 1)) / 4096) + (a_in << 6),  wrapped to 24 bits
    v     <- trunc0(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp),  clipped to 24 bits
    s      = v > (vth << 6) ;  v <- 0 where s

(``trunc0``: sign-magnitude shift, i.e. rounding toward zero.) Bit widths:
``du, dv`` unsigned 12-bit, ``vth`` unsigned 17-bit, ``bias_mant`` signed 13-bit,
``bias_exp`` 3-bit, weights 8-bit (see :func:`representable_weights`), ``u, v`` signed 24-bit.

Scale. Every population gets one scale ``S`` (raw state units per float unit of
the plan's shifted voltage ``v'``), and every value that ends up in ``v`` is
mapped with it::

    vth  (float) * S = vth_mant << 6
    w    (float) * S = w_int << (weight_exp + 6)     (w = the plan's Dense weight)
    bias (float) * S = bias_mant << bias_exp

``S`` is the largest value that keeps all of: the threshold at most
``2**VTH_RAW_BITS`` raw (two bits of headroom below the 24-bit state), every
weight representable with ``weight_exp <= WEIGHT_EXP_MAX``, every per-step
input of binary spikes within the 16-bit Dense message (``A_OUT_BITS``), and
every bias within ``bias_mant << BIAS_EXP_MAX``. Then each projection takes the
smallest ``weight_exp >= 0`` whose mantissas fit in 8 bits, and each neuron the
smallest ``bias_exp`` whose mantissa fits in 13 bits.

Decays: ``dv_int = round(dv * 4096)``; Lava adds ``ds_offset = 1`` to ``du``, so
``du_int = round(du * 4096) - 1`` (the float plan's ``du = 1``, "no current
memory", becomes ``du_int = 4095``, which clears ``u`` every step).

Rounding rule: round half away from zero (:func:`round_half_away`) everywhere.
Anything that cannot be represented raises :class:`QuantizationError` naming
the layer, the field and the value; nothing is clipped silently (the report
counts clipped weights, which the scale choice keeps at zero).
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..errors import GraphError

# --------------------------------------------------------------------------- Loihi bit widths

DECAY_BITS = 12  #: du, dv: unsigned 12-bit
DECAY_UNITY = 1 << DECAY_BITS  #: 4096, a decay of 1
DECAY_MAX = DECAY_UNITY - 1  #: 4095
DS_OFFSET = 1  #: Lava adds 1 to du (the "du+1" trap); dv gets 0 (DM_OFFSET)
DM_OFFSET = 0
STATE_BITS = 24  #: u, v: signed 24-bit
STATE_MAX = (1 << (STATE_BITS - 1)) - 1  #: v is clipped to +-STATE_MAX; u wraps at 2**23
VTH_BITS = 17  #: vth mantissa: unsigned 17-bit
VTH_MAX = (1 << VTH_BITS) - 1
VTH_SHIFT = 6  #: effective threshold = vth << 6
ACT_SHIFT = 6  #: Dense input to u is a_in << 6
BIAS_MANT_BITS = 13  #: signed 13-bit
BIAS_MANT_MAX = (1 << (BIAS_MANT_BITS - 1)) - 1  #: 4095
BIAS_EXP_MAX = 7  #: bias_exp: 3-bit, used as 0..7 (left shift)
WEIGHT_BITS = 8  #: Dense weights: 8-bit magnitude per sign mode
WEIGHT_MAX_SINGLE_SIGN = (1 << WEIGHT_BITS) - 1  #: 255 for all-excitatory / all-inhibitory
WEIGHT_MAX_MIXED = (1 << WEIGHT_BITS) - 2  #: 254: mixed sign keeps 7 magnitude bits, even values
WEIGHT_MIN_MIXED = -(1 << WEIGHT_BITS)  #: -256 is the clip floor for mixed sign
WEIGHT_EXP_MIN = 0  #: negative weight_exp would floor the summed input; not used
WEIGHT_EXP_MAX = 7
A_OUT_BITS = 16  #: Dense message to the neuron: signed 16-bit
A_OUT_MAX = (1 << (A_OUT_BITS - 1)) - 1
VTH_RAW_BITS = STATE_BITS - 2  #: target: threshold <= 2**22 raw, 2 bits of headroom below 2**23


class QuantizationError(GraphError):
    """A plan value that cannot be represented in Loihi's fixed point."""


def quant_error(node: str, field: str, value, why: str) -> QuantizationError:
    return QuantizationError(f"cannot quantize layer '{node}' field '{field}' = {value}: {why}")


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, ties away from zero (2.5 -> 3, -2.5 -> -3)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def sign_mode_of(w: np.ndarray) -> str:
    """Lava's ``determine_sign_mode``: excitatory if min >= 0, inhibitory if max <= 0, else mixed."""
    if np.min(w) >= 0:
        return "excitatory"
    if np.max(w) <= 0:
        return "inhibitory"
    return "mixed"


def representable_weights(w: np.ndarray) -> np.ndarray:
    """What Lava's ``clip_weights`` + ``truncate_weights`` (8 bits) make of integer weights ``w``.

    excitatory: clip to 0..255; inhibitory: -255..0; mixed: clip to -256..255, then
    ``(w >> 1) << 1`` (floor to even: the lowest bit is lost).
    """
    w = np.asarray(w, dtype=np.int64)
    mode = sign_mode_of(w)
    if mode == "excitatory":
        return np.clip(w, 0, WEIGHT_MAX_SINGLE_SIGN)
    if mode == "inhibitory":
        return np.clip(w, -WEIGHT_MAX_SINGLE_SIGN, 0)
    return (np.clip(w, WEIGHT_MIN_MIXED, WEIGHT_MAX_SINGLE_SIGN) >> 1) << 1


def quantize_weights(w_raw: np.ndarray) -> Tuple[np.ndarray, int]:
    """Integer weights for raw-unit weights ``w_raw`` (already divided by 2**ACT_SHIFT).

    Picks the smallest ``weight_exp`` in WEIGHT_EXP_MIN..WEIGHT_EXP_MAX whose mantissas
    fit: ``|w_raw| / 2**e <= 255`` (single sign) or ``<= 254`` in steps of 2 (mixed).
    Returns (weights, weight_exp); weights beyond the range are clipped (counted by the caller).
    """
    mixed = sign_mode_of(w_raw) == "mixed"
    wmax = WEIGHT_MAX_MIXED if mixed else WEIGHT_MAX_SINGLE_SIGN
    step = 2 if mixed else 1
    peak = float(np.max(np.abs(w_raw)))
    e = WEIGHT_EXP_MIN
    while e < WEIGHT_EXP_MAX and step * round_half_away(peak / 2.0**e / step) > wmax:
        e += 1
    q = step * round_half_away(w_raw / 2.0**e / step)
    return np.clip(q, -wmax, wmax).astype(np.int64), e


def quantize_decays(nl) -> Tuple[np.ndarray, np.ndarray]:
    """(du_int, dv_int): ``du_int = round(du*4096) - DS_OFFSET``, ``dv_int = round(dv*4096) - DM_OFFSET``."""
    out = []
    for field, d, offset in (("du", nl.du, DS_OFFSET), ("dv", nl.dv, DM_OFFSET)):
        check_finite(nl.node, field, d)
        q = round_half_away(np.asarray(d) * DECAY_UNITY) - offset
        bad = (q < 0) | (q > DECAY_MAX)
        if np.any(bad):
            i = int(np.argmax(bad))
            raise quant_error(
                nl.node,
                field,
                float(d[i]),
                f"decay*4096 = {d[i] * DECAY_UNITY:g} minus offset {offset} must lie in 0..{DECAY_MAX} "
                f"(unsigned {DECAY_BITS}-bit; Lava adds {offset} to {field})",
            )
        out.append(q.astype(np.int64))
    return out[0], out[1]


def check_finite(node: str, field: str, a: np.ndarray, allow_inf: bool = False) -> None:
    a = np.asarray(a, dtype=np.float64)
    bad = np.isnan(a) if allow_inf else ~np.isfinite(a)
    if np.any(bad):
        i = int(np.argmax(bad.reshape(-1)))
        raise quant_error(node, field, float(a.reshape(-1)[i]), f"not a finite number (element {i})")


def row_sums(ws: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Per neuron (positive row sum, |negative row sum|): the extremes of one step of binary spikes."""
    pos = sum(np.clip(w, 0, None).sum(axis=1) for w in ws)
    neg = sum(np.clip(-w, 0, None).sum(axis=1) for w in ws)
    return pos, neg


def row_input_bound(ws: List[np.ndarray]) -> np.ndarray:
    """Largest |sum| of one step of binary spikes, per neuron."""
    return np.maximum(*row_sums(ws))


def choose_scale(nl, ws: List[np.ndarray]) -> Tuple[float, str]:
    """The largest scale S that keeps vth, weights, per-step input and bias in range (see module doc)."""
    bounds = {}
    vth = nl.vth[np.isfinite(nl.vth)]
    if nl.spiking and vth.size and vth.max() > 0:
        bounds["threshold"] = 2.0**VTH_RAW_BITS / vth.max()
    peak = max((float(np.max(np.abs(w))) for w in ws if w.size), default=0.0)
    if peak > 0:
        bounds["weights"] = WEIGHT_MAX_SINGLE_SIGN * 2.0 ** (ACT_SHIFT + WEIGHT_EXP_MAX) / peak
        rows = float(np.max(row_input_bound(ws)))
        # margin: rounding may add half a step per weight
        bounds["16-bit input"] = A_OUT_MAX * 2.0**ACT_SHIFT / (rows * (1 + 2.0**-6))
        du = np.asarray(nl.du, dtype=np.float64)
        if np.any(du < 1):
            # a decaying current (Cuba) sums its input: |u| <= per-step input / du, kept under 2**23
            # (Lava wraps u there) with the same 2 bits of headroom as the threshold
            per_neuron = row_input_bound(ws) / np.maximum(du, 2.0**-DECAY_BITS)
            bounds["24-bit current"] = 2.0**VTH_RAW_BITS / float(np.max(per_neuron))
    bmax = float(np.max(np.abs(nl.bias))) if nl.bias.size else 0.0
    if bmax > 0:
        bounds["bias"] = BIAS_MANT_MAX * 2.0**BIAS_EXP_MAX / bmax
    if not bounds:
        raise quant_error(nl.node, "scale", 0, "no threshold, weight or bias sets a scale (all are zero)")
    limit = min(bounds, key=bounds.get)
    return bounds[limit], limit


def quantize_bias(node: str, b_raw: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per neuron the smallest bias_exp in 0..7 with ``|round(b_raw / 2**e)| <= 4095``."""
    mant = round_half_away(b_raw)
    exp = np.zeros(b_raw.shape, dtype=np.int64)
    for _ in range(BIAS_EXP_MAX):
        over = np.abs(mant) > BIAS_MANT_MAX
        if not np.any(over):
            break
        exp = exp + over
        mant = np.where(over, round_half_away(b_raw / 2.0**exp), mant)
    if np.any(np.abs(mant) > BIAS_MANT_MAX):
        i = int(np.argmax(np.abs(mant)))
        raise quant_error(node, "bias", float(b_raw[i]), f"raw bias exceeds {BIAS_MANT_MAX} << {BIAS_EXP_MAX}")
    return mant.astype(np.int64), exp


def quantize_threshold(nl, scale: float) -> np.ndarray:
    """vth mantissa: ``round(vth * S / 2**6)`` in 0..VTH_MAX; +inf (LI) becomes VTH_MAX."""
    check_finite(nl.node, "vth", nl.vth, allow_inf=not nl.spiking)
    if np.any(nl.vth < 0):
        i = int(np.argmax(nl.vth < 0))
        raise quant_error(
            nl.node, "vth", float(nl.vth[i]), "a negative threshold (v_threshold < v_reset) is not representable"
        )
    raw = np.where(np.isfinite(nl.vth), nl.vth, 0.0) * scale / 2.0**VTH_SHIFT
    q = np.where(np.isfinite(nl.vth), round_half_away(raw), VTH_MAX)
    if np.any(q > VTH_MAX):
        i = int(np.argmax(q))
        raise quant_error(nl.node, "vth", float(nl.vth[i]), f"mantissa {int(q[i])} exceeds {VTH_BITS} bits")
    lost = (q == 0) & (nl.vth > 0)
    if np.any(lost):
        i = int(np.argmax(lost))
        raise quant_error(
            nl.node,
            "vth",
            float(nl.vth[i]),
            f"rounds to 0 at scale {scale:.6g} (the weights need this scale); threshold unrepresentable "
            "relative to the weights",
        )
    return q.astype(np.int64)
