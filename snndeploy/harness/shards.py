"""Shards: a job's chunks of samples, run in worker processes (Dask) or in-process, and resumable.

A shard is one chunk of consecutive samples (``--chunk``); a task runs every backend on it and
returns what the merge needs. Three ways to run them:

- in-process (no ``--workers``/``--scheduler``): one after another, as ``compare`` always did;
- ``--workers N``: a local Dask cluster of N worker processes, one thread each;
- ``--scheduler ADDRESS``: an existing Dask cluster.

Lava forks one process per process model, and a daemonic process may not have children
("daemonic processes are not allowed to have children", dask/distributed#2142): the local cluster's
nannies read ``distributed.worker.daemon: False`` (held for the cluster's whole life, since a nanny
reads it again whenever it restarts its worker), and a remote cluster whose workers are daemonic is
refused before anything runs when a Lava backend is asked for. Workers switch to the 'fork' start
method Lava needs (they are spawned), ignore SIGINT (the client alone decides, as Lava's own
processes do) and import the backends once at start (:func:`dask_setup`, a worker preload).

At most one shard runs per worker thread (the client keeps no more in flight). A shard's clock
starts when its task reports that it started (an event with the worker's pid); a shard that runs
past ``--shard-timeout`` is killed with its worker: the worker and every process under it (Lava's
processes, its shared-memory manager) are stopped (SIGSTOP, so that none forks meanwhile), the
shared-memory segments they map are noted, everything is SIGKILLed and the segments unlinked; the
nanny then starts a fresh worker. A shard whose task fails (a Lava error, its worker died, the
timeout) is run once more; when that fails too it is reported as failed with its sample range.
On the way out (done, an error, SIGINT or SIGTERM) the same kill runs on every worker of a local
cluster that may still hold anything, then the cluster is closed.

Finished shards are written atomically to ``FOLDER/shard-NNNNN.npz`` (JSON metadata plus arrays, no
pickle) beside ``FOLDER/manifest.json``; both carry a fingerprint of what determines a shard's
content (graph, dt, input, backends, tolerances, shard size, snndeploy version). ``--resume`` loads
the finished shards instead of running them; a folder written by a different job is refused,
naming what differs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import queue
import signal
import sys
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import BackendError, InputError
from ..util.version import __version__

#: seconds between two looks at the running shards
POLL_S = 0.2
#: seconds a submitted shard may wait for a worker (e.g. one being restarted) before its clock starts
START_GRACE_S = 180.0
#: seconds a killed process gets to be gone
REAP_S = 10.0
#: seconds closing the cluster may take before its processes are killed
CLOSE_S = 20.0
#: attempts per shard: the first and one retry
ATTEMPTS = 2
#: shards per worker thread when neither --chunk nor an interrupted run's manifest sets the size
SHARDS_PER_SLOT = 2
#: what a shard task logs when it starts (worker pid and address)
EVENT_TOPIC = "snndeploy-shard-start"
MANIFEST = "manifest.json"
SHARD_GLOB = "shard-*.npz"
#: the shard files' format: bump when their content changes
FORMAT = 1
FOLDER_HOW = (
    "one file per finished shard (JSON metadata and arrays, written atomically) and manifest.json, with a "
    "fingerprint of graph, dt, input, backends, tolerances, shard size and snndeploy version; --resume "
    "loads the finished shards and runs the others"
)


@dataclass(frozen=True)
class ShardOptions:
    """How to run a job's shards. ``folder``: where finished shards are written (None: nowhere);
    ``resume``: load the shards already there instead of running them again."""

    workers: Optional[int] = None
    scheduler: Optional[str] = None
    timeout_s: Optional[float] = None
    folder: Optional[Path] = None
    resume: bool = False
    progress: bool = True

    def __post_init__(self):
        if self.workers is not None and self.scheduler is not None:
            raise InputError("--workers and --scheduler exclude each other: a local cluster or an existing one")
        if self.workers is not None and int(self.workers) < 1:
            raise InputError(f"--workers must be a positive number of worker processes, got {self.workers}")
        if self.scheduler is not None and not str(self.scheduler).strip():
            raise InputError("--scheduler is empty; give the address of a Dask scheduler, e.g. tcp://host:8786")
        if self.timeout_s is not None and not (0 < float(self.timeout_s) < float("inf")):
            raise InputError(f"--shard-timeout must be a positive number of seconds, got {self.timeout_s}")
        if self.timeout_s is not None and not self.distributed:
            raise InputError("--shard-timeout goes with --workers or --scheduler (in-process, nothing is killed)")
        if self.resume and self.folder is None:
            raise InputError("--resume needs a folder of finished shards")

    @property
    def distributed(self) -> bool:
        return self.workers is not None or self.scheduler is not None

    @property
    def sharded(self) -> bool:
        """Whether the job runs as shards at all (else: the plain in-process loop)."""
        return self.distributed or self.folder is not None


@dataclass(frozen=True)
class Shard:
    index: int
    start: int
    stop: int  # exclusive

    @property
    def samples(self) -> List[int]:
        """First and last sample, inclusive (as the report lists them)."""
        return [self.start, self.stop - 1]


def plan(n: int, size: int) -> List[Shard]:
    return [Shard(i, s, min(n, s + size)) for i, s in enumerate(range(0, n, size))]


def default_size(n: int, slots: int, memory_fit: int) -> int:
    """Samples per shard without --chunk: ``SHARDS_PER_SLOT`` shards per worker thread, fewer samples
    when the records of one shard per thread would not fit (``memory_fit``: what fits for one)."""
    per_thread = memory_fit if memory_fit >= n else max(1, memory_fit // max(1, slots))
    return max(1, min(per_thread, math.ceil(n / (SHARDS_PER_SLOT * max(1, slots)))))


def default_timeout(nodes: int, names: Sequence[str], size: int, steps: int) -> float:
    """A shard's wall-clock limit without --shard-timeout: derived like a Lava run's own
    (:func:`snndeploy.runtime.watchdog.timeout_for`), as if every backend were a Lava network of
    ``4 x nodes`` processes running the shard's steps (each node may delay by one step), plus 60 s."""
    from ..runtime.watchdog import timeout_for

    return 60.0 + len(names) * timeout_for(size * (steps + nodes), 4 * nodes + 2)


