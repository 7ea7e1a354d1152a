"""``PopLIF``: Lava's ``LIFReset`` with PER-NEURON ``du``, ``dv`` and ``vth``.

Lava's ``LIF``/``LIFReset`` hold ``du``, ``dv`` and ``vth`` as one scalar per process
(lava/proc/lif/process.py:50-51, :124), so a population whose neurons differ in them needs
one process per distinct tuple, which Lava's compiler does not survive for large populations
(RecursionError). ``PopLIF`` holds them, like ``bias_mant``/``bias_exp``, as one value per
neuron; everything else is ``LIFReset``'s behaviour, operation for operation, elementwise.

Per Lava time step ``t`` (1-based, ``PyLoihiProcessModel.time_step``), in the spiking phase,
with ``a`` what arrives on ``a_in``::

    if t % reset_interval == reset_offset % reset_interval:   # before integrating a[t]
        u *= 0; v *= 0

``floating_pt`` (``PyPopLifModelFloat``; AbstractPyLifModelFloat.subthr_dynamics +
PyLifResetModelFloat.run_spk, lava/proc/lif/models.py:45-56, :365-383; ``bias_exp`` unused)::

    u = u * (1 - du);  u += a
    v = v * (1 - dv) + u + bias_mant
    s = v > vth;  v[s] = 0

``fixed_pt`` (``PyPopLifModelBitAcc``; AbstractPyLifModelFixed + PyLifResetModelBitAcc,
lava/proc/lif/models.py:72-216, :389-449); integers, ``trunc`` rounds toward zero
(``sign(x) * (|x| >> 12)``)::

    bias = bias_mant << bias_exp  (bias_mant >> -bias_exp where bias_exp < 0)   # every step
    vth_eff = vth << 6                                                          # first step only
    u = trunc(u * (4096 - (du + 1)) / 4096) + (a << 6)
    u = u - 2**24 if u > 2**23;  u = u + 2**24 if u <= -2**23                  # one 24-bit wrap
    v = trunc(v * (4096 - dv) / 4096) + u + bias
    v = clip(v, -(2**23 - 1), 2**23 - 1)                                        # saturates
    s = v > vth_eff;  v[s] = 0

Note the asymmetric decays: ``u`` decays with ``du + 1`` (``ds_offset = 1``), ``v`` with ``dv``
(``dm_offset = 0``); ``u`` wraps once (and can sit at exactly ``+2**23``), ``v`` saturates.
"""

from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

# Loihi constants of the bit-accurate model, as set in AbstractPyLifModelFixed.__init__
# (lava/proc/lif/models.py:87-108, lava-nc 0.10.0).
#: models.py:94 ``ds_offset``: 1-bit register added to du (effective current decay du + 1)
DS_OFFSET = 1
#: models.py:95 ``dm_offset``: added to dv (effective voltage decay dv + 0)
DM_OFFSET = 0
#: models.py:101 ``uv_bitwidth``: u and v are 24-bit
UV_BITWIDTH = 24
#: models.py:102 ``max_uv_val`` = 2**23
MAX_UV_VAL = 2 ** (UV_BITWIDTH - 1)
#: models.py:104 ``decay_shift``: decays are 12-bit fractions of DECAY_UNITY
DECAY_SHIFT = 12
#: models.py:105 ``decay_unity`` = 4096
DECAY_UNITY = 2**DECAY_SHIFT
#: models.py:107 ``vth_shift``: threshold MSB-aligned by 6 bits
VTH_SHIFT = 6
#: models.py:108 ``act_shift``: synaptic input MSB-aligned by 6 bits
ACT_SHIFT = 6

Value = ty.Union[float, int, list, np.ndarray]


class PopLIF(AbstractProcess):
    """A population of LIF neurons reset every ``reset_interval`` steps, with per-neuron parameters.

    ``du``, ``dv``, ``vth``, ``bias_mant``, ``bias_exp`` are scalars or arrays broadcastable to
    ``shape`` and become per-neuron Vars; ``u`` and ``v`` start at 0. ``reset_interval`` and
    ``reset_offset`` behave as in Lava's ``LIFReset`` (u and v zeroed at the start of every step
    ``t`` with ``t % reset_interval == reset_offset % reset_interval``); ``mute_offset`` (ours,
    default None: never) silences the output on steps ``t % reset_interval == mute_offset %
    reset_interval``. Fixed-point ranges as in Lava: du, dv unsigned 12-bit, vth unsigned 17-bit,
    bias_mant signed 13-bit, bias_exp 3-bit.
    """

    def __init__(
        self,
        *,
        shape: ty.Tuple[int, ...],
        du: Value,
        dv: Value,
        vth: Value,
        bias_mant: Value,
        bias_exp: Value = 0,
        reset_interval: int,
        reset_offset: int,
        mute_offset: ty.Optional[int] = None,
        name: ty.Optional[str] = None,
    ) -> None:
        shape = tuple(shape)
        super().__init__(
            shape=shape, reset_interval=reset_interval, reset_offset=reset_offset, mute_offset=mute_offset, name=name
        )
        # the same checks as LIFReset, after registering as there (lava/proc/lif/process.py:340-343)
        if reset_interval < 1:
            raise ValueError("Reset interval must be > 0.")
        if reset_offset < 0:
            raise ValueError("Reset offset must be positive.")

        def per_neuron(value: Value) -> np.ndarray:
            return np.broadcast_to(np.asarray(value), shape).copy()

        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        self.du = Var(shape=shape, init=per_neuron(du))
        self.dv = Var(shape=shape, init=per_neuron(dv))
        self.vth = Var(shape=shape, init=per_neuron(vth))
        self.bias_mant = Var(shape=shape, init=per_neuron(bias_mant))
        self.bias_exp = Var(shape=shape, init=per_neuron(bias_exp))


