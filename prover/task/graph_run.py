"""A graph task and its run for multi-phase games (docs/dispute-game.md, "Multi-phase games"),
written to BASEDIR/graph.json, from which the chain commands play them: `prover golden` (or
`prover golden --phases multi`) writes the task, `prover run` adds the claim, `prover graph` does
both. A base directory holds one kind of run: a graph task removes a single-phase golden image and
run, `prover golden --phases single` removes graph.json.

graph.json: the model file (absolute path), the tile size, the tiled model's modelRoot, the input
payload, the graph task's roots (single-node program, input, model), the nodes root and count and
G_0; after the run, the claim (G_n, the output tensor's bytes and its 20-sibling proof at position
n, the class) and a dishonest party's `fault_node` (its trace corrupts that node's output) or null.
It is kept with a copy and a digest (prover/task/sealed.py): the input payload is nowhere else.

The model's commitment comes from the commitment cache (prover/task/commitment_cache.py): it is
computed once per model file and tile size, not per command.
"""

import hashlib
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from prover.errors import ProverError
from prover.files import write_atomically
from prover.model.answer import answered_class
from prover.model.graph import Graph
from prover.model.modelfile import load_model
from prover.model.tiling import DEFAULT_TILE_MACS, tiled_values
from prover.task import merkle
from prover.task.basedir import (
    CHECKPOINTS,
    FINAL_JSON,
    GOLDEN_JSON,
    GOLDEN_SNAPSHOT,
    GRAPH_JSON,
    GRAPH_VALUES,
)
from prover.task.commitment_cache import cache_file, cached_commitment, commitment_file
from prover.task.commitments import ModelCommitment, PositionTree, commit_model, task_graph
from prover.task.graph_trace import GraphTrace, RootsAhead, trace_graph, trace_of_bytes, trace_pieces
from prover.task.node import node_program_root
from prover.task.run import load_task
from prover.task.sealed import read_sealed, write_sealed


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


VALUES_CHUNK = 4 << 20  # graph.values is written and digested in chunks of this many bytes
CLAIM_FIELDS = ("final_state", "output", "output_proof", "class", "fault_node", "values_digest")


