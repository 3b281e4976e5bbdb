"""Atomic file writes: a process killed at any moment leaves either the old file or the whole new
one, never a torn or partial file (a temporary file in the same directory, flushed to disk, then
os.replace). Checkpoints and snapshots are written this way; prover/files.py uses it for the
party's state files."""

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from vm.errors import VmError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(
    path: str | os.PathLike[str], data: bytes | Iterable[bytes], durable: bool = True
) -> None:
    """Replace `path` with `data` (bytes, or pieces written one after the other: a file larger
    than memory), atomically, with the permissions a plain open() would give; VmError (one line)
    if the directory cannot be written. `durable=False` leaves out the flush to disk: for a file
    derived from others and checked against a digest before use, which a crash of the machine
    may damage (then it is derived again) but a killed process never tears."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise VmError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        os.fchmod(descriptor, 0o666 & ~_umask())
        with os.fdopen(descriptor, "wb") as stream:
            for piece in [data] if isinstance(data, bytes) else data:
                stream.write(piece)
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