# --------------------------------------------------------------------------- fingerprint


def store_for(
    folder,
    graph,
    x: np.ndarray,
    dt: float,
    backends: Sequence[str],
    size: int,
    graph_label: str = "",
    extra: Optional[Dict[str, object]] = None,
    job: str = "comparison",
) -> ShardStore:
    """The shard folder of one job: what must be equal for its shards to be reused (the graph and input
    by digest, dt, the backends, the shard size, and ``extra``), and how a refusal describes them."""
    graph_digest, input_digest = digest(graph), digest(x)
    parts = {
        "snndeploy": __version__,
        "graph": graph_digest,
        "dt": repr(float(dt)),
        "input": input_digest,
        "backends": ",".join(backends),
        **(extra or {}),
        "shard_size": int(size),
    }
    n, steps = int(x.shape[0]), int(x.shape[1])
    label = f"{graph_label} ({graph_digest[:12]})" if graph_label else graph_digest[:12]
    described = dict(parts, graph=label, input=f"{n} x {steps} ({input_digest[:12]})")
    return ShardStore(folder, parts, described, job=job)


def jsonable_part(info: dict) -> dict:
    """The entries of a run's info that JSON can hold (what reports and shard files keep)."""
    out = {}
    for k, v in info.items():
        try:
            json.dumps(v)
        except TypeError:
            continue
        out[k] = v
    return out


def result_to_plain(r) -> dict:
    """A backend's RunResult as plain data for a shard file."""
    return {"backend": r.backend, "outputs": r.outputs, "states": r.states, "info": jsonable_part(r.info)}


def result_from_plain(p: dict):
    from ..backends import RunResult

    return RunResult(backend=p["backend"], outputs=p["outputs"], states=p["states"], info=p["info"])