class _PopLifResetModel(PyLoihiProcessModel):
    """The reset schedule shared by both models (PyLifResetModel*.__init__, models.py:356-359, :408-412)."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.reset_interval: int = proc_params["reset_interval"]
        self.reset_offset: int = proc_params["reset_offset"] % self.reset_interval
        mute = proc_params.get("mute_offset")
        self.mute_offset: int = -1 if mute is None else mute % self.reset_interval

    def _muted(self) -> bool:
        """Our one addition to LIFReset: on steps ``t % reset_interval == mute_offset`` the process
        sends no spikes (the state is updated as always). A back-edge source is muted on the step
        before its window's reset, so nothing of one sample reaches the next through the back edge."""
        return (self.time_step % self.reset_interval) == self.mute_offset

    def _reset_due(self) -> bool:
        """models.py:373 / :434: checked at the start of run_spk, before this step's input is integrated."""
        return (self.time_step % self.reset_interval) == self.reset_offset


@implements(proc=PopLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyPopLifModelFloat(_PopLifResetModel):
    """Float64 ``PopLIF``: the arithmetic of Lava's PyLifResetModelFloat, elementwise."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    du: np.ndarray = LavaPyType(np.ndarray, float)
    dv: np.ndarray = LavaPyType(np.ndarray, float)
    vth: np.ndarray = LavaPyType(np.ndarray, float)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, float)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, float)  # unused, as in Lava's float model

    def run_spk(self) -> None:
        a_in_data = self.a_in.recv()
        if self._reset_due():
            self.u *= 0  # `*= 0` as Lava, not `= 0` (an inf or NaN state stays NaN there)
            self.v *= 0
        # AbstractPyLifModelFloat.subthr_dynamics (models.py:49-51), same operation order
        self.u[:] = self.u * (1 - self.du)
        self.u[:] += a_in_data
        self.v[:] = self.v * (1 - self.dv) + self.u + self.bias_mant
        s_out = self.v > self.vth
        self.v[s_out] = 0
        self.s_out.send(s_out & (not self._muted()))


def _decay(x: np.ndarray, decay_const: np.ndarray) -> np.ndarray:
    """``x * (4096 - decay_const) / 4096`` rounded toward zero, in int64, returned as int32
    (models.py:149-153 for u, :180-184 for v)."""
    product = np.int64(x) * (DECAY_UNITY - decay_const)
    return np.int32(np.sign(product) * np.right_shift(np.abs(product), DECAY_SHIFT))


@implements(proc=PopLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyPopLifModelBitAcc(_PopLifResetModel):
    """Bit-accurate ``PopLIF``: the arithmetic of Lava's PyLifResetModelBitAcc, elementwise."""

    # Lava's LIF declares a_in as int16/16 bits (models.py:78); we take up to 24 bits. The values
    # are the same: recv() sums into the declared dtype promoted with the channel's (int32 for
    # Dense/Sparse), so both see int32.
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)  # models.py:405
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)  # models.py:80
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)  # models.py:81
    du: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)  # models.py:82 (a scalar there)
    dv: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)  # models.py:83 (a scalar there)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)  # models.py:406 (a scalar there)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=13)  # models.py:84
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=3)  # models.py:85

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.effective_vth: ty.Optional[np.ndarray] = None

    def _effective_bias(self) -> np.ndarray:
        """AbstractPyLifModelFixed.scale_bias (models.py:116-121), recomputed every step as there."""
        bias_mant = self.bias_mant.copy().astype(np.int32)
        return np.where(
            self.bias_exp >= 0,
            np.left_shift(bias_mant, self.bias_exp),
            np.right_shift(bias_mant, -self.bias_exp),
        )

    def run_spk(self) -> None:
        a_in_data = self.a_in.recv()
        if self._reset_due():
            self.u *= 0
            self.v *= 0
        effective_bias = self._effective_bias()
        if self.effective_vth is None:
            # scale_threshold (models.py:419) runs once, on the first step, as in Lava; int64 as
            # Lava's shift of a Python int gives
            self.effective_vth = np.left_shift(self.vth.astype(np.int64), VTH_SHIFT)

        # current, models.py:145-171; decays in int64 (du is a Python int in Lava)
        decayed_curr = _decay(self.u, self.du.astype(np.int64) + DS_OFFSET)
        decayed_curr += np.left_shift(a_in_data, ACT_SHIFT)
        wrapped_curr = np.where(decayed_curr > MAX_UV_VAL, decayed_curr - 2 * MAX_UV_VAL, decayed_curr)
        wrapped_curr = np.where(wrapped_curr <= -MAX_UV_VAL, decayed_curr + 2 * MAX_UV_VAL, wrapped_curr)
        self.u[:] = wrapped_curr

        # voltage, models.py:174-186
        decayed_volt = _decay(self.v, self.dv.astype(np.int64) + DM_OFFSET)
        updated_volt = decayed_volt + self.u + effective_bias
        self.v[:] = np.clip(updated_volt, -MAX_UV_VAL + 1, MAX_UV_VAL - 1)

        # spiking_activation and reset_voltage (models.py:424, :192)
        s_out = self.v > self.effective_vth
        self.v[s_out] = 0
        self.s_out.send(s_out & (not self._muted()))
