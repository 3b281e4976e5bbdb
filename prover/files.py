"""Atomic file writes for the party's state files (the VM's own, vm/files.py, with its error as a
ProverError): a command killed at any moment leaves either the old file or the whole new one."""

import os
from collections.abc import Iterable

from prover.errors import ProverError
from vm import files
from vm.errors import VmError


def write_atomically(
    path: str | os.PathLike[str], data: bytes | Iterable[bytes], durable: bool = True
) -> None:
    """Replace `path` with `data`, atomically, with the permissions a plain open() would give
    (`durable`: see vm/files.py)."""
    try:
        files.write_atomically(path, data, durable)
    except VmError as exc:
        raise ProverError(str(exc)) from None
