"""Memory: how much a run records, whether it fits, and how many samples a chunk may hold.

Every backend records every node's output and every neuron's ``v`` over time in float64 (that is
what lets the report name the first divergence), so a job's size is known before it runs.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..ir.analysed import as_analysed
from ..util.memory import MEMORY_HEADROOM, available_memory_bytes  # noqa: F401 (tests patch it here)

#: every backend records every node's output (and each neuron's v) over time in float64
RECORD_BYTES = 8


#: an automatic chunk takes at most 1/3 of that: the one running, and two thirds left free (a chunk
#: sized to fill it was OOM-killed when a test suite started beside it). Only one sample's records
#: are kept from chunk to chunk, for the plots.
CHUNK_MEMORY_SHARES = 3


def record_bytes_per_sample(graph, steps: int, n_backends: int) -> int:
    """Bytes the records of one sample take: every node's output and every neuron's v, per
    backend, in float64, plus two copies of the input (the caller's and the float64 check)."""
    ag = as_analysed(graph)
    per_step = 0
    for info in ag.nodes.values():
        size = int(np.prod(info.shape))
        per_step += size * (2 if info.is_neuron else 1)  # a neuron's v too
    in_size = int(np.prod(ag.input_shape))
    return steps * RECORD_BYTES * (n_backends * per_step + 2 * in_size)


def check_memory(graph, samples: int, steps: int, names: Sequence[str]) -> None:
    """Refuse, before anything runs, a job whose records would not fit in memory (instead of being
    killed by the OS half way with nothing said)."""
    per_sample = record_bytes_per_sample(graph, steps, len(names))
    avail = available_memory_bytes()
    if avail is None or per_sample * samples <= MEMORY_HEADROOM * avail:
        return
    fits = int(MEMORY_HEADROOM * avail // per_sample)
    raise InputError(
        f"{samples} samples x {steps} steps on {len(names)} backend(s) ({', '.join(names)}) would "
        f"record about {per_sample * samples / 2**30:.1f} GiB (every node's output and every neuron's "
        f"v in float64, per backend); this machine has {avail / 2**30:.1f} GiB available. "
        f"At most {fits} samples fit: use an input with fewer samples (or fewer backends)"
    )


def chunk_size(graph, samples: int, steps: int, names: Sequence[str], chunk: Optional[int] = None) -> int:
    """Samples per chunk for ``compare``: ``chunk`` when given, else all samples when their records
    fit in memory, else as many as fit ``CHUNK_MEMORY_SHARES`` times (the chunk running, and room
    left for the rest of the machine), after the whole input's two copies."""
    if chunk is not None:
        if int(chunk) < 1:
            raise InputError(f"--chunk must be a positive number of samples, got {chunk}")
        return min(int(chunk), samples)
    per_sample = record_bytes_per_sample(graph, steps, len(names))
    avail = available_memory_bytes()
    if avail is None or per_sample * samples <= MEMORY_HEADROOM * avail:
        return samples
    input_bytes = 2 * steps * RECORD_BYTES * int(np.prod(as_analysed(graph).input_shape))
    records = per_sample - input_bytes
    fits = int((MEMORY_HEADROOM * avail - input_bytes * samples) // (CHUNK_MEMORY_SHARES * records))
    if fits < 1:
        raise InputError(
            f"{samples} samples x {steps} steps: the input alone ({input_bytes * samples / 2**30:.1f} "
            f"GiB in two copies) leaves no room for the records of one sample on "
            f"{len(names)} backend(s); this machine has {avail / 2**30:.1f} GiB available. "
            "Use fewer --samples"
        )
    return min(fits, samples)
