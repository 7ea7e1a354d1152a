"""Building, running and reading back one Lava network for a whole batch.

One compiled network per evaluation (Lava leaks memory when networks are
rebuilt per sample). Samples run back to back in windows of ``W = T + D``
steps, D being the deepest Dense chain: neuron processes are ``PopLIF`` (``LIFReset``)
whose state is zeroed every W steps at a phase chosen per population, just
before that population integrates the first input step of the next sample::

    Lava step s (1-based) of sample j, NIR step t, population at depth d:
        source sends x_j[t]          at s = j*W + 1 + t
        population integrates it     at s = j*W + 1 + t + d
        reset of that population     at s = j*W + 1 + d   (reset_offset = (1 + d) mod W)

so each sample starts from the initial state, and nothing of one sample leaks
into the next. A population whose plan has ``drives`` (a start value of v other than 0, float
plans only, or a constant input into u) gets a second source whose channels
(``DRIVE_CHANNELS``) send 1 on NIR step 0, on step 1 and on every step of the sample,
through one Dense with the population's drive weights (same timing as its inputs).

Recurrence: a back-edge Dense from P into Q (equal depth d) delivers at Q's reset
step (sample j's t = 0) what P sent on the step before, the previous window's last
step, which is not part of the sample but may hold spikes (tail activity). P's output
is therefore gated on that step (``PopLIF``'s ``mute_offset``; its state is reset on
the next step anyway). Records come back through memmap recorders (see
:mod:`snndeploy.runtime.lavaprocs`) and are shifted back by d onto the NIR timeline.
The network is always stopped, also on error.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np

from ..errors import BackendError, Interrupted
from .watchdog import Watchdog, WatchdogAbort, children_die_with_us, timeout_for

#: how many progress updates a run makes (each is one Lava ``run`` call)
PROGRESS_CHUNKS = 20


@dataclass(frozen=True, eq=False)
class Group:
    """The neurons of one Lava process: a whole population (``PopLIF`` holds per-neuron du, dv, vth,
    so a population is never split), or the Output's recorder, or the input source."""

    node: str
    index: np.ndarray  # positions in the flattened population


def neuron_groups(nl) -> List[Group]:
    """One process per population, whatever its per-neuron parameters."""
    return [Group(nl.node, np.arange(nl.size))]


@dataclass(frozen=True)
class LavaFactories:
    """How a backend turns plan pieces into Lava processes (float or fixed point).

    ``neuron(population, group, reset_interval, reset_offset, mute_offset)``: a ``PopLIF`` process for a
    population record (a float ``NeuronLowering`` or a ``FixedNeuron``); ``synapse(conn, weight,
    graded)``: a Dense-like process for a block of one projection (``conn`` is the plan's record of
    it, a :class:`DriveConn` for a drive source); ``source_data``: the RingBuffer's data from float values.
    """

    tag: str  # Loihi2SimCfg select_tag
    neuron: Callable
    synapse: Callable
    source_data: Callable
    record_dtype: type  # what the memmap recorders store
    state_vars: Tuple[str, ...] = ("v",)


def import_lava() -> None:
    """Import Lava's runtime, which calls ``multiprocessing.set_start_method('fork')`` at import.

    That call fails once anything in this process has fixed the start method
    (tqdm's lock does, so does torch's DataLoader). When the method already fixed
    is 'fork' — what Lava asks for — we clear the flag and let Lava set it again.
    """
    import multiprocessing as mp

    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return
    current = mp.get_start_method(allow_none=True)
    if current is not None:
        if current != "fork":
            raise BackendError(
                f"Lava needs the 'fork' multiprocessing start method; this process already uses '{current}'"
            )
        mp.context._default_context._actual_context = None
    import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401


#: Linux's limit on an AF_UNIX socket path, bytes (sun_path)
UNIX_PATH_MAX = 108