def digest(obj) -> str:
    """A stable SHA-256 of nested dataclasses (NIR nodes, graphs), dicts, sequences, arrays and scalars."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h, obj) -> None:
    if isinstance(obj, (np.ndarray, np.generic)):
        a = np.ascontiguousarray(obj)
        h.update(f"nd{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    elif is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"dc{type(obj).__module__}.{type(obj).__qualname__}(".encode())
        for f in sorted(fields(obj), key=lambda f: f.name):
            h.update(f.name.encode() + b"=")
            _feed(h, getattr(obj, f.name))
        h.update(b")")
    elif isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=repr):
            _feed(h, k)
            h.update(b":")
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for v in obj:
            _feed(h, v)
            h.update(b",")
        h.update(b"]")
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def fingerprint(parts: Dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- shard files


def encode(obj) -> bytes:
    """Nested dicts/lists/scalars/arrays as one ``.npz``: the structure as JSON (arrays replaced by
    their index), the arrays beside it; read back by :func:`decode` without pickle."""
    arrays: List[np.ndarray] = []

    def walk(v):
        if isinstance(v, np.ndarray):
            arrays.append(v)
            return {"__array__": len(arrays) - 1}
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, dict):
            if any(not isinstance(k, str) for k in v):
                raise TypeError(f"shard data: a dict with a non-string key: {list(v)[:3]}")
            if "__array__" in v:
                raise TypeError("shard data: '__array__' is reserved")
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    meta = json.dumps(walk(obj), sort_keys=False)
    buf = io.BytesIO()
    np.savez_compressed(
        buf, meta=np.frombuffer(meta.encode(), dtype=np.uint8), **{f"a{i}": a for i, a in enumerate(arrays)}
    )
    return buf.getvalue()


def decode(source) -> object:
    with np.load(source, allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        arrays = {k: z[k] for k in z.files if k != "meta"}

    def walk(v):
        if isinstance(v, dict):
            if set(v) == {"__array__"}:
                return arrays[f"a{v['__array__']}"]
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(meta)


class ShardStore:
    """The folder of finished shards of one job (see the module docstring)."""

    def __init__(self, folder, parts: Dict[str, object], described: Dict[str, object], job: str = "comparison"):
        self.job = job  # what the refusals call it
        self.folder = Path(folder)
        self.parts = dict(parts)
        self.fingerprint = fingerprint(self.parts)
        self.described = dict(described)

    def path(self, index: int) -> Path:
        return self.folder / f"shard-{index:05d}.npz"

    @staticmethod
    def manifest(folder) -> Optional[dict]:
        """The manifest of an earlier run in ``folder``, or None."""
        p = Path(folder) / MANIFEST
        if not p.is_file():
            if any(Path(folder).glob(SHARD_GLOB)):
                raise InputError(f"--resume: {folder} holds shard files but no {MANIFEST}; remove the folder")
            return None
        try:
            m = json.loads(p.read_text())
            m["parts"], m["size"]  # noqa: B018 (present)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"--resume: {p} cannot be read ({exc}); remove {folder} to start afresh") from None
        return m

    def check_against(self, manifest: dict) -> None:
        """Refuse to resume a folder written by a different job, naming what differs."""
        theirs = manifest.get("parts", {})
        differ = sorted(k for k in set(theirs) | set(self.parts) if theirs.get(k) != self.parts.get(k))
        if differ:
            said = manifest.get("described", {})
            detail = "; ".join(
                f"{k}: {said.get(k, theirs.get(k))!r} then, {self.described.get(k, self.parts.get(k))!r} now"
                for k in differ
            )
            raise InputError(
                f"--resume: the shards in {self.folder} belong to a different {self.job} ({', '.join(differ)} "
                f"differ: {detail}). Run without --resume to start afresh (it replaces them), or use another --out"
            )

    def start(self, shards: Sequence[Shard], resume: bool) -> Dict[int, dict]:
        """Open the folder: with ``resume``, the finished shards (index -> payload), checked; without, an
        earlier run's shard files and manifest are removed. The manifest is written with the first shard."""
        done: Dict[int, dict] = {}
        if resume and self.folder.is_dir():
            m = self.manifest(self.folder)
            if m is not None:
                self.check_against(m)
            by_index = {s.index: s for s in shards}
            for p in sorted(self.folder.glob(SHARD_GLOB)):
                payload = self.load(p)
                s = by_index.get(payload.get("shard", -1))
                if s is None or [payload.get("start"), payload.get("stop")] != [s.start, s.stop]:
                    raise InputError(f"--resume: {p} is not one of this job's shards; remove {self.folder}")
                done[s.index] = payload
        elif self.folder.is_dir():
            old = sorted(self.folder.glob(SHARD_GLOB))
            for p in old + [self.folder / MANIFEST]:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
            if old:
                print(
                    f"note: removed {len(old)} shard files of an earlier run from {self.folder} "
                    "(--resume continues a run)",
                    file=sys.stderr,
                )
        self._manifest = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "parts": self.parts,
            "described": self.described,
            "size": int(shards[0].stop - shards[0].start) if shards else 0,
            "shards": len(shards),
            "how": FOLDER_HOW,
        }
        self._manifest_written = bool(done)  # written with the first shard (a run that saves none leaves none)
        return done

    def load(self, p: Path) -> dict:
        try:
            payload = decode(p)
        except Exception as exc:  # a damaged or foreign file (ours are written atomically)
            raise InputError(f"--resume: {p} cannot be read ({type(exc).__name__}: {exc}); remove it") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise InputError(f"--resume: {p} is not a shard file of this snndeploy version; remove {self.folder}")
        if payload.get("fingerprint") != self.fingerprint:
            raise InputError(
                f"--resume: {p} belongs to a different {self.job} (its fingerprint differs); "
                f"run without --resume to start afresh, or use another --out"
            )
        return payload

    def save(self, shard: Shard, payload: dict) -> dict:
        """Write one finished shard atomically; returns it as read back (what a resumed run would get)."""
        from ..util.files import write_bytes, write_json

        if not self._manifest_written:
            write_json(self.folder / MANIFEST, self._manifest)
            self._manifest_written = True
        full = dict(payload, format=FORMAT, fingerprint=self.fingerprint, shard=shard.index)
        full.update(start=shard.start, stop=shard.stop)
        data = encode(full)
        write_bytes(self.path(shard.index), data)
        return decode(io.BytesIO(data))


