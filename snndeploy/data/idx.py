"""IDX files (LeCun's MNIST format) checked and staged for torchvision's readers.

torchvision's ``MNIST`` / ``FashionMNIST`` classes parse the data; this module does what they do not:

* they look for the plain files ``<root>/<ClassName>/raw/<stem>`` and open them with a bare ``open``
  (torchvision 0.29 reads no ``.gz``), so :func:`stage_idx` puts each file there: a symlink to a
  plain file (no copy), or the inflated bytes of a gzipped one (gzip is told by content, not by suffix);
* their parser stops on a bare ``assert`` or a tensor ``view`` error that names no file, and reads a
  file that is truncated or longer than its header says without a word, so the header and the length
  are checked here first (:func:`check_idx_header`), with errors that name the file, what was
  expected and what was found;
* a gzip stream is inflated without limit there; here it is inflated in chunks against a byte budget
  (the memory the caller may plan to use), so a small file that inflates to more is refused before
  anything that large is allocated or written (a gzip bomb), and no more bytes are written to disk
  than the header declares and the budget allows.

Layout: magic ``00 00 TT DD`` (TT = type code, see :data:`IDX_DTYPES`; DD = number of dimensions),
DD unsigned 32-bit big-endian sizes, then the data in C order, big-endian.
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..errors import DatasetError

#: IDX type code (3rd magic byte) -> big-endian numpy dtype
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_HEADER_BYTES = 4  # 0x00 0x00 <type code> <number of dimensions>
IDX_DIM_BYTES = 4  # each dimension: unsigned 32-bit big-endian
IDX_MAX_HEAD_BYTES = IDX_HEADER_BYTES + IDX_DIM_BYTES * 255  # the longest header: 255 dimensions
GZIP_MAGIC = b"\x1f\x8b"
#: bytes read from a gzip file, and inflated from it, per step
CHUNK_BYTES = 2**20


def check_idx_header(
    path, head: bytes, size: int, ndim: Optional[int] = None, dtype_code: Optional[int] = None
) -> Tuple[Tuple[int, ...], np.dtype]:
    """The (shape, big-endian dtype) of the IDX content whose first bytes are ``head`` (at least the
    whole header, or all of it when shorter) and whose length is ``size`` bytes; ``path`` names it.

    ``ndim`` / ``dtype_code`` are what the caller expects; any mismatch, a truncated or an overlong
    content is a :class:`DatasetError` naming the file, what was expected and what was found.
    """
    if size < IDX_HEADER_BYTES:
        raise DatasetError(f"{path}: not an IDX file: {size} bytes, expected a header of {IDX_HEADER_BYTES}")
    zero0, zero1, code, nd = head[:IDX_HEADER_BYTES]
    if zero0 != 0 or zero1 != 0:
        raise DatasetError(f"{path}: not an IDX file: magic starts with {head[:2].hex()}, expected 0000")
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise DatasetError(f"{path}: unknown IDX type code 0x{code:02x}; expected one of {known}")
    if dtype_code is not None and code != dtype_code:
        raise DatasetError(
            f"{path}: IDX type code 0x{code:02x} ({IDX_DTYPES[code]}), "
            f"expected 0x{dtype_code:02x} ({IDX_DTYPES[dtype_code]})"
        )
    if ndim is not None and nd != ndim:
        raise DatasetError(f"{path}: IDX file has {nd} dimensions, expected {ndim}")
    data_start = IDX_HEADER_BYTES + IDX_DIM_BYTES * nd
    if size < data_start:
        raise DatasetError(
            f"{path}: truncated IDX header: {size} bytes, expected at least {data_start} for {nd} dimensions"
        )
    dims = tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=nd, offset=IDX_HEADER_BYTES))
    dt = IDX_DTYPES[code]
    expected = math.prod(dims) * dt.itemsize  # Python ints: no int64 overflow for 2**32-sized dimensions
    got = size - data_start
    if got != expected:
        raise DatasetError(
            f"{path}: IDX data of {got} bytes, expected {expected} for shape {dims} of {dt}"
            f" ({'truncated' if got < expected else 'trailing bytes'})"
        )
    return dims, dt


def _declared_size(head: bytes) -> Optional[int]:
    """Total bytes (header + data) an IDX header declares, or None while ``head`` is too short or no IDX header."""
    if len(head) < IDX_HEADER_BYTES or head[:2] != b"\x00\x00" or head[2] not in IDX_DTYPES:
        return None
    nd = head[3]
    data_start = IDX_HEADER_BYTES + IDX_DIM_BYTES * nd
    if len(head) < data_start:
        return None
    dims = (int(d) for d in np.frombuffer(head, dtype=">u4", count=nd, offset=IDX_HEADER_BYTES))
    return data_start + math.prod(dims) * IDX_DTYPES[head[2]].itemsize


class _Sink:
    """Receives the inflated stream: keeps its head, counts it, and writes to ``dest`` only the bytes
    a well-formed file would hold, and only when the size its header declares fits the budget."""

    def __init__(self, src: Path, dest: Path, out, limit: int):
        self.src, self.dest, self.out, self.limit = src, dest, out, limit
        self.head = b""
        self.size = 0
        self.pending = []  # chunks received before the header was known (normally one)
        self.declared: Optional[int] = None
        self.header_known = False
        self.writing = False

    def add(self, chunk: bytes) -> None:
        if len(self.head) < IDX_MAX_HEAD_BYTES:
            self.head += chunk[: IDX_MAX_HEAD_BYTES - len(self.head)]
        start = self.size
        self.size += len(chunk)
        if not self.header_known:
            self.pending.append(chunk)
            self.declared = _declared_size(self.head)
            if self.declared is None and (len(self.head) < IDX_MAX_HEAD_BYTES and self._may_grow()):
                return  # the header is not complete yet
            self.header_known = True
            chunks, self.pending = self.pending, []
            self.writing = self.declared is not None and (not self.limit or self.declared <= self.limit)
            self._write(b"".join(chunks), 0)
            return
        self._write(chunk, start)

    def _may_grow(self) -> bool:
        """Whether more bytes could still complete a header (the first bytes look like one)."""
        return len(self.head) < IDX_HEADER_BYTES or (self.head[:2] == b"\x00\x00" and self.head[2] in IDX_DTYPES)

    def _write(self, data: bytes, start: int) -> None:
        if self.writing and start < self.declared:
            try:
                self.out.write(data[: self.declared - start])
            except OSError as exc:
                raise self._cannot_write(exc) from exc

    def _cannot_write(self, exc: OSError) -> DatasetError:
        return _sink_error(self.src, self.dest, exc)


def _sink_error(src: Path, dest: Path, exc: OSError) -> DatasetError:
    return DatasetError(f"cannot write the inflated {src} to {dest}: {exc.strerror or exc}")


def _inflate(path: Path, sink: _Sink, limit: int) -> None:
    """Inflate gzip file ``path`` into ``sink`` chunk by chunk; more than ``limit`` bytes (0: no
    limit) is refused as soon as they are counted, a corrupt or truncated stream too."""
    z = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing (one member, as the IDX files ship)
    try:
        with open(path, "rb") as f:
            while True:
                data = z.unconsumed_tail or f.read(CHUNK_BYTES)
                try:
                    out = z.decompress(data, CHUNK_BYTES)
                except zlib.error as exc:
                    raise DatasetError(f"{path}: corrupt gzip stream ({exc})") from exc
                if limit and sink.size + len(out) > limit:  # a small file that inflates past the budget
                    raise DatasetError(
                        f"{path}: inflates to more than {limit / 2**30:.1f} GiB, the memory this machine "
                        "may plan to use; refused before allocating it"
                    )
                sink.add(out)
                if z.eof:
                    return
                if not data and not out:
                    raise DatasetError(f"{path}: corrupt gzip stream (truncated)")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from exc


def stage_idx(
    src, dest, limit: int = 0, ndim: Optional[int] = None, dtype_code: Optional[int] = None
) -> Tuple[Tuple[int, ...], np.dtype]:
    """Check IDX file ``src`` (gzipped or not, told by its first bytes) and make ``dest`` its plain
    content for torchvision: a symlink to ``src`` when plain, the inflated bytes when gzipped (at most
    ``limit`` bytes; 0: no limit). Returns the (shape, big-endian dtype) its header declares.

    Every problem is a :class:`DatasetError` naming ``src`` (see :func:`check_idx_header`); on one,
    ``dest`` may hold part of the content: the caller stages into a folder it removes.
    """
    src, dest = Path(src), Path(dest)
    try:
        with open(src, "rb") as f:
            head = f.read(IDX_MAX_HEAD_BYTES)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise DatasetError(f"cannot read {src}: {exc.strerror or exc}") from exc
    if head[:2] != GZIP_MAGIC:
        shape = check_idx_header(src, head, size, ndim, dtype_code)
        try:
            os.symlink(src.resolve(), dest)
        except OSError as exc:
            raise DatasetError(f"cannot link {dest} to {src}: {exc.strerror or exc}") from exc
        return shape
    try:
        with open(dest, "wb") as out:  # reading and writing errors inside become DatasetErrors of their own
            sink = _Sink(src, dest, out, limit)
            _inflate(src, sink, limit)
    except OSError as exc:
        raise _sink_error(src, dest, exc) from exc
    return check_idx_header(src, sink.head, sink.size, ndim, dtype_code)