def own_multiprocessing_tempdir() -> None:
    """Give multiprocessing (whose managers Lava starts) a temporary folder named like our record
    folders, unless it has one already: removed at exit as multiprocessing's own ``pymp-*`` would be,
    and swept by :func:`remove_stale_record_folders` when this process was SIGKILLed (its ``pymp-*``
    would stay in TMPDIR for good)."""
    import atexit
    import multiprocessing.process

    config = multiprocessing.process.current_process()._config
    base = tempfile.gettempdir()
    # the managers' AF_UNIX sockets go in there: keep "<folder>/listener-xxxxxxxx" under the 108-byte limit
    if config.get("tempdir") is None and len(base) + len(RECORD_DIR_PREFIX) + 40 < UNIX_PATH_MAX:
        folder = tempfile.mkdtemp(prefix=f"{RECORD_DIR_PREFIX}{os.getpid()}-m", dir=base)
        config["tempdir"] = folder
        atexit.register(shutil.rmtree, folder, True)


#: the drive source's channels, in the order of ``NeuronLowering.drives`` columns
DRIVE_CHANNELS = ("step 0", "step 1", "every step")


def _drive_data(B: int, T: int, W: int, depth: int) -> np.ndarray:
    """(3, B*W) channels ``DRIVE_CHANNELS`` for a population at ``depth``.

    Through one Dense they arrive when the population integrates those steps
    (sent at 0-based Lava column ``j*W + t + depth - 1``)."""
    data = np.zeros((len(DRIVE_CHANNELS), B * W))
    for j in range(B):
        base = j * W + depth - 1
        data[0, base] = 1
        data[1, base + 1] = 1
        data[2, base : base + T] = 1
    return data


@dataclass
class _Network:
    """One compiled-to-be Lava network for a whole batch, and where its records go."""

    tmpdir: Path
    steps: int
    source: object = None
    procs: Dict[str, List[Tuple[Group, object]]] = field(default_factory=dict)
    outs: Dict[str, List[Tuple[Group, object]]] = field(default_factory=dict)
    keep: List[object] = field(default_factory=list)  # every process, so none is garbage-collected
    files: List[Tuple[str, str, Group, Path]] = field(default_factory=list)  # (node, what, group, file)

    def memmap(self, n: int, label: str, dtype) -> Path:
        """A fresh (steps, n) ``.npy`` file for a recorder, created before the run with all its blocks
        allocated: a full disk fails here, loudly, instead of killing a recorder mid-run (SIGBUS)."""
        path = self.tmpdir / f"{len(self.files)}-{label}.npy"
        try:
            np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(self.steps, n)).flush()
            with open(path, "r+b") as f:
                os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except OSError as exc:
            size = self.steps * n * np.dtype(dtype).itemsize
            raise BackendError(
                f"cannot create Lava's record file {path} ({size} bytes) in the temporary folder "
                f"{tempfile.gettempdir()} (TMPDIR): {exc.strerror or exc}"
            ) from None
        return path


#: Lava's record folders in TMPDIR: this prefix, the owning process id, a random part
RECORD_DIR_PREFIX = "snndeploy-lava-"