def warn_on_stderr(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def committed(
    model_path: Path,
    model: Graph,
    graph: Graph,
    tile_macs: int,
    warn: Callable[[str], None],
    progress: bool = False,
    task_root: bytes | None = None,
) -> ModelCommitment:
    """The commitment of `graph`, the task graph of `model` (the file at `model_path`), from the cache or
    the model's .commit file (with `task_root`: only if it is that modelRoot), or computed (with
    a progress bar) and cached."""

    def compute() -> ModelCommitment:
        total = sum(t.nbytes for t in graph.tensors if t.data is not None)
        with tqdm(
            desc="commit", total=total, unit="B", unit_scale=True, disable=not progress, leave=False
        ) as bar:
            return commit_model(graph, progress=bar.update)

    return cached_commitment(model_path, model, graph, tile_macs, warn, compute, task_root)


def commit_model_file(
    model_path: Path, tile_macs: int, force: bool, warn: Callable[[str], None], progress: bool = True
) -> dict[str, object]:
    """`prover commit`: the commitment of the model's graph task (tiled, answered) computed (again
    with `force`) and stored beside the model (commitment_file) and in the cache; modelRoot, node
    count, bytes of node files hashed, seconds, MB/s (seconds from the graph's load to the files'
    write; MB/s of the model file; 0 bytes hashed when the cache or the file held it)."""
    start = time.perf_counter()
    model = load_model(model_path)
    graph = task_graph(model, tile_macs)
    hashed = 0

    def compute() -> ModelCommitment:
        nonlocal hashed
        total = sum(t.nbytes for t in graph.tensors if t.data is not None)
        with tqdm(
            desc="commit", total=total, unit="B", unit_scale=True, disable=not progress, leave=False
        ) as bar:

            def advance(size: int) -> None:
                nonlocal hashed
                hashed += size
                bar.update(size)

            return commit_model(graph, progress=advance)

    cache, beside = cache_file(model_path, tile_macs, model), commitment_file(model_path, tile_macs)
    if force:
        cache.unlink(missing_ok=True)
        beside.unlink(missing_ok=True)
    commitment = cached_commitment(model_path, model, graph, tile_macs, warn, compute, beside=True)
    seconds = time.perf_counter() - start
    return {
        "model": str(model_path.resolve()),
        "tile_macs": tile_macs,
        "model_root": _hex(commitment.model_root),
        "nodes_root": _hex(commitment.nodes_root),
        "node_count": commitment.node_count,
        "bytes": hashed,
        "seconds": round(seconds, 3),
        "model_bytes": model_path.stat().st_size,
        "mb_per_s": round(model_path.stat().st_size / 1e6 / seconds, 1) if hashed else 0.0,
        "cache": str(cache),
        "commitment_file": str(beside),
    }


@dataclass(frozen=True)
class TiledModel:
    """A model file's task graph at one tile size and its commitment: what a graph task needs of
    the model before its input is known."""

    path: Path
    graph: Graph  # the model's
    tiled: Graph  # its task graph (prover/task/commitments.py)
    tile_macs: int
    commitment: ModelCommitment


def tiled_model(
    model_path: Path,
    graph: Graph,
    tile_macs: int = DEFAULT_TILE_MACS,
    warn: Callable[[str], None] = warn_on_stderr,
    progress: bool = True,
    fault_node: int | None = None,
) -> TiledModel:
    """Tile the model `graph` (LINEARs over `tile_macs` multiply-accumulates), append its ANSWER
    node and find its commitment per node; a `fault_node` outside the tiled graph is refused
    before the commitment is computed."""
    tiled = task_graph(graph, tile_macs)
    _check_fault_node(fault_node, len(tiled.nodes))
    commitment = committed(model_path, graph, tiled, tile_macs, warn, progress)
    return TiledModel(model_path, graph, tiled, tile_macs, commitment)


def write_graph_task(
    basedir: Path,
    model_path: Path,
    graph: Graph,
    payload: bytes,
    tile_macs: int = DEFAULT_TILE_MACS,
    warn: Callable[[str], None] = warn_on_stderr,
    progress: bool = True,
) -> dict[str, object]:
    """The model `graph` tiled and committed (`tiled_model`), graph.json's task written (without a
    claim); returns it."""
    return _write_task(basedir, tiled_model(model_path, graph, tile_macs, warn, progress), payload)


def _write_task(basedir: Path, model: TiledModel, payload: bytes) -> dict[str, object]:
    input_root = merkle.region_root(payload)
    first = PositionTree()
    first.set(0, input_root)
    commitment = model.commitment
    task = {
        "model": str(model.path.resolve()),
        "model_root": _hex(commitment.model_root),
        "tile_macs": model.tile_macs,
        "input": _hex(payload),
        "program_root": _hex(node_program_root()),
        "input_root": _hex(input_root),
        "nodes_root": _hex(commitment.nodes_root),
        "node_count": commitment.node_count,
        "initial_state": _hex(first.root()),
    }
    basedir.mkdir(parents=True, exist_ok=True)
    for name in (FINAL_JSON, GOLDEN_JSON, GOLDEN_SNAPSHOT, GRAPH_VALUES):
        (basedir / name).unlink(missing_ok=True)
    shutil.rmtree(basedir / CHECKPOINTS, ignore_errors=True)
    write_sealed(basedir / GRAPH_JSON, task)
    return task


def read_graph_task(basedir: Path, warn: Callable[[str], None]) -> dict:
    """graph.json, from its copy if it is damaged (prover/task/sealed.py)."""
    return read_sealed(basedir / GRAPH_JSON, "a graph task (run `prover golden` first)", warn)


def committed_task(
    record: dict, warn: Callable[[str], None], progress: bool = False
) -> tuple[Graph, ModelCommitment]:
    """The tiled model of graph.json's task and its commitment, checked against the recorded
    modelRoot (a model file changed since is an error)."""
    model = load_model(record["model"])
    graph = task_graph(model, record["tile_macs"])
    root = bytes.fromhex(record["model_root"][2:])
    commitment = committed(Path(record["model"]), model, graph, record["tile_macs"], warn, progress, root)
    if _hex(commitment.model_root) != record["model_root"]:
        raise ProverError(f"{record['model']}: its modelRoot is no longer the one of the graph task")
    return graph, commitment


def _check_fault_node(fault_node: int | None, node_count: int) -> None:
    if fault_node is not None and not 1 <= fault_node <= node_count:
        raise ProverError(f"--fault-node {fault_node}: the model has nodes 1..{node_count}")


def run_graph(
    basedir: Path,
    fault_node: int | None = None,
    warn: Callable[[str], None] = warn_on_stderr,
    progress: bool = True,
) -> dict[str, object]:
    """Run graph.json's task natively (the numpy engine, node by node) and add its claim to
    graph.json; returns it. `fault_node` (1-based) makes a dishonest run: the nodes before it are
    taken from an honest run kept in graph.values, when there is one."""
    record = read_graph_task(basedir, warn)
    task = {name: value for name, value in record.items() if name not in CLAIM_FIELDS}
    graph, commitment = committed_task(task, warn, progress)
    _check_fault_node(fault_node, commitment.node_count)
    honest = _stored_trace(basedir, record, graph) if record.get("fault_node") is None else None
    return _run(basedir, task, graph, commitment, fault_node, None if honest is None else honest.values)


def write_graph_task_and_run(
    basedir: Path,
    model: TiledModel,
    payload: bytes,
    fault_node: int | None = None,
    known: list[np.ndarray | None] | None = None,
) -> dict[str, object]:
    """graph.json's task over `payload` and its run (a dishonest one with `fault_node`); `known`
    are tensor values of the model's graph already computed for this input (a decode's), taken for
    its tiles too (prover/model/tiling.py) instead of computing them (see `trace_graph`). A
    `fault_node` outside the tiled model is refused before anything is written."""
    _check_fault_node(fault_node, len(model.tiled.nodes))
    with merkle.hashing_threads() as pool:
        ahead = RootsAhead(pool)
        values = None
        if known is not None:
            ahead.add(model.graph, known)
            values = tiled_values(model.tiled, known)
            ahead.add(model.tiled, values)
        task = _write_task(basedir, model, payload)
        return _run(basedir, task, model.tiled, model.commitment, fault_node, values, ahead)


def _run(
    basedir: Path,
    task: dict,
    graph: Graph,
    commitment: ModelCommitment,
    fault_node: int | None,
    known: list[np.ndarray | None] | None,
    known_roots: RootsAhead | None = None,
) -> dict[str, object]:
    """Trace the task, keep the trace in graph.values and the claim (with the file's digest) in
    graph.json; returns graph.json."""
    n = commitment.node_count
    trace = trace_graph(graph, bytes.fromhex(task["input"][2:]), fault_node, known, known_roots)
    values_digest = _write_values(basedir, trace)
    run = {
        **task,
        "final_state": _hex(trace.state_hash_at(n)),
        "output": _hex(trace.output),
        "output_proof": [_hex(h) for h in trace.tree_at(n).proof(n)],
        "class": answered_class(trace.output),
        "fault_node": fault_node,
        "values_digest": values_digest,
    }
    write_sealed(basedir / GRAPH_JSON, run)
    return run


def _write_values(basedir: Path, trace: GraphTrace) -> str:
    """Keep `trace` in graph.values; returns the file's digest. It is not flushed to disk: it is
    checked against graph.json's values_digest before use and computed again when that fails."""
    digest = hashlib.sha256()
    write_atomically(basedir / GRAPH_VALUES, _chunks(trace_pieces(trace), digest.update), durable=False)
    return digest.hexdigest()


def _values_digest(trace: GraphTrace) -> str:
    digest = hashlib.sha256()
    for _ in _chunks(trace_pieces(trace), digest.update):
        pass
    return digest.hexdigest()


def _chunks(pieces: list[bytes | np.ndarray], digest: Callable[[bytearray], None]) -> Iterator[bytearray]:
    """`pieces` joined into chunks of a few MB, each given to `digest` (a hash's update) before it
    is yielded: a 7 B trace has 80,000 pieces, most of 2 KB, and a write or an update each would
    cost more than their bytes."""
    chunk = bytearray()
    for piece in pieces:
        chunk += memoryview(piece)  # (an array would take += as its own addition)
        if len(chunk) >= VALUES_CHUNK:
            digest(chunk)
            yield chunk
            chunk = bytearray()
    digest(chunk)
    yield chunk


def _stored_trace(basedir: Path, record: dict, graph: Graph) -> GraphTrace | None:
    """The trace kept in graph.values if it is the one graph.json's run recorded, else None."""
    try:
        stored = (basedir / GRAPH_VALUES).read_bytes()
    except OSError:
        return None
    if hashlib.sha256(stored).hexdigest() != record.get("values_digest"):
        return None
    return trace_of_bytes(graph, bytes.fromhex(record["input"][2:]), stored, record.get("fault_node"))


def write_graph_run(
    basedir: Path,
    model_path: Path,
    data_path: Path,
    fault_node: int | None = None,
    tile_macs: int = DEFAULT_TILE_MACS,
    progress: bool = True,
    warn: Callable[[str], None] = warn_on_stderr,
    background: str = "auto",
) -> dict[str, object]:
    """`prover graph`: the graph task and its run in one go; returns graph.json. A --fault-node
    outside the tiled model is refused before anything is written."""
    task = load_task(model_path, data_path, background)
    model = tiled_model(model_path, task.graph, tile_macs, warn, progress, fault_node)
    return write_graph_task_and_run(basedir, model, task.data, fault_node)


@dataclass(frozen=True)
class GraphRun:
    """A graph run read back: the model, its commitment and the (possibly dishonest) trace."""

    graph: Graph
    commitment: ModelCommitment
    trace: GraphTrace
    record: dict


def load_graph_run(basedir: Path, warn: Callable[[str], None] = warn_on_stderr) -> GraphRun:
    """graph.json's run, read from graph.values when that matches its recorded digest, else
    recomputed natively from the model file and the input (deterministic) and kept again; checked
    against the recorded modelRoot and claim."""
    record = read_graph_task(basedir, warn)
    if "final_state" not in record:
        raise ProverError(
            f"{basedir / GRAPH_JSON}: no run of the graph task; run `prover run --basedir {basedir}`"
        )
    graph, commitment = committed_task(record, warn)
    trace = _stored_trace(basedir, record, graph)
    if trace is None:
        trace = trace_graph(graph, bytes.fromhex(record["input"][2:]), record["fault_node"])
        if _values_digest(trace) == record.get("values_digest"):
            _write_values(basedir, trace)
        warn(f"{basedir / GRAPH_VALUES}: missing or damaged; the graph run was computed again")
    if _hex(trace.state_hash_at(commitment.node_count)) != record["final_state"]:
        raise ProverError(
            f"{basedir / GRAPH_JSON}: the graph run recomputed from the model and the input does not "
            "end in the claim's state; run `prover run` again"
        )
    return GraphRun(graph, commitment, trace, record)
