"""Atomic file writes: a command killed at any moment leaves either the old file or the whole new
one, never a torn or partial file (temporary file in the same directory, flushed to disk, then
os.replace)."""

import os
import tempfile
from pathlib import Path

from prover.errors import ProverError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` with `data`, atomically, with the permissions a plain open() would give."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ProverError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        os.fchmod(descriptor, 0o666 & ~_umask())
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
