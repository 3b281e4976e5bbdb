"""A model's commitment (prover/task/commitments.py: every node file's root, the nodes tree,
modelRoot) computed once per model file and tile size and kept in a content-addressed cache, so
that the commands of a multi-phase game do not hash the model again each (a gigabyte model's node
files are most of a command's work otherwise).

    cached_commitment(path, graph, tile_macs, warn, compute) -> ModelCommitment

The cache lives in $XDG_CACHE_HOME/opml-prover/commitments (else ~/.cache/...), or in
$PROVER_COMMITMENT_CACHE:
- `<sha256 of the model file>-<tile_macs>-<scheme>.commit`: the commitment of that content at that
  tile size (a copy or a move of the file finds it again); `scheme` is a digest of what else the
  commitment depends on: the tiled task graph's structure (its nodes, attributes and tensor shapes:
  how the model was tiled and answered) and the sources of the code that lays out and hashes node
  files, so that a cache written by another version of this package is never taken for this one's
  (it would be self-consistent and still wrong: an honest party would commit to another modelRoot);
- `path-<sha256 of the file's real path>.txt`: the file's size, mtime_ns and inode when its digest
  was taken, so that an unchanged file is not read whole again to find its digest (a changed stat
  means the digest is taken again, a changed content means another cache file; a file modified
  less than 2 s before is not indexed, since a rewrite within the filesystem's timestamp
  granularity would keep its stat).

A .commit file, big-endian, every size and offset 64 bits (models of more than 4 GiB):

    0    magic "PVMC", u32 version (1)
    8    the model file's sha256 (32 bytes), u64 its size, u64 tile_macs, u64 node count n
    64   modelRoot (32 bytes)
    96   keccak256 of the body (32 bytes)
    128  body: n node roots (32 bytes each; node i at 128 + 32 (i - 1))

It is read memory-mapped and checked before use: its header against the model, the body against
its checksum, and modelRoot against the nodes tree rebuilt from the node roots and the graph's
input positions. A cache file that fails a check (stale, truncated, corrupted) is named in one
warning line and the commitment is recomputed and written again (atomically); a cache that cannot
be written (a read-only home) is one warning line too, never an error.
"""

import contextlib
import hashlib
import mmap
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

from prover.errors import ProverError
from prover.files import write_atomically
from prover.model.graph import Graph
from prover.task.commitments import (
    ModelCommitment,
    PositionTree,
    input_positions,
    model_root,
    node_leaf,
    producer_positions,
)
from vm.hashing import keccak

MAGIC = b"PVMC"
VERSION = 1
HEADER = struct.Struct(">4sI32sQQQ32s32s")  # magic, version, digest, size, tile_macs, n, modelRoot, checksum
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


# The code a commitment's bytes depend on (node files' layout, their region roots, the nodes tree).
SCHEME_SOURCES = tuple(
    Path(__file__).resolve().parent.parent / name
    for name in ("task/commitments.py", "task/node.py", "task/merkle.c", "model/modelfile.py")
)


def scheme_digest(graph: Graph) -> str:
    """16 hex digits of sha256 over the structure of `graph` (everything but the weights' bytes,
    which the model file's digest covers) and the SCHEME_SOURCES."""
    structure = [
        [(t.name, int(t.dtype), t.dims, t.scales, t.zero_point, t.data is None) for t in graph.tensors],
        [
            (int(n.op), n.inputs, n.output, sorted((int(k), v) for k, v in n.attrs.items()))
            for n in graph.nodes
        ],
        graph.input,
        graph.output,
        sorted(graph.metadata.items()),
    ]
    digest = hashlib.sha256(repr(structure).encode())
    for source in SCHEME_SOURCES:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def cache_file(path: Path, tile_macs: int, graph: Graph) -> Path:
    """Where the commitment of `graph`, the model file at `path` tiled at `tile_macs`, is cached."""
    return cache_dir() / f"{file_digest(path)}-{tile_macs}-{scheme_digest(graph)}.commit"


def encode(commitment: ModelCommitment, digest: str, size: int, tile_macs: int) -> bytes:
    body = b"".join(commitment.node_roots)
    header = HEADER.pack(
        MAGIC,
        VERSION,
        bytes.fromhex(digest),
        size,
        tile_macs,
        commitment.node_count,
        commitment.model_root,
        keccak(body),
    )
    return header + body


def decode(data: bytes | mmap.mmap, graph: Graph, digest: str, size: int, tile_macs: int) -> ModelCommitment:
    """The commitment a cache file holds, checked (a ProverError saying what is wrong)."""
    if len(data) < HEADER.size:
        raise ProverError(f"truncated ({len(data)} bytes)")
    magic, version, file_digest_, file_size, tiles, n, root, checksum = HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION:
        raise ProverError("not a commitment cache file of this version")
    if (file_digest_.hex(), file_size, tiles) != (digest, size, tile_macs):
        raise ProverError("made for another model file or tile size")
    if n != len(graph.nodes):
        raise ProverError(f"{n} nodes, the tiled model has {len(graph.nodes)}")
    body = data[HEADER.size :]
    if len(body) != n * ROOT_SIZE:
        raise ProverError(f"a body of {len(body)} bytes, not {n * ROOT_SIZE}")
    if keccak(body) != checksum:
        raise ProverError("its body does not match its checksum (corrupted)")
    roots = tuple(bytes(body[i : i + ROOT_SIZE]) for i in range(0, len(body), ROOT_SIZE))
    producers = producer_positions(graph)
    positions = tuple(tuple(input_positions(graph, index, producers)) for index in range(n))
    tree = PositionTree()
    for index, (node_root, inputs) in enumerate(zip(roots, positions, strict=True)):
        tree.set(index + 1, node_leaf(node_root, list(inputs)))
    if model_root(tree.root(), n) != root:
        raise ProverError("its node roots do not give its modelRoot (corrupted)")
    return ModelCommitment(roots, positions, tree, root)


def cached_commitment(
    path: Path,
    graph: Graph,
    tile_macs: int,
    warn: Callable[[str], None],
    compute: Callable[[], ModelCommitment],
) -> ModelCommitment:
    """The commitment of `graph` (the model file at `path`, tiled at `tile_macs`): from the cache
    when it holds a good one, else `compute()`d (commit_model) and stored."""
    size = Path(path).stat().st_size
    cached = cache_file(path, tile_macs, graph)
    digest = cached.name.split("-")[0]
    if cached.exists():
        try:
            with open(cached, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return decode(data, graph, digest, size, tile_macs)
        except (ProverError, OSError, ValueError) as exc:
            warn(f"{cached}: commitment cache of {path} not usable ({exc}); recomputing it")
    commitment = compute()
    try:
        write_atomically(cached, encode(commitment, digest, size, tile_macs))
    except (OSError, ProverError) as exc:
        warn(f"{cached}: cannot write the commitment cache ({exc}); it is recomputed next time")
    return commitment
