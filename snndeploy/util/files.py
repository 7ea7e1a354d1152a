"""The one way this project writes a file: a temporary name in the target's folder, then a rename.

Nothing half-written is ever left under the final name, and the temporary file is removed
on every failure (it is on the clean-up list from the moment it exists, before the first
byte is written). Files get the mode the process's umask gives (``0o666 & ~umask``), not
``mkstemp``'s 0600.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List

from ..errors import InputError, OutputError

#: prefix of every temporary file; a crash can leave one behind only if the process is SIGKILLed
TMP_PREFIX = ".tmp-"


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.
    An OSError (disk full, read-only file system, no such place) becomes an :class:`OutputError`
    naming the file."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=str(folder))
    except OSError as exc:
        raise OutputError(f"cannot write '{path}': {exc.strerror or exc}") from None
    try:
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write '{path}': {exc.strerror or exc}") from exc
        raise


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_files(out_dir, files: Dict[str, bytes]) -> List[Path]:
    """Write several files under ``out_dir``: every temporary file first, then every rename, so that
    a failure while writing any of them leaves none of them (and no temporary file) behind."""
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    try:
        with contextlib.ExitStack() as stack:
            for name, data in files.items():
                stack.enter_context(atomic_path(out_dir / name)).write_bytes(data)
    except BaseException:
        if created:  # the folder was made for these files: gone with them
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    return [out_dir / name for name in files]


def json_bytes(obj) -> bytes:
    """Indented, sorted, strict JSON (NaN and inf are refused: they are not JSON)."""
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def write_json(path, obj) -> Path:
    return write_bytes(path, json_bytes(obj))


def npz_bytes(arrays) -> bytes:
    buf = io.BytesIO()
    import numpy as np

    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def load_toml(path, what: str) -> dict:
    """A TOML file as a dict; ``what`` names it in errors ("model config", "target file")."""
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{what} {path} is not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {path} cannot be read: {exc}") from exc


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_out_dir(path, option: str = "--out") -> Path:
    """Refuse, before any work, an output folder that cannot be written: empty, an existing file, or
    under a file or a folder this process may not write to. Nothing is created here."""
    if path is None or str(path).strip() == "":
        raise InputError(f"{option} is empty; give a folder to write into")
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise InputError(f"{option} '{path}' is a symbolic link to nothing")
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} '{path}' exists and is not a folder")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise InputError(f"{option} '{path}': '{base}' is a file, so no folder can be made under it")
    try:  # the one sure test: create (and at once remove) a nameless file there
        with tempfile.TemporaryFile(dir=str(base)):
            pass
    except OSError as exc:
        raise InputError(f"{option} '{path}': cannot write into '{base}': {exc.strerror or exc}") from None
    return path


def check_out_file(path, option: str = "--out") -> Path:
    """Refuse, before any work, an output file that cannot be written (empty, a folder, an unwritable place)."""
    if path is None or str(path).strip() == "":
        raise InputError(f"{option} is empty; give a file to write")
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} '{path}' is a folder; give a file name")
    if path.is_symlink() and not path.exists():
        raise InputError(f"{option} '{path}' is a symbolic link to nothing")
    check_out_dir(path.parent if str(path.parent) else Path("."), option=f"{option} '{path}': folder")
    return path
