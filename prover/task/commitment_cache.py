"""A model's commitment (prover/task/commitments.py: every node file's root, the nodes tree,
modelRoot) computed once per model file and tile size and kept, so that the commands of a
multi-phase game do not hash the model again each (a gigabyte model's node files are most of a
command's work otherwise). It is kept in two places, in one format:

- beside the model, `MODEL.tile<tile_macs>.commit` (commitment_file), written by `prover commit`:
  the file that travels with the model (copy both, and a party on another machine does not hash
  the model again);
- in a content-addressed cache, $XDG_CACHE_HOME/opml-prover/commitments (else ~/.cache/...), or
  $PROVER_COMMITMENT_CACHE: `<sha256 of the model file>-<tile_macs>-<scheme>.commit`, written by
  every command that had to compute it (a copy or a move of the model finds it again).

    cached_commitment(path, model, graph, tile_macs, warn, compute, model_root=None, beside=False)

`scheme` is a digest of what else the commitment depends on: the model graph's structure (its
nodes, attributes, tensor shapes and scales, as the model file was read) and the sources of the
code that makes the task graph of it (tiles, ANSWER) and lays out and hashes node files. The task
graph is a function of the model graph, the tile size and that code, so its own structure (a
hundred thousand tensors for a tiled 7 B model) is not digested each time. Thus a commitment
written by another version of this package is never taken for this one's (it would be
self-consistent and still wrong: an honest party would commit to another modelRoot). The cache also holds
`path-<sha256 of the file's real path>.txt`: the file's size, mtime_ns and inode when its digest
was taken, so that an unchanged file is not read whole again to find its digest (a changed stat
means the digest is taken again, a changed content means another cache file; a file modified
less than 2 s before is not indexed, since a rewrite within the filesystem's timestamp
granularity would keep its stat).

A .commit file, big-endian, every size and offset 64 bits (models of more than 4 GiB):

    0    magic "PVMC", u32 version (2)
    8    the model file's sha256 (32 bytes), u64 its size, u64 tile_macs, u64 node count n
    64   the scheme (8 bytes)
    72   modelRoot (32 bytes)
    104  keccak256 of bytes 0..104 and the body (32 bytes)
    136  body: n node roots (32 bytes each; node i at 136 + 32 (i - 1))

It is read memory-mapped and checked before use: its header against the model file's identity
(digest, size), the tile size and the scheme; the whole against its checksum; modelRoot against
the nodes tree rebuilt from the node roots and the graph's input positions, and against the
task's modelRoot when the caller has one (graph.json's, which the party's game matches on chain).
The cache is read first, then the file beside the model. A file that fails a check (stale,
truncated, corrupted, of another model or tile size) is named in one warning line and never
trusted: the commitment is taken from the other place or computed, and written again
(atomically) where it failed; a place that cannot be written (a read-only home or model
directory) is one warning line too, never an error.
"""

import contextlib
import hashlib
import mmap
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prover.errors import ProverError
from prover.files import write_atomically
from prover.model.graph import Graph
from prover.task.commitments import ModelCommitment, input_positions, model_commitment, producer_positions
from vm.hashing import keccak

MAGIC = b"PVMC"
VERSION = 2
HEADER = struct.Struct(
    ">4sI32sQQQ8s32s32s"
)  # magic, version, digest, size, tile_macs, n, scheme, root, checksum
CHECKSUM = slice(HEADER.size - 32, HEADER.size)
ROOT_SIZE = 32
RACY_NS = 2_000_000_000  # a file modified less than this ago is not put in the stat index (as git)