def remove_stale_record_folders() -> None:
    """Remove record folders whose process is gone (it was SIGKILLed: no clean-up could run)."""
    base = Path(tempfile.gettempdir())
    for d in base.glob(f"{RECORD_DIR_PREFIX}*-*"):
        pid = d.name[len(RECORD_DIR_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)


def input_data(x: np.ndarray, window: int) -> Tuple[np.ndarray, bool]:
    """The source's (N_in, B*W) data: sample j's T steps at columns j*W .. j*W+T-1, zeros after;
    and whether any input value is graded (not 0/1)."""
    B, T = x.shape[:2]
    flat = x.reshape(B, T, -1)
    data = np.zeros((flat.shape[2], B * window))
    for j in range(B):
        data[:, j * window : j * window + T] = flat[j].T
    return data, bool(np.any((flat != 0) & (flat != 1)))


def _add_populations(net: _Network, plan, fac: LavaFactories, window: int) -> None:
    top = plan.topology
    for node, nl in plan.neurons.items():
        net.outs[node] = []
        for g in neuron_groups(nl):
            reset = (1 + top.depth[node]) % window
            # a back-edge source sends nothing on the step before its reset (see the module doc)
            mute = (reset - 1) % window if nl.mute else None
            proc = fac.neuron(nl, g, window, reset, mute)
            net.procs.setdefault(node, []).append((g, proc))
            net.outs[node].append((g, proc.s_out))


def _add_projections(net: _Network, plan, fac: LavaFactories, graded: bool) -> None:
    """One synapse process per (projection, source group, destination group); the Output's recorder."""
    from .lavaprocs.recorders import MemmapRecorder

    for c in plan.conns:
        dst_groups = net.procs.get(c.dst) or [(Group(c.dst, np.arange(c.weight.shape[0])), None)]
        for dg, dproc in dst_groups:
            if dproc is None:  # the Output node: a recorder of Dense outputs
                path = net.memmap(c.weight.shape[0], "out", fac.record_dtype)
                dproc = MemmapRecorder(shape=(c.weight.shape[0],), path=str(path))
                net.files.append((c.dst, "out", dg, path))
                net.keep.append(dproc)
            for sg, sport in net.outs[c.src]:
                w_sub = c.weight[np.ix_(dg.index, sg.index)]
                syn = fac.synapse(c, w_sub, graded and c.src == plan.topology.input_node)
                sport.connect(syn.s_in)
                syn.a_out.connect(dproc.a_in)
                net.keep.append(syn)


@dataclass(frozen=True)
class DriveConn:
    """What a synapse factory needs to know of a drive projection (its weight exponent; 0 in float)."""

    weight_exp: int = 0
    via: str = "drive"


def _add_drives(net: _Network, plan, fac: LavaFactories, batch: int, steps_per_sample: int, window: int) -> None:
    from lava.proc.io.source import RingBuffer as Source

    for node, groups in net.procs.items():
        drive = plan.neurons[node].drives
        if drive is None:
            continue
        dsrc = Source(data=fac.source_data(_drive_data(batch, steps_per_sample, window, plan.topology.depth[node])))
        net.keep.append(dsrc)
        for g, proc in groups:
            syn = fac.synapse(DriveConn(getattr(plan.neurons[node], "drive_exp", 0)), drive[g.index], False)
            dsrc.s_out.connect(syn.s_in)
            syn.a_out.connect(proc.a_in)
            net.keep.append(syn)


def _add_recorders(net: _Network, plan, fac: LavaFactories, record_states: bool) -> None:
    from .lavaprocs.recorders import MemmapRecorder, MemmapStateProbe

    for node, groups in net.procs.items():
        nl = plan.neurons[node]
        for g, proc in groups:
            if nl.spiking:
                path = net.memmap(len(g.index), "spk", fac.record_dtype)
                rec = MemmapRecorder(shape=(len(g.index),), path=str(path))
                proc.s_out.connect(rec.a_in)
                net.files.append((node, "out", g, path))
                net.keep.append(rec)
            wanted = set(fac.state_vars if record_states else ()) | ({"v"} if not nl.spiking else set())
            for var in sorted(wanted):
                path = net.memmap(len(g.index), var, fac.record_dtype)
                net.keep.append(MemmapStateProbe(var=getattr(proc, var), path=str(path)))
                net.files.append((node, var, g, path))


def _run_steps(net: _Network, fac: LavaFactories, progress, name: str) -> float:
    """Run every step (in PROGRESS_CHUNKS calls) under a watchdog, then stop Lava; the wall time.

    A Lava error, a dead Lava process or the wall-clock limit ends it with a BackendError naming
    the backend, what happened and how far it got; SIGINT/SIGTERM with :class:`Interrupted`. In
    every case Lava's processes are gone and the runtime will not wait on them (:mod:`.watchdog`).
    """
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    start = time.perf_counter()
    cfg = Loihi2SimCfg(select_tag=fac.tag)
    chunk = max(1, -(-net.steps // PROGRESS_CHUNKS))
    done = 0
    limit = timeout_for(net.steps, len(net.keep) + sum(len(g) for g in net.procs.values()))
    with children_die_with_us(), Watchdog(name, limit) as wd:
        try:
            while done < net.steps:
                n = min(chunk, net.steps - done)
                net.source.run(condition=RunSteps(num_steps=n), run_cfg=cfg)
                done += n
                if progress is not None:
                    progress(name, done / net.steps)
            wd.expect_exits()
            net.source.stop()
        except BaseException as exc:
            wd.abandon(net.source)
            where = f"after {done} of {net.steps} steps"
            if isinstance(exc, WatchdogAbort):
                raise BackendError(f"{name}: {wd.reason}; stopped {where}, Lava's processes killed") from None
            if isinstance(exc, (Interrupted, KeyboardInterrupt)):
                raise
            raise BackendError(f"{name}: Lava failed {where}: {type(exc).__name__}: {exc}") from exc
    return time.perf_counter() - start


def _read_records(net: _Network, plan, batch: int, steps_per_sample: int, window: int):
    """The recorders' files, shifted back by each node's depth onto the NIR timeline: (outputs, states)."""
    records: Dict[Tuple[str, str], np.ndarray] = {}
    for node, what, g, path in net.files:
        raw = np.load(path)  # (steps, n)
        d = plan.topology.depth[node]
        aligned = raw.reshape(batch, window, -1)[:, d : d + steps_per_sample]
        size = plan.neurons[node].size if node in plan.neurons else len(g.index)
        full = records.setdefault((node, what), np.zeros((batch, steps_per_sample, size), dtype=raw.dtype))
        full[:, :, g.index] += aligned
    outputs = {n: a for (n, w), a in records.items() if w == "out"}
    states: Dict[str, Dict[str, np.ndarray]] = {}
    for (n, w), a in records.items():
        if w != "out":
            states.setdefault(n, {})[w] = a
    return outputs, states


def run_plan(
    plan, x: np.ndarray, fac: LavaFactories, record_states: bool = False, progress=None, name: str = "lava"
) -> Tuple[Dict[str, np.ndarray], Dict[str, Dict[str, np.ndarray]], dict]:
    """Run ``x`` (batch, time, *input_shape) through a float or fixed plan; records on the NIR
    timeline in Lava units: (outputs, states, info)."""
    import_lava()
    from lava.proc.io.source import RingBuffer as Source

    B, T = x.shape[:2]
    W = T + plan.topology.max_depth
    data, graded = input_data(x, W)
    remove_stale_record_folders()
    own_multiprocessing_tempdir()
    with tempfile.TemporaryDirectory(prefix=f"{RECORD_DIR_PREFIX}{os.getpid()}-") as tmp:
        net = _Network(Path(tmp), B * W)
        net.source = Source(data=fac.source_data(data))
        net.outs[plan.topology.input_node] = [
            (Group(plan.topology.input_node, np.arange(data.shape[0])), net.source.s_out)
        ]
        net.keep.append(net.source)
        _add_populations(net, plan, fac, W)
        _add_projections(net, plan, fac, graded)
        _add_drives(net, plan, fac, B, T, W)
        _add_recorders(net, plan, fac, record_states)
        wall = _run_steps(net, fac, progress, name)
        outputs, states = _read_records(net, plan, B, T, W)
    info = {
        "lava_steps": net.steps,
        "window": W,
        "max_depth": plan.topology.max_depth,
        "wall_s": wall,
        "processes": len(net.keep) + sum(len(g) for g in net.procs.values()),
    }
    return outputs, states, info
