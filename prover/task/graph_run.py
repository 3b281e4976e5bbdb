"""A graph run (`prover graph`): the model's commitment and the native graph trace of one input,
written to BASEDIR/graph.json, from which the chain commands play multi-phase games
(docs/dispute-game.md, "Multi-phase games"). A base directory holds one kind of run: `prover graph`
removes a single-phase golden image and run, `prover golden` removes graph.json.

graph.json: the model file (absolute path), the tile size, the tiled model's modelRoot, the input
payload, the graph task's
roots (single-node program, input, model), the nodes root and count, the claim (G_n, the output
tensor's bytes and its 20-sibling proof at position n, the class), and a dishonest party's
`fault_node` (its trace corrupts that node's output) or null.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from prover.errors import ProverError
from prover.model.graph import Graph
from prover.model.modelfile import load_model, read_model
from prover.model.tiling import DEFAULT_TILE_MACS, tile_graph
from prover.task.basedir import (
    CHECKPOINTS,
    FINAL_JSON,
    GOLDEN_JSON,
    GOLDEN_SNAPSHOT,
    GRAPH_JSON,
    read_json,
    write_json,
)
from prover.task.commitments import ModelCommitment, check_graph_task, commit_model
from prover.task.graph_trace import GraphTrace, trace_graph
from prover.task.node import node_program_root
from prover.task.run import load_task


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def commit_with_progress(graph: Graph, progress: bool) -> ModelCommitment:
    total = sum(t.nbytes for t in graph.tensors if t.data is not None)
    with tqdm(
        desc="commit", total=total, unit="B", unit_scale=True, disable=not progress, leave=False
    ) as bar:
        return commit_model(graph, progress=bar.update)


def write_graph_run(
    basedir: Path,
    model_path: Path,
    data_path: Path,
    fault_node: int | None = None,
    tile_macs: int = DEFAULT_TILE_MACS,
    progress: bool = True,
) -> dict[str, object]:
    """Tile the model (LINEARs over `tile_macs` multiply-accumulates), commit to it per node, trace
    the graph on the input natively, write graph.json; returns it."""
    model, payload, _ = load_task(model_path, data_path)
    graph = tile_graph(read_model(model), tile_macs)
    check_graph_task(graph)
    if fault_node is not None and not 1 <= fault_node <= len(graph.nodes):
        raise ProverError(f"--fault-node {fault_node}: the model has nodes 1..{len(graph.nodes)}")
    commitment = commit_with_progress(graph, progress)
    trace = trace_graph(graph, payload, fault_node)
    n = commitment.node_count
    output = trace.output
    values = trace.values[graph.output][0]
    run = {
        "model": str(model_path.resolve()),
        "model_root": _hex(commitment.model_root),
        "tile_macs": tile_macs,
        "input": _hex(payload),
        "program_root": _hex(node_program_root()),
        "input_root": _hex(trace.commitments[0]),
        "nodes_root": _hex(commitment.nodes_root),
        "node_count": n,
        "final_state": _hex(trace.state_hash_at(n)),
        "output": _hex(output),
        "output_proof": [_hex(h) for h in trace.tree_at(n).proof(n)],
        "class": int(np.argmax(values)),
        "fault_node": fault_node,
    }
    basedir.mkdir(parents=True, exist_ok=True)
    for name in (FINAL_JSON, GOLDEN_JSON, GOLDEN_SNAPSHOT):
        (basedir / name).unlink(missing_ok=True)
    shutil.rmtree(basedir / CHECKPOINTS, ignore_errors=True)
    write_json(basedir / GRAPH_JSON, run)
    return run


@dataclass(frozen=True)
class GraphRun:
    """A graph run read back: the model, its commitment and the (possibly dishonest) trace."""

    graph: Graph
    commitment: ModelCommitment
    trace: GraphTrace
    record: dict


def load_graph_run(basedir: Path) -> GraphRun:
    """graph.json's run, recomputed natively from the model file and the input (deterministic),
    and checked against the recorded modelRoot and claim."""
    record = read_json(basedir / GRAPH_JSON, "a graph run (run `prover graph` first)")
    graph = tile_graph(load_model(record["model"]), record["tile_macs"])
    commitment = commit_model(graph)
    if _hex(commitment.model_root) != record["model_root"]:
        raise ProverError(f"{record['model']}: its modelRoot is no longer the one of {basedir / GRAPH_JSON}")
    trace = trace_graph(graph, bytes.fromhex(record["input"][2:]), record["fault_node"])
    if _hex(trace.state_hash_at(commitment.node_count)) != record["final_state"]:
        raise RuntimeError(f"{basedir / GRAPH_JSON}: the recomputed graph trace ends elsewhere")
    return GraphRun(graph, commitment, trace, record)