def cache_dir() -> Path:
    if os.environ.get("PROVER_COMMITMENT_CACHE"):
        return Path(os.environ["PROVER_COMMITMENT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "opml-prover" / "commitments"


def file_digest(path: Path) -> str:
    """The sha256 of the file at `path` (hex), through the stat index when the file is unchanged."""
    real = Path(path).resolve()
    stat = real.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}
    index = cache_dir() / f"path-{hashlib.sha256(str(real).encode()).hexdigest()[:32]}.txt"
    try:
        recorded = index.read_text().split()
        if recorded[:3] == [str(key["size"]), str(key["mtime_ns"]), str(key["inode"])]:
            return recorded[3]
    except (OSError, IndexError):
        pass
    with open(real, "rb") as file:
        if stat.st_size == 0:
            digest = hashlib.sha256(b"").hexdigest()
        else:
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                digest = hashlib.sha256(data).hexdigest()
    if time.time_ns() - stat.st_mtime_ns < RACY_NS:
        return digest  # a file written just now may change again within the same mtime: not indexed
    # A cache that cannot be written: the commitment's own write says so.
    with contextlib.suppress(OSError, ProverError):
        write_atomically(index, f"{key['size']} {key['mtime_ns']} {key['inode']} {digest}\n".encode())
    return digest


# The code a commitment's bytes depend on: the model graph read from the file, the task graph made
# of it (tiles, ANSWER), node files' layout, their region roots, the nodes tree.
SCHEME_SOURCES = tuple(
    Path(__file__).resolve().parent.parent / name
    for name in (
        "model/modelfile.py",
        "model/graph.py",
        "model/tiling.py",
        "model/answer.py",
        "task/commitments.py",
        "task/node.py",
        "task/merkle.c",
    )
)


def scheme_digest(model: Graph) -> str:
    """16 hex digits of sha256 over the structure of the model graph `model` (everything but the
    weights' bytes, which the model file's digest covers) and the SCHEME_SOURCES. Per-channel
    scales go in as their float64 bytes: a 7 B model has a million and a half, too many to print."""
    digest = hashlib.sha256()
    for t in model.tensors:
        digest.update(
            repr((t.name, int(t.dtype), t.dims, len(t.scales), t.zero_point, t.data is None)).encode()
        )
        digest.update(np.asarray(t.scales, dtype=np.float64).tobytes())
    for n in model.nodes:
        digest.update(
            repr((int(n.op), n.inputs, n.output, sorted((int(k), v) for k, v in n.attrs.items()))).encode()
        )
    digest.update(repr((model.input, model.output, sorted(model.metadata.items()))).encode())
    for source in SCHEME_SOURCES:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def cache_file(path: Path, tile_macs: int, model: Graph) -> Path:
    """Where the commitment of the task graph of `model` (read from the file at `path`) tiled at
    `tile_macs` is cached."""
    return cache_dir() / f"{file_digest(path)}-{tile_macs}-{scheme_digest(model)}.commit"


def commitment_file(path: Path, tile_macs: int) -> Path:
    """Where `prover commit` stores the commitment of the model file at `path` at `tile_macs`."""
    return path.with_name(f"{path.name}.tile{tile_macs}.commit")


@dataclass(frozen=True)
class Identity:
    """What a .commit file must have been made for: the model file's content, the tile size, the
    scheme (the task graph's structure and this code)."""

    digest: str
    size: int
    tile_macs: int
    scheme: str


def _checksum(data: bytes | mmap.mmap) -> bytes:
    return keccak(bytes(data[: CHECKSUM.start]) + bytes(data[HEADER.size :]))


def encode(commitment: ModelCommitment, identity: Identity) -> bytes:
    header = HEADER.pack(
        MAGIC,
        VERSION,
        bytes.fromhex(identity.digest),
        identity.size,
        identity.tile_macs,
        commitment.node_count,
        bytes.fromhex(identity.scheme),
        commitment.model_root,
        bytes(32),
    )
    data = bytearray(header + b"".join(commitment.node_roots))
    data[CHECKSUM] = _checksum(data)
    return bytes(data)


def decode(
    data: bytes | mmap.mmap, graph: Graph, identity: Identity, task_root: bytes | None = None
) -> ModelCommitment:
    """The commitment a .commit file holds, checked (a ProverError saying what is wrong)."""
    if len(data) < HEADER.size:
        raise ProverError(f"truncated ({len(data)} bytes)")
    magic, version, digest, size, tiles, n, scheme, root, checksum = HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION:
        raise ProverError("not a commitment file of this version")
    if _checksum(data) != checksum:
        raise ProverError("its content does not match its checksum (corrupted or truncated)")
    if (digest.hex(), size) != (identity.digest, identity.size):
        raise ProverError("made for another model file (or an older version of this one)")
    if tiles != identity.tile_macs:
        raise ProverError(f"made for tile size {tiles}, not {identity.tile_macs}")
    if scheme.hex() != identity.scheme:
        raise ProverError("made for another task graph or version of this package")
    if n != len(graph.nodes) or len(data) != HEADER.size + n * ROOT_SIZE:
        raise ProverError(f"{n} node roots, the tiled model has {len(graph.nodes)}")
    body = data[HEADER.size :]
    roots = tuple(bytes(body[i : i + ROOT_SIZE]) for i in range(0, len(body), ROOT_SIZE))
    producers = producer_positions(graph)
    positions = tuple(tuple(input_positions(graph, index, producers)) for index in range(n))
    commitment = model_commitment(roots, positions)
    if commitment.model_root != root:
        raise ProverError("its node roots do not give its modelRoot (corrupted)")
    if task_root is not None and root != task_root:
        raise ProverError(f"modelRoot 0x{root.hex()} is not the task's 0x{task_root.hex()}")
    return commitment


def _read(file: Path, graph: Graph, identity: Identity, task_root: bytes | None) -> ModelCommitment:
    with open(file, "rb") as stream:
        if os.fstat(stream.fileno()).st_size == 0:
            raise ProverError("empty")
        with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return decode(data, graph, identity, task_root)


def cached_commitment(
    path: Path,
    model: Graph,
    graph: Graph,
    tile_macs: int,
    warn: Callable[[str], None],
    compute: Callable[[], ModelCommitment],
    task_root: bytes | None = None,
    beside: bool = False,
) -> ModelCommitment:
    """The commitment of `graph`, the task graph of `model` (the model file at `path`) tiled at
    `tile_macs` (prover.task.commitments.task_graph): from the cache
    or the file beside the model when one holds a good one (and, with `task_root`, that
    modelRoot), else `compute()`d (commit_model); then written to the cache, and beside the model
    when `beside` (`prover commit`) or when the file there was bad."""
    path = Path(path)
    cached = cache_file(path, tile_macs, model)
    digest, scheme = cached.name.split("-")[0], cached.stem.split("-")[-1]
    identity = Identity(digest, path.stat().st_size, tile_macs, scheme)
    places = {"commitment cache": cached, "commitment file": commitment_file(path, tile_macs)}
    commitment, bad = None, []
    for what, file in places.items():
        if not file.exists():
            continue
        try:
            commitment = _read(file, graph, identity, task_root)
            break
        except (ProverError, OSError, ValueError) as exc:
            warn(f"{file}: {what} of {path} not usable ({exc}); re-deriving it")
            bad.append(what)
    if commitment is None:
        commitment = compute()
    wanted = {"commitment cache": not cached.exists() or "commitment cache" in bad}
    wanted["commitment file"] = beside or "commitment file" in bad
    data = encode(commitment, identity)
    for what, file in places.items():
        if not wanted[what]:
            continue
        try:
            write_atomically(file, data)
        except (OSError, ProverError) as exc:
            warn(f"{file}: cannot write the {what} ({exc}); it is recomputed next time")
    return commitment
