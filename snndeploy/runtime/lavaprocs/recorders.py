"""Recorder processes: port values and Var states, one row per Lava time step.

``MemmapRecorder`` receives on ``a_in`` in the spiking phase and stores
``data`` at row ``time_step - 1`` of the ``.npy`` file at ``path``.
``MemmapStateProbe`` reads a Var through a RefPort in the post-management phase
of every step, i.e. after the owning process's update and reset of that step.
The file must exist with shape (num_steps, *shape) before the run starts.
"""

from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyRefPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, RefPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class MemmapRecorder(AbstractProcess):
    """Stores what arrives on ``a_in`` each step into an ``.npy`` memmap at ``path``."""

    def __init__(self, *, shape: ty.Tuple[int, ...], path: str) -> None:
        super().__init__(shape=shape, path=path)
        self.a_in = InPort(shape=shape)


class MemmapStateProbe(AbstractProcess):
    """Stores the value of ``var`` after each step into an ``.npy`` memmap at ``path``."""

    def __init__(self, *, var, path: str) -> None:
        super().__init__(shape=var.shape, path=path)
        self.state = RefPort(var.shape)
        self.state.connect_var(var)


class _MemmapWriter:
    """Opens the memmap lazily inside the process model's own OS process."""

    def _row(self, data) -> None:
        buf = getattr(self, "_buf", None)
        if buf is None:
            buf = self._buf = np.load(self.proc_params["path"], mmap_mode="r+")
        buf[self.time_step - 1] = data


class _RecorderModel(_MemmapWriter, PyLoihiProcessModel):
    def run_spk(self) -> None:
        self._row(self.a_in.recv())


@implements(proc=MemmapRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyMemmapRecorderFloat(_RecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)


@implements(proc=MemmapRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMemmapRecorderFixed(_RecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)


class _ProbeModel(_MemmapWriter, PyLoihiProcessModel):
    def post_guard(self) -> bool:
        return True

    def run_post_mgmt(self) -> None:
        self._row(self.state.read())


@implements(proc=MemmapStateProbe, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyMemmapStateProbeFloat(_ProbeModel):
    state: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, float)


@implements(proc=MemmapStateProbe, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyMemmapStateProbeFixed(_ProbeModel):
    state: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32, precision=24)