def round_trip(payload: dict) -> dict:
    """A payload as a shard file would give it back (so that stored and fresh shards merge alike)."""
    return decode(io.BytesIO(encode(payload)))


# --------------------------------------------------------------------------- worker side


def prepare_worker() -> None:
    """At the start of every shard task in a worker: the 'fork' start method Lava needs (workers are
    spawned, so theirs is 'spawn'), and a clear error where the worker may not have children."""
    import multiprocessing as mp

    if mp.current_process().daemon:
        raise BackendError(
            "this Dask worker is a daemonic process, which may not start Lava's processes; start the "
            "workers with DASK_DISTRIBUTED__WORKER__DAEMON=False"
        )
    if mp.get_start_method(allow_none=True) != "fork":
        mp.set_start_method("fork", force=True)


def announce(tag: str) -> bool:
    """In a Dask worker: tell the client that shard attempt ``tag`` starts now, in this process (its
    clock starts), and return True; elsewhere return False."""
    if "distributed" not in sys.modules:
        return False
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        return False  # not in a Dask worker
    w.log_event(EVENT_TOPIC, {"tag": tag, "pid": os.getpid(), "address": w.address})
    return True


def dask_setup(worker=None) -> None:
    """Dask preload (``preload=["snndeploy.harness.shards"]``), run in each worker's main thread at start:
    ignore SIGINT (a terminal's Ctrl-C reaches the whole process group; the client decides), use 'fork'
    for Lava, and import the backends' libraries now rather than in the first shard's time."""
    import warnings

    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _own_resource_tracker()
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
    prepare_worker()
    with contextlib.suppress(Exception):
        import dask

        cores = (dask.config.get("snndeploy.worker-cores", None) or {}).get(str(getattr(worker, "name", "")))
        if cores:
            pin(cores)
    with contextlib.suppress(Exception):
        import norse.torch  # noqa: F401
    with contextlib.suppress(Exception):
        from ..runtime.lava import import_lava

        import_lava()


def core_sets(workers: int) -> Dict[str, List[int]]:
    """The cores each worker of a local cluster is pinned to (by worker name): with two workers or more,
    and at least one core each, the available cores split evenly; else none (not pinned). One Lava
    network keeps more than one core busy with processes that step in lockstep; two networks sharing
    cores slow each other down far more than their share (measured on 2 cores: 2 unpinned workers gave
    0.8x one worker, pinned 1.5-1.8x), while each on its own cores runs undisturbed. Lava's processes
    inherit the pinning."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if workers < 2 or len(cores) < workers:
        return {}
    per = len(cores) // workers
    return {str(i): cores[i * per : (i + 1) * per] for i in range(workers)}


def pin(cores: Sequence[int]) -> None:
    """Pin every thread of this process (and so whatever it forks later) to ``cores``."""
    for tid in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else [0]:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), list(cores))


def _own_resource_tracker() -> None:
    """A spawned worker shares its parent's multiprocessing resource tracker; start a fresh one under the
    worker instead, so that killing the worker's tree also ends what tracks its resources (the shared
    tracker would warn, after the client has exited, about every semaphore of a killed Lava run)."""
    with contextlib.suppress(Exception):
        from multiprocessing import resource_tracker

        tracker = resource_tracker._resource_tracker
        with tracker._lock:
            if tracker._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(tracker._fd)
            tracker._fd = tracker._pid = None


# --------------------------------------------------------------------------- processes


def _stat(pid: int) -> Optional[Tuple[str, int]]:
    """(state, parent pid) of a process, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2 :].split()
    return rest[0], int(rest[1])


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def ours(pid: Optional[int]) -> bool:
    """Whether ``pid`` is a live child of this process (a worker of our local cluster, not a reused pid)."""
    st = _stat(pid) if pid else None
    return st is not None and st[0] != "Z" and st[1] == os.getpid()


def descendants(root: int) -> List[int]:
    """Every live process under ``root`` (children, their children, ...); none without /proc."""
    if not os.path.isdir("/proc"):
        return []
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[0] != "Z":
                parent[int(entry)] = st[1]
    found: List[int] = []
    frontier = {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found and p != root}
        found += sorted(frontier)
    return found


def shm_segments(pids: Sequence[int]) -> List[str]:
    """The /dev/shm files these processes map or hold open (Lava's channels and shared-memory manager)."""
    found = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
                i = line.find("/dev/shm/")
                if i >= 0 and not line.endswith("(deleted)"):
                    found.add(line[i:].strip())
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("/dev/shm/") and not target.endswith("(deleted)"):
                        found.add(target)
    return sorted(found)


