"""Building, running and reading back one Lava network for a whole batch.

One compiled network per evaluation (Lava leaks memory when networks are
rebuilt per sample). Samples run back to back in windows of ``W = T + D``
steps, D being the deepest Dense chain: neuron processes are ``LIFReset``
whose state is zeroed every W steps at a phase chosen per population, just
before that population integrates the first input step of the next sample::

    Lava step s (1-based) of sample j, NIR step t, population at depth d:
        source sends x_j[t]          at s = j*W + 1 + t
        population integrates it     at s = j*W + 1 + t + d
        reset of that population     at s = j*W + 1 + d   (reset_offset = (1 + d) mod W)

so each sample starts from the initial state, and nothing of one sample leaks
into the next. A population whose plan has ``drives`` (float plans only: a start
value of v other than 0, a constant input into u, a bias through a back edge, or
muting) gets a second source whose channels (``DRIVE_CHANNELS``) send 1 on NIR
step 0, on step 1, on every step of the sample, on every step from step 1, and on
the window's last step (t = W - 1 of the previous sample, just before the reset),
through one Dense with the population's drive weights (same timing as its inputs).

Recurrence: a back-edge Dense from P into Q (equal depth d) delivers at Q's reset
step (sample j's t = 0) what P sent on the step before, the previous window's last
step, which is not part of the sample but may hold spikes (tail activity). P is
therefore muted on that step by a large negative input (``MUTE_CURRENT``); LIFReset
zeroes u and v on the next step, so the pulse leaves no trace. Records come back through memmap recorders (see
:mod:`snndeploy.lavaprocs`) and are shifted back by d onto the NIR timeline.
The network is always stopped, also on error.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..errors import BackendError
from .lava_plan import LavaPlan, NeuronLowering

#: how many progress updates a run makes (each is one Lava ``run`` call)
PROGRESS_CHUNKS = 20


@dataclass(frozen=True, eq=False)
class Group:
    """Neurons of one population that share Lava's per-process scalars (du, dv, vth)."""

    node: str
    index: np.ndarray  # positions in the flattened population
    key: Tuple[float, float, float]  # (du, dv, vth)


