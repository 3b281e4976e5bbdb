"""Snapshots: a machine's state and memory in a compact, deterministic binary file.

Format (all integers big-endian):

    magic      8 bytes  b"MIPSSNAP"
    version    u32      1
    state      226 bytes, the state encoding (docs/machine.md), memRoot included
    body       zlib (level 6) of: u32 page count, then per page u32 page index + 4096 bytes,
               in increasing page index order

A full snapshot lists the non-zero pages only. The same layout holds a checkpoint delta
(vm/trace.py): there the pages are those written since the previous checkpoint, zero or not.
Loading a full snapshot recomputes the Merkle root and checks it against the stored memRoot.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

from vm.errors import SnapshotError
from vm.files import write_atomically
from vm.machine import Machine
from vm.memory import PAGE_SIZE, Memory
from vm.state import STATE_SIZE, State

MAGIC = b"MIPSSNAP"
VERSION = 1
_HEADER = struct.Struct(">8sI")
_PAGE_HEADER = struct.Struct(">I")
_COMPRESSION_LEVEL = 6


def encode_snapshot(state_data: bytes, pages: Iterable[tuple[int, bytes]]) -> bytes:
    """The snapshot bytes of a state encoding and (page index, page bytes) pairs."""
    pages = sorted(pages)
    body = bytearray(_PAGE_HEADER.pack(len(pages)))
    for index, page in pages:
        body += _PAGE_HEADER.pack(index)
        body += page
    return _HEADER.pack(MAGIC, VERSION) + state_data + zlib.compress(bytes(body), _COMPRESSION_LEVEL)


def decode_snapshot(data: bytes, name: str = "snapshot") -> tuple[bytes, dict[int, bytes]]:
    """The state encoding and the pages of snapshot bytes; SnapshotError if malformed."""
    if len(data) < _HEADER.size + STATE_SIZE:
        raise SnapshotError(f"{name}: truncated ({len(data)} bytes)")
    magic, version = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SnapshotError(f"{name}: not a VM snapshot (magic {magic!r})")
    if version != VERSION:
        raise SnapshotError(f"{name}: snapshot version {version}, expected {VERSION}")
    state_data = data[_HEADER.size : _HEADER.size + STATE_SIZE]
    try:
        body = zlib.decompress(data[_HEADER.size + STATE_SIZE :])
    except zlib.error as exc:
        raise SnapshotError(f"{name}: corrupt page data ({exc})") from None
    if len(body) < _PAGE_HEADER.size:
        raise SnapshotError(f"{name}: truncated page data")
    (count,) = _PAGE_HEADER.unpack_from(body)
    record = _PAGE_HEADER.size + PAGE_SIZE
    if len(body) != _PAGE_HEADER.size + count * record:
        raise SnapshotError(f"{name}: page data of {len(body)} bytes does not hold {count} pages")
    pages = {}
    for number in range(count):
        offset = _PAGE_HEADER.size + number * record
        (index,) = _PAGE_HEADER.unpack_from(body, offset)
        pages[index] = body[offset + _PAGE_HEADER.size : offset + record]
    return state_data, pages


def machine_to_bytes(machine: Machine) -> bytes:
    """A full snapshot of the machine (non-zero pages only)."""
    return encode_snapshot(machine.state.encode(), machine.memory.nonzero_pages())


def machine_from_bytes(data: bytes, name: str = "snapshot") -> Machine:
    """The machine of a full snapshot; SnapshotError if malformed or its memRoot does not match."""
    state_data, pages = decode_snapshot(data, name)
    state = State.decode(state_data)
    memory = Memory()
    for index, page in pages.items():
        memory.page_for_write(index)[:] = page
    machine = Machine(state, memory)
    if memory.merkle_root() != state.mem_root:
        raise SnapshotError(f"{name}: the pages do not hash to the stored memRoot")
    return machine


def save_snapshot(machine: Machine, path: str | Path) -> None:
    """The machine's full snapshot in `path`, written atomically."""
    write_atomically(path, machine_to_bytes(machine))


def load_snapshot(path: str | Path) -> Machine:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read ({exc.strerror})") from None
    return machine_from_bytes(data, str(path))