def kill_tree(root: int, include_root: bool = True, spare: Sequence[int] = ()) -> List[str]:
    """Stop ``root`` and everything under it (SIGSTOP until no new process appears), note the
    shared-memory segments they map, SIGKILL them all, wait until they are gone, unlink the
    segments (not named semaphores, and none that a process in ``spare`` maps too: a nanny's queues
    are shared with its worker). Returns the segments unlinked."""
    keep = set(shm_segments(list(spare)))
    stopped: List[int] = [root] if include_root else []
    if include_root:
        with contextlib.suppress(OSError):
            os.kill(root, signal.SIGSTOP)
    for _ in range(20):  # a process forked between two scans is caught by the next one
        new = [p for p in descendants(root) if p not in stopped]
        if not new:
            break
        for p in new:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGSTOP)
        stopped += new
    segments = [p for p in shm_segments(stopped) if p not in keep and not Path(p).name.startswith("sem.")]
    for p in stopped:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)
    deadline = time.monotonic() + REAP_S
    for p in stopped:
        while alive(p) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(p, os.WNOHANG)  # ours: reap it (others are reaped by their new parent)
            time.sleep(0.01)
    gone = []
    for s in segments:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.unlink(s)
            gone.append(s)
    return gone


def _abort_worker() -> None:  # pragma: no cover (runs in a remote worker)
    """In a remote worker (``client.run``): kill everything under this worker, then the worker itself
    (its nanny starts a fresh one)."""
    kill_tree(os.getpid(), include_root=False)
    os._exit(70)


def _worker_facts() -> dict:
    import multiprocessing as mp

    from ..util.version import __version__ as v

    return {"pid": os.getpid(), "daemon": bool(mp.current_process().daemon), "snndeploy": v}


# --------------------------------------------------------------------------- running


@dataclass
class Outcome:
    """What running a job's shards came to (for the report's ``execution`` section)."""

    mode: str
    workers: int
    slots: int
    scheduler: Optional[str]
    timeout_s: Optional[float]
    folder: Optional[str]
    count: int = 0
    done: int = 0
    resumed: int = 0
    failed: List[dict] = field(default_factory=list)
    wall_s: float = 0.0
    cores: Optional[Dict[str, List[int]]] = None

    def as_dict(self) -> dict:
        d = {
            "mode": self.mode,
            "workers": self.workers,
            "threads_per_worker": 1 if self.mode == "local cluster" else None,
            "worker_cores": self.cores or None,
            "scheduler": self.scheduler,
            "shard_timeout_s": self.timeout_s,
            "shards_folder": self.folder,
            "shards": {
                "count": self.count,
                "done": self.done,
                "failed": len(self.failed),
                "resumed": self.resumed,
            },
            "wall_s": self.wall_s,
        }
        return {k: v for k, v in d.items() if v is not None or k in ("shards_folder",)}


class _Progress:
    """One bar over shards on stderr: samples done, samples/s, ETA, shards done/failed/resumed."""

    def __init__(self, total: int, initial: int, count: int, resumed: int, show: bool):
        self.bar = None
        self.count, self.done, self.failed, self.resumed = count, resumed, 0, resumed
        if show:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=initial,
                desc="shards",
                unit="sample",
                file=sys.stderr,
                mininterval=0.5 if sys.stderr.isatty() else 15.0,
                dynamic_ncols=True,
            )
            self._post()

    def _post(self):
        if self.bar is not None:
            parts = [f"{self.done}/{self.count} done"]
            if self.failed:
                parts.append(f"{self.failed} failed")
            if self.resumed:
                parts.append(f"{self.resumed} resumed")
            self.bar.set_postfix_str(", ".join(parts), refresh=False)

    def add(self, samples: int, failed: bool = False):
        if failed:
            self.failed += 1
        else:
            self.done += 1
        self._post()
        if self.bar is not None:
            self.bar.update(samples)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run_shards(
    shards: Sequence[Shard],
    task: Callable,
    make_job: Callable[[Shard, str], object],
    on_done: Callable[[Shard, object], None],
    opts: ShardOptions,
    executor: Optional[Executor],
    resumed: Sequence[int] = (),
    timeout_s: float = 3600.0,
) -> Outcome:
    """Run every shard not in ``resumed``: ``task(make_job(shard, tag))`` in-process or in a worker;
    ``on_done(shard, result)`` in this process, in the order they finish. In-process, an error stops
    everything (as before); in workers, a failed shard is run once more, then listed as failed."""
    start = time.monotonic()
    todo = [s for s in shards if s.index not in set(resumed)]
    asked = "local cluster" if opts.workers else "scheduler" if opts.scheduler else "in-process"
    out = Outcome(
        mode=asked if executor is None else executor.mode,
        workers=(opts.workers or 0) if executor is None else executor.workers,
        slots=1 if executor is None else executor.slots,
        scheduler=opts.scheduler,
        timeout_s=timeout_s if opts.distributed else None,
        folder=str(opts.folder) if opts.folder is not None else None,
        count=len(shards),
        resumed=len(resumed),
        cores=None if executor is None else executor.cores,
    )
    in_resumed = sum(s.stop - s.start for s in shards if s.index in set(resumed))
    bar = _Progress(sum(s.stop - s.start for s in shards), in_resumed, len(shards), len(resumed), opts.progress)
    try:
        if executor is None:
            for s in todo:
                on_done(s, task(make_job(s, f"{s.index}.0")))
                bar.add(s.stop - s.start)
        else:
            executor.run(todo, task, make_job, on_done, timeout_s, bar, out)
    except BaseException:
        if opts.folder is not None and opts.progress:
            saved = len(list(Path(opts.folder).glob(SHARD_GLOB)))
            print(
                f"\n{saved} of {len(shards)} shards are saved in {opts.folder}: the same command with --resume "
                "continues from there",
                file=sys.stderr,
            )
        raise
    finally:
        bar.close()
    out.done = bar.done
    out.wall_s = time.monotonic() - start
    return out