def neuron_groups(nl: NeuronLowering) -> List[Group]:
    """Split a population by (du, dv, vth): Lava's LIF holds them as one scalar per process."""
    keys = np.stack([nl.du, nl.dv, nl.vth], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    return [Group(nl.node, np.flatnonzero(inverse.reshape(-1) == k), tuple(map(float, uniq[k]))) for k in range(len(uniq))]


@dataclass(frozen=True)
class LavaFactories:
    """How a backend turns plan pieces into Lava processes (float or fixed point)."""

    tag: str  # Loihi2SimCfg select_tag
    neuron: Callable  # (NeuronLowering, Group, reset_interval, reset_offset) -> process
    dense: Callable  # (weight (out, in), graded: bool) -> process
    source_data: Callable  # (array (N, steps) float) -> array for the RingBuffer
    state_vars: Tuple[str, ...] = ("v",)
    conn_dense: Optional[Callable] = None  # (Conn, weight, graded) -> process; replaces dense when given


def import_lava() -> None:
    """Import Lava's runtime, which calls ``multiprocessing.set_start_method('fork')`` at import.

    That call fails once anything in this process has fixed the start method
    (tqdm's lock does, so does torch's DataLoader). When the method already fixed
    is 'fork' — what Lava asks for — we clear the flag and let Lava set it again.
    """
    import multiprocessing as mp
    import sys

    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return
    current = mp.get_start_method(allow_none=True)
    if current is not None:
        if current != "fork":
            raise BackendError(f"Lava needs the 'fork' multiprocessing start method; this process already uses "
                               f"'{current}'")
        mp.context._default_context._actual_context = None
    import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401


#: Linux prctl option: the signal a child gets when the thread that forked it dies
PR_SET_PDEATHSIG = 1
_fork_guard = {"parent": None, "registered": False}


def _die_with_parent() -> None:
    """In a process Lava forks during our run: be killed when we die, even by SIGKILL (the OOM
    killer), instead of surviving as an orphan that keeps our memory. Linux only; a no-op elsewhere."""
    parent = _fork_guard["parent"]
    if parent is None or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died between fork and prctl
        os._exit(1)


@contextlib.contextmanager
def children_die_with_us():
    """While active, every process forked from this thread is SIGKILLed when this process dies."""
    if not _fork_guard["registered"]:
        os.register_at_fork(after_in_child=_die_with_parent)
        _fork_guard["registered"] = True
    _fork_guard["parent"] = os.getpid()
    try:
        yield
    finally:
        _fork_guard["parent"] = None


def run_plan(plan: LavaPlan, x: np.ndarray, fac: LavaFactories, record_states: bool = False,
             progress=None, name: str = "lava") -> Tuple[Dict[str, np.ndarray], Dict[str, Dict[str, np.ndarray]], dict]:
    """Run ``x`` (batch, time, *input_shape) through the plan; records on the NIR timeline (Lava units)."""
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer as Source

    from ..lavaprocs.recorders import MemmapRecorder, MemmapStateProbe

    B, T = x.shape[:2]
    W = T + plan.max_depth
    steps = B * W
    n_in = int(np.prod(plan.input_shape))
    data = np.zeros((n_in, steps))
    flat = x.reshape(B, T, n_in)
    for j in range(B):
        data[:, j * W: j * W + T] = flat[j].T
    graded = bool(np.any((flat != 0) & (flat != 1)))

    with tempfile.TemporaryDirectory(prefix="snndeploy-lava-") as tmp:
        tmpdir = Path(tmp)
        files: List[Tuple[str, str, Group, Path]] = []  # (node, what, group, file)

        def memmap(n: int, label: str) -> Path:
            path = tmpdir / f"{len(files)}-{label}.npy"
            np.lib.format.open_memmap(path, mode="w+", dtype=np.float64 if fac.tag == "floating_pt" else np.int32,
                                      shape=(steps, n)).flush()
            return path

        source = Source(data=fac.source_data(data))
        outs = {plan.input_node: [(Group(plan.input_node, np.arange(n_in), (0, 0, 0)), source.s_out)]}
        procs = {}
        for node, nl in plan.neurons.items():
            outs[node] = []
            for g in neuron_groups(nl):
                proc = fac.neuron(nl, g, W, (1 + plan.depth[node]) % W)
                procs.setdefault(node, []).append((g, proc))
                outs[node].append((g, proc.s_out))
        keep = [source]
        for c in plan.conns:
            dst_groups = procs.get(c.dst) or [(Group(c.dst, np.arange(c.weight.shape[0]), (0, 0, 0)), None)]
            for dg, dproc in dst_groups:
                if dproc is None:  # the Output node: a recorder of Dense outputs
                    path = memmap(c.weight.shape[0], "out")
                    dproc = MemmapRecorder(shape=(c.weight.shape[0],), path=str(path))
                    files.append((c.dst, "out", dg, path))
                    keep.append(dproc)
                for sg, sport in outs[c.src]:
                    w_sub, g_sub = c.weight[np.ix_(dg.index, sg.index)], graded and c.src == plan.input_node
                    dense = fac.conn_dense(c, w_sub, g_sub) if fac.conn_dense else fac.dense(w_sub, g_sub)
                    sport.connect(dense.s_in)
                    dense.a_out.connect(dproc.a_in)
                    keep.append(dense)
        for node, groups in procs.items():
            drive = plan.neurons[node].drives
            if drive is None:
                continue
            dsrc = Source(data=fac.source_data(_drive_data(B, T, W, plan.depth[node])))
            keep.append(dsrc)
            for g, proc in groups:
                dense = fac.dense(drive[g.index], False)
                dsrc.s_out.connect(dense.s_in)
                dense.a_out.connect(proc.a_in)
                keep.append(dense)
        for node, groups in procs.items():
            nl = plan.neurons[node]
            for g, proc in groups:
                if nl.spiking:
                    path = memmap(len(g.index), "spk")
                    rec = MemmapRecorder(shape=(len(g.index),), path=str(path))
                    proc.s_out.connect(rec.a_in)
                    files.append((node, "out", g, path))
                    keep.append(rec)
                wanted = set(fac.state_vars if record_states else ()) | ({"v"} if not nl.spiking else set())
                for var in sorted(wanted):
                    path = memmap(len(g.index), var)
                    keep.append(MemmapStateProbe(var=getattr(proc, var), path=str(path)))
                    files.append((node, var, g, path))

        start = time.perf_counter()
        cfg = Loihi2SimCfg(select_tag=fac.tag)
        chunk = max(1, -(-steps // PROGRESS_CHUNKS))
        done = 0
        with children_die_with_us():  # no orphan keeps our memory if we are SIGKILLed
            try:
                while done < steps:
                    n = min(chunk, steps - done)
                    source.run(condition=RunSteps(num_steps=n), run_cfg=cfg)
                    done += n
                    if progress is not None:
                        progress(name, done / steps)
            except Exception as exc:
                raise BackendError(f"{name}: Lava failed after {done} of {steps} steps: {type(exc).__name__}: {exc}") from exc
            finally:
                try:
                    source.stop()
                except Exception:  # stopping a broken runtime must not hide the first error
                    pass
        wall = time.perf_counter() - start

        records: Dict[Tuple[str, str], np.ndarray] = {}
        for node, what, g, path in files:
            raw = np.load(path)  # (steps, n)
            d = plan.depth[node]
            aligned = raw.reshape(B, W, -1)[:, d:d + T]
            size = plan.neurons[node].size if node in plan.neurons else len(g.index)
            full = records.setdefault((node, what), np.zeros((B, T, size), dtype=raw.dtype))
            full[:, :, g.index] += aligned
    outputs = {n: a for (n, w), a in records.items() if w == "out"}
    states: Dict[str, Dict[str, np.ndarray]] = {}
    for (n, w), a in records.items():
        if w != "out":
            states.setdefault(n, {})[w] = a
    info = {"lava_steps": steps, "window": W, "max_depth": plan.max_depth, "wall_s": wall,
            "processes": len(keep) + sum(len(g) for g in procs.values())}
    return outputs, states, info


#: the drive source's channels, in the order of ``NeuronLowering.drives`` columns
DRIVE_CHANNELS = ("step 0", "step 1", "every step", "every step from step 1", "window's last step (mute)")


def _drive_data(B: int, T: int, W: int, depth: int) -> np.ndarray:
    """(5, B*W) channels ``DRIVE_CHANNELS`` for a population at ``depth``.

    Through one Dense they arrive when the population integrates those steps
    (sent at 0-based Lava column ``j*W + t + depth - 1``; the mute pulse at t = -1 of
    sample j, i.e. the last step of window j - 1, so only for j >= 1)."""
    data = np.zeros((len(DRIVE_CHANNELS), B * W))
    for j in range(B):
        base = j * W + depth - 1
        data[0, base] = 1
        data[1, base + 1] = 1
        data[2, base:base + T] = 1
        data[3, base + 1:base + T] = 1
        if j >= 1:
            data[4, base - 1] = 1
    return data
