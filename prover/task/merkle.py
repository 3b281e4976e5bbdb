"""Region roots at native speed: prover/task/merkle.c (Keccak-256 and the memory tree's hashing)
built for this host with the pinned `zig cc` the guest is built with, loaded through ctypes.

`region_root(payload)` here is the same function as `prover.task.golden.region_root` (a test
compares them), hashing a 100 MB payload in about a second instead of a Python loop over millions
of leaves. The library is built once per source version into the user's cache directory (vm/clib.py).
"""

import ctypes
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

from prover.errors import ProverError
from vm.clib import load_library
from vm.errors import VmError

SOURCE = Path(__file__).resolve().parent / "merkle.c"
SLOT_LEVEL = 23  # a memory slot of 2^28 bytes (docs/memory-map.md)
REGION_HEADER = 32


_LOADING = threading.Lock()  # one thread builds and initializes the library; the others wait


def _library() -> ctypes.CDLL:
    with _LOADING:
        return _loaded()


@cache
def _loaded() -> ctypes.CDLL:
    try:
        library = load_library(SOURCE)
    except VmError as exc:
        raise ProverError(str(exc)) from None
    library.region_root.restype = ctypes.c_int
    library.region_root.argtypes = [
        ctypes.c_char_p,  # header leaf (32 bytes)
        ctypes.c_void_p,  # payload
        ctypes.c_uint64,  # payload length
        ctypes.c_uint,  # level
        ctypes.c_char_p,  # out (32 bytes)
    ]
    library.region_roots.restype = ctypes.c_int
    library.region_roots.argtypes = [
        ctypes.c_uint64,  # count
        ctypes.c_void_p,  # payload pointers
        ctypes.c_void_p,  # payload lengths (u64)
        ctypes.c_uint,  # level
        ctypes.c_void_p,  # out (32 bytes each)
    ]
    library.position_tree.restype = ctypes.c_int
    library.position_tree.argtypes = [
        ctypes.c_char_p,  # leaves (32 bytes each)
        ctypes.c_uint64,  # their count
        ctypes.c_uint,  # depth
        ctypes.c_void_p,  # out: the nodes, level by level
        ctypes.c_void_p,  # out: the prefix roots, or NULL
    ]
    library.keccak_pair.restype = None
    library.keccak_pair.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
    library.merkle_init.restype = None
    library.merkle_init()  # the zero subtrees' roots, once
    return library


def region_root(payload: bytes | bytearray | memoryview | np.ndarray, level: int = SLOT_LEVEL) -> bytes:
    """The Merkle root (`level`, default a 256 MiB slot) of a data region holding `payload`:
    the header leaf (u32 big-endian length, 28 zero bytes), the payload, zeros after."""
    data = np.frombuffer(payload, dtype=np.uint8)  # a view, never a copy (mmap'ed files, arrays)
    length = len(data)
    if REGION_HEADER + length > (1 << level) * 32:
        raise ProverError(f"payload of {length} bytes does not fit a {(1 << level) * 32 >> 20} MiB region")
    header = length.to_bytes(4, "big") + bytes(REGION_HEADER - 4)
    out = ctypes.create_string_buffer(32)
    if _library().region_root(header, data.ctypes.data, length, level, out) != 0:
        raise ProverError(f"region root of {length} bytes at level {level} failed")
    return out.raw


@contextmanager
def hashing_threads() -> Iterator[ThreadPoolExecutor]:
    """A thread per core for region roots hashed while the caller goes on (the native hashing lets
    go of the GIL); on the way out, roots not yet begun are dropped and those begun awaited."""
    pool = ThreadPoolExecutor(os.cpu_count() or 1)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def region_roots(payloads: Sequence[bytes | np.ndarray], level: int = SLOT_LEVEL) -> list[bytes]:
    """Each payload's `region_root`, in one native call (a thread hashes them all without the GIL);
    `parallel_region_roots` spreads them over the cores."""
    arrays = [np.frombuffer(payload, dtype=np.uint8) for payload in payloads]  # views, kept alive here
    pointers = np.array([a.ctypes.data if len(a) else 0 for a in arrays], dtype=np.uintp)
    lengths = np.array([len(a) for a in arrays], dtype=np.uint64)
    largest = int(lengths.max(initial=0))
    if REGION_HEADER + largest > (1 << level) * 32:
        raise ProverError(f"payload of {largest} bytes does not fit a {(1 << level) * 32 >> 20} MiB region")
    out = ctypes.create_string_buffer(32 * len(arrays))
    if _library().region_roots(len(arrays), pointers.ctypes.data, lengths.ctypes.data, level, out) != 0:
        raise ProverError(f"region roots of {len(arrays)} payloads at level {level} failed")
    data = out.raw
    return [data[i : i + 32] for i in range(0, len(data), 32)]


def parallel_region_roots(payloads: Sequence[bytes | np.ndarray]) -> list[bytes]:
    """Each payload's region root, hashed on every core: one share of the payloads per thread,
    interleaved so that large and small ones mix."""
    threads = min(os.cpu_count() or 1, len(payloads))
    if threads <= 1:
        return region_roots(payloads)
    with ThreadPoolExecutor(threads) as pool:
        shares = list(pool.map(region_roots, [payloads[i::threads] for i in range(threads)]))
    roots = [b""] * len(payloads)
    for i, share in enumerate(shares):
        roots[i::threads] = share
    return roots


def keccak_pair(left: bytes, right: bytes) -> bytes:
    """keccak256(left || right) of two 32-byte words, natively (tests of the permutation)."""
    out = ctypes.create_string_buffer(32)
    _library().keccak_pair(left, right, out)
    return out.raw


def position_tree(leaves: bytes, depth: int, prefix_roots: bool) -> tuple[list[bytes], bytes]:
    """A binary tree of 2^depth leaves whose first ones are `leaves` (32 bytes each), the rest zero:
    its nodes, one bytes object per level from the leaves up (level l: ceil(count / 2^l) nodes of 32
    bytes, those over some leaf), and with `prefix_roots` the root of the tree holding only leaves
    0..i for each i, concatenated (else b"")."""
    count = len(leaves) // 32
    if count == 0 or len(leaves) != 32 * count:
        raise ProverError(f"{len(leaves)} bytes are not one or more 32-byte leaves")
    sizes = [-(-count >> level) for level in range(depth + 1)]
    levels = ctypes.create_string_buffer(32 * sum(sizes))
    states = ctypes.create_string_buffer(32 * count) if prefix_roots else None
    if _library().position_tree(leaves, count, depth, levels, states) != 0:
        raise ProverError(f"{count} leaves do not fit a tree of depth {depth}")
    data, offsets = levels.raw, [0]
    for size in sizes:
        offsets.append(offsets[-1] + 32 * size)
    return [data[offsets[i] : offsets[i + 1]] for i in range(depth + 1)], states.raw if states else b""