@dataclass
class _Attempt:
    shard: Shard
    number: int
    submitted: float
    run: str = ""  # the executor's id: events of other clients of a shared scheduler are not ours
    started: Optional[float] = None
    pid: Optional[int] = None
    address: Optional[str] = None

    @property
    def tag(self) -> str:
        return f"{self.run}-{self.shard.index}.{self.number}"


class Executor:
    """A Dask cluster for the duration of a ``with`` block: a local one (``workers``) or an existing one
    (``scheduler``); see the module docstring."""

    def __init__(self, workers: Optional[int] = None, scheduler: Optional[str] = None, forks: bool = True):
        self.workers_asked, self.address, self.forks = workers, scheduler, forks
        self.mode = "local cluster" if scheduler is None else "scheduler"
        self.cluster = self.client = None
        self.workers = self.slots = 0
        self._config = None
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._local_dir: Optional[str] = None
        self._pids: set = set()  # every worker pid seen (local cluster)
        self._log_levels: Dict[str, int] = {}
        self._running: Dict[str, _Attempt] = {}  # attempts in flight, by tag
        self.cores: Dict[str, List[int]] = {}  # local workers' cores, by worker name (empty: not pinned)
        self._id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # task keys unique on a shared scheduler

    # -- lifecycle

    def __enter__(self) -> Executor:
        try:
            self._open()
        except BaseException:
            self._close(hard=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._close(hard=exc_type is not None)

    def _open(self) -> None:
        import logging

        import dask
        from distributed import Client

        self._quiet_logs()
        if self.address is None:
            from distributed import LocalCluster

            from ..runtime.lava import RECORD_DIR_PREFIX

            self.cores = core_sets(int(self.workers_asked))
            # named like Lava's record folders: swept by a later run if this process is SIGKILLed
            self._local_dir = tempfile.mkdtemp(prefix=f"{RECORD_DIR_PREFIX}{os.getpid()}-dask-")
            # set until the cluster is closed (dask.config.set applies at once, __exit__ restores): a nanny
            # reads these whenever it (re)starts a worker
            self._config = dask.config.set(
                {
                    "distributed.worker.daemon": False,
                    "distributed.scheduler.allowed-failures": 0,  # a worker that dies fails its shard: we retry
                    "distributed.scheduler.worker-saturation": 1.0,
                    "distributed.worker.memory.target": False,
                    "distributed.worker.memory.spill": False,
                    "distributed.worker.memory.pause": False,
                    "distributed.worker.memory.terminate": False,
                    "temporary-directory": self._local_dir,  # the scheduler's and the workers' scratch space
                    "snndeploy.worker-cores": self.cores,  # read by dask_setup
                }
            )
            preload = ["snndeploy.harness.shards"] + list(dask.config.get("distributed.worker.preload", []) or [])
            self.cluster = LocalCluster(
                n_workers=int(self.workers_asked),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # no dashboard; the scheduler's HTTP endpoints (health, metrics) on a free local port
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.CRITICAL,
                memory_limit=0,
                local_directory=self._local_dir,
                preload=preload,
            )
            self.client = Client(self.cluster, set_as_default=False)
            self.workers = self.slots = int(self.workers_asked)
            self._pids |= {p for p in self._nanny_pids() if p}
        else:
            try:
                self.client = Client(self.address, timeout="20s", set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(f"--scheduler {self.address}: cannot reach a Dask scheduler there ({exc})") from None
            self._check_remote()
        self.client.subscribe_topic(EVENT_TOPIC, self._events.put)

    def _quiet_logs(self) -> None:
        """Dask's own INFO/WARNING lines (a worker restarted, a client closed) are not ours to print: the
        report lists what failed. Restored on close."""
        import logging

        names = ["distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
        for name in names:
            lg = logging.getLogger(name)
            self._log_levels[name] = lg.level
            lg.setLevel(logging.CRITICAL)

    def _check_remote(self) -> None:
        try:
            self.client.wait_for_workers(1, timeout=60)
        except Exception:  # distributed's WorkerStartTimeoutError
            raise InputError(f"--scheduler {self.address}: the cluster has no worker (waited 60 s)") from None
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        facts = self.client.run(_worker_facts)
        self.workers = len(info)
        self.slots = sum(int(w.get("nthreads", 1)) for w in info.values())
        versions = {f["snndeploy"] for f in facts.values()}
        if versions != {__version__}:
            raise InputError(
                f"--scheduler {self.address}: the workers run snndeploy {', '.join(sorted(versions))}, "
                f"this process {__version__}; install the same version on both"
            )
        if self.forks:
            daemonic = sorted(a for a, f in facts.items() if f["daemon"])
            if daemonic:
                raise InputError(
                    f"--scheduler {self.address}: workers {', '.join(daemonic)} are daemonic processes, which may "
                    "not start Lava's processes (dask/distributed#2142); start them with "
                    "DASK_DISTRIBUTED__WORKER__DAEMON=False dask worker ADDRESS --nthreads 1"
                )
            multi = sorted(a for a, w in info.items() if int(w.get("nthreads", 1)) > 1)
            if multi:
                raise InputError(
                    f"--scheduler {self.address}: workers {', '.join(multi)} run several threads; Lava runs need "
                    "one thread per worker process (dask worker ADDRESS --nthreads 1)"
                )

    def _nanny_pids(self) -> List[int]:
        if self.cluster is None:
            return []
        return [n.pid for n in list(self.cluster.workers.values()) if getattr(n, "pid", None)]

    def _close(self, hard: bool) -> None:
        """Close the cluster; ``hard`` (an error, an interruption, a killed shard): first kill every
        local worker and everything under it, unlinking their shared memory."""
        old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the clean-up short
                old[sig] = signal.signal(sig, signal.SIG_IGN)
        try:
            if self.cluster is not None:
                from distributed.core import Status

                for n in list(self.cluster.workers.values()):
                    n.status = Status.closing_gracefully  # no restart of a worker we kill now
                self._pids |= {p for p in self._nanny_pids() if p}
                if hard:
                    for pid in sorted(self._pids):
                        if ours(pid):
                            kill_tree(pid, spare=[os.getpid()])
            elif hard and self.client is not None:  # an existing cluster: end our shards still running there
                for a in list(self._running.values()):
                    self._kill(a, wait=False)
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(EVENT_TOPIC)
            for obj in (self.client, self.cluster):
                if obj is not None:
                    _bounded(obj.close, CLOSE_S)
            for pid in sorted(self._pids):  # whatever closing left behind
                if ours(pid):
                    kill_tree(pid, spare=[os.getpid()])
        finally:
            if self._local_dir is not None:
                import shutil

                shutil.rmtree(self._local_dir, ignore_errors=True)
            if self.cluster is not None:
                with contextlib.suppress(Exception):
                    from ..runtime.lava import remove_stale_record_folders

                    remove_stale_record_folders()  # those of workers killed mid-run
            if self._config is not None:
                self._config.__exit__(None, None, None)
            import logging

            for name, level in self._log_levels.items():
                logging.getLogger(name).setLevel(level)
            for sig, h in old.items():
                signal.signal(sig, h)

    # -- running

    def _kill(self, a: _Attempt, wait: bool = True) -> None:
        """Kill the worker that runs attempt ``a`` with everything under it; its nanny starts a fresh one."""
        if self.cluster is not None:
            if ours(a.pid):
                self._pids.add(a.pid)
                kill_tree(a.pid, spare=[os.getpid()])
        elif a.address is not None:
            with contextlib.suppress(Exception):
                self.client.run(_abort_worker, workers=[a.address], wait=False)
        if wait:
            self._forget(a.address)

    def _forget(self, address: Optional[str], within: float = 15.0) -> None:
        """Wait until the scheduler has dropped a killed worker, so that a retry is not sent to it (and
        failed with it)."""
        deadline = time.monotonic() + within
        while address is not None and time.monotonic() < deadline:
            try:
                if address not in self.client.scheduler_info(n_workers=-1)["workers"]:
                    return
            except Exception:
                return
            time.sleep(POLL_S)

    def _refresh_slots(self) -> None:
        if self.cluster is not None:
            self._pids |= {p for p in self._nanny_pids() if p}
            return
        with contextlib.suppress(Exception):
            info = self.client.scheduler_info(n_workers=-1)["workers"]
            self.workers = len(info)
            self.slots = max(1, sum(int(w.get("nthreads", 1)) for w in info.values()))

    def run(self, todo, task, make_job, on_done, timeout_s: float, bar: _Progress, out: Outcome) -> None:
        pending: List[Tuple[Shard, int, List[str]]] = [(s, 0, []) for s in todo]
        running: Dict[object, Tuple[_Attempt, List[str]]] = {}
        by_tag: Dict[str, _Attempt] = {}
        last_refresh = 0.0

        def failed(a: _Attempt, errors: List[str], why: str) -> None:
            errors = errors + [why]
            if a.number + 1 < ATTEMPTS:
                pending.insert(0, (a.shard, a.number + 1, errors))
            else:
                out.failed.append(
                    {"shard": a.shard.index, "samples": a.shard.samples, "attempts": ATTEMPTS, "errors": errors}
                )
                bar.add(0, failed=True)

        while pending or running:
            now = time.monotonic()
            if now - last_refresh > 5.0:
                self._refresh_slots()
                last_refresh = now
            while pending and len(running) < max(1, self.slots):
                shard, number, errors = pending.pop(0)
                a = _Attempt(shard, number, time.monotonic(), run=self._id)
                with warnings.catch_warnings():  # a shard's samples travel once, by design: not a mistake
                    warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
                    fut = self.client.submit(task, make_job(shard, a.tag), key=f"snndeploy-shard-{a.tag}")
                running[fut] = (a, errors)
                by_tag[a.tag] = self._running[a.tag] = a
            events = []
            with contextlib.suppress(queue.Empty):  # wakes up at once when a shard starts
                events.append(self._events.get(timeout=POLL_S))
                while True:
                    events.append(self._events.get_nowait())
            for _, msg in events:
                a = by_tag.get(msg.get("tag")) if isinstance(msg, dict) else None
                if a is not None and a.started is None:
                    a.started, a.pid, a.address = time.monotonic(), msg.get("pid"), msg.get("address")
            for fut in [f for f in running if f.done()]:
                a, errors = running.pop(fut)
                self._running.pop(a.tag, None)
                if fut.status == "finished":
                    try:
                        result = fut.result()
                    finally:
                        fut.release()
                    on_done(a.shard, result)
                    bar.add(a.shard.stop - a.shard.start)
                else:
                    try:
                        exc = fut.exception()
                    except Exception as e:  # cancelled
                        exc = e
                    fut.release()
                    failed(a, errors, _describe(exc, a))
            now = time.monotonic()
            for fut, (a, errors) in list(running.items()):
                late = a.started is not None and now - a.started > timeout_s
                stuck = a.started is None and now - a.submitted > timeout_s + START_GRACE_S
                if not (late or stuck):
                    continue
                running.pop(fut)
                self._running.pop(a.tag, None)
                if late:
                    self._kill(a)
                    why = f"ran past the shard timeout of {timeout_s:g} s (--shard-timeout); its worker was killed"
                else:
                    why = f"did not start within {timeout_s + START_GRACE_S:g} s of being submitted"
                with contextlib.suppress(Exception):
                    self.client.cancel(fut, force=True)
                fut.release()
                failed(a, errors, why)


def _describe(exc, a: _Attempt) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        where = f" (pid {a.pid})" if a.pid else ""
        return f"its worker process{where} died (killed by a signal, e.g. the OOM killer, or crashed)"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{name}: {text}" if text else name


def _bounded(fn: Callable, timeout: float) -> None:
    """Call ``fn`` in a thread and wait at most ``timeout`` seconds for it (closing a cluster whose
    workers were killed must not hang the way out)."""
    t = threading.Thread(target=_quiet, args=(fn,), daemon=True)
    t.start()
    t.join(timeout)


def _quiet(fn: Callable) -> None:
    try:
        fn()
    except Exception:
        pass


def executor_for(opts: ShardOptions, forks: bool) -> contextlib.AbstractContextManager:
    """The Dask executor the options ask for, or a context giving None (in-process)."""
    if not opts.distributed:
        return contextlib.nullcontext(None)
    return Executor(opts.workers, opts.scheduler, forks=forks)


def forks(names: Sequence[str]) -> bool:
    """Whether any of these backends starts OS processes (Lava's)."""
    return any(n.startswith("lava") for n in names)
