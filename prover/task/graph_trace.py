"""The graph phase of a multi-phase game, computed natively (docs/dispute-game.md, "Multi-phase
games"): every node's output with the numpy engine, its commitment, and the tensor-tree states
G_0 .. G_n that the two sides dissect.

`GraphTrace.state_hash_at(i)` is G_i, so prover.game.agent's bisect and select logic plays the
graph phase with it as it plays the VM phase with a VM trace.
"""

from concurrent.futures import Executor, Future
from dataclasses import dataclass

import numpy as np

from prover.errors import ProverError
from prover.model import engine
from prover.model.graph import Graph, Node, Op
from prover.task import merkle
from prover.task.commitments import PositionTree, check_graph_task
from prover.task.node import activation_operands, payload_array, tensor_payload

# Ops whose output is their inputs' elements moved: a kept trace leaves their outputs out and
# reading it moves them again (the CONCATs joining a 7 B claim's tiles are half of its bytes).
MOVING_OPS = frozenset({Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.CONCAT})


@dataclass
class GraphTrace:
    graph: Graph
    values: list[np.ndarray | None]  # per tensor, (1, count)
    commitments: list[bytes]  # per position 0..n
    states: list[bytes]  # G_0 .. G_n
    final: PositionTree | None = None  # G_n's tree, when the trace was computed here (not read)

    @property
    def node_count(self) -> int:
        return len(self.graph.nodes)

    def state_hash_at(self, node: int) -> bytes:
        return self.states[min(node, self.node_count)]

    def tree_at(self, node: int) -> PositionTree:
        """The tensor tree holding positions 0..node (G_node's tree)."""
        if node >= self.node_count and self.final is not None:
            return self.final  # the claim's output proof: 20 hashes per node not redone
        return PositionTree.filled(self.commitments[: node + 1])[0]

    def payload(self, tensor: int) -> bytes:
        value = self.values[tensor]
        if value is None:
            raise ProverError(f"tensor {tensor} is stored data, not an activation")
        return tensor_payload(self.graph.tensors[tensor], value[0])

    def node_inputs(self, node: int) -> list[bytes]:
        """Node `node`'s (1-based) activation inputs' payloads, in binding order."""
        return [self.payload(t) for t in activation_operands(self.graph, self.graph.nodes[node - 1])]

    @property
    def output(self) -> bytes:
        """The graph output tensor's bytes (a graph claim's output)."""
        return self.payload(self.graph.output)


class RootsAhead:
    """Region roots of node outputs hashed on `pool` while the caller goes on (tiles and commits the
    model, writes the task: a claim's overhead otherwise waits for its hashing), for `trace_graph`
    to take: `add` the values of a graph's node outputs known before the trace (a decode's), the
    model's first, then its tiles' (a tiled graph keeps the original tensors' indices). Hashed in
    batches of about a megabyte: a tiled 7 B model has 26,000 outputs, and a task per output would
    cost more than hashing the small ones."""

    BATCH_BYTES = 1 << 20

    def __init__(self, pool: Executor) -> None:
        self._pool = pool
        self._where: dict[int, tuple[Future[list[bytes]], int]] = {}

    def add(self, graph: Graph, values: list[np.ndarray | None]) -> None:
        batch: list[int] = []
        size = 0
        for node in graph.nodes:
            t = node.output
            if t in self._where or t >= len(values) or values[t] is None:  # an output is one node's
                continue
            batch.append(t)
            size += graph.tensors[t].nbytes
            if size >= self.BATCH_BYTES:
                self._submit(graph, values, batch)
                batch, size = [], 0
        if batch:
            self._submit(graph, values, batch)

    def _submit(self, graph: Graph, values: list[np.ndarray | None], batch: list[int]) -> None:
        payloads = [payload_array(graph.tensors[t], values[t][0]) for t in batch]
        future = self._pool.submit(merkle.region_roots, payloads)
        for index, t in enumerate(batch):
            self._where[t] = (future, index)

    def __contains__(self, tensor: int) -> bool:
        return tensor in self._where

    def __getitem__(self, tensor: int) -> bytes:
        future, index = self._where[tensor]
        return future.result()[index]


def trace_graph(
    graph: Graph,
    input_payload: bytes,
    fault_node: int | None = None,
    known: list[np.ndarray | None] | None = None,
    known_roots: RootsAhead | None = None,
) -> GraphTrace:
    """Run `graph` natively on one input (its payload: the input tensor's bytes, big-endian) and
    commit to every tensor. `fault_node` (1-based) makes a dishonest trace: that node's output has
    its lowest bit flipped, and later nodes compute from the corrupted value. `known`: values per
    tensor, (1, count), already computed for this input (a decode's, an earlier run's), taken
    instead of computing the nodes before the fault node that have one; `known_roots`: the region
    roots of some of them, hashed ahead, taken for those nodes too."""
    check_graph_task(graph)
    tensor = graph.tensors[graph.input]
    if len(input_payload) != tensor.nbytes:
        raise ProverError(
            f"input of {len(input_payload)} bytes; the model's input tensor has {tensor.nbytes}"
        )
    values: list[np.ndarray | None] = [None] * len(graph.tensors)
    values[graph.input] = np.frombuffer(input_payload, tensor.dtype.numpy.newbyteorder(">")).reshape(1, -1)
    hashed: set[int] = set()  # the positions whose roots `known_roots` has
    for index, node in enumerate(graph.nodes, start=1):
        given = None if known is None or node.output >= len(known) else known[node.output]
        if given is not None and (fault_node is None or index < fault_node):
            value = given
            if known_roots is not None and node.output in known_roots:
                hashed.add(index)
        else:
            value = engine.node_value(graph, node, values)
        values[node.output] = _corrupted(value) if index == fault_node else value
    rest = [i for i in range(1, len(graph.nodes) + 1) if i not in hashed]
    roots = merkle.parallel_region_roots(
        [input_payload]
        + [
            payload_array(graph.tensors[graph.nodes[i - 1].output], values[graph.nodes[i - 1].output][0])
            for i in rest
        ]
    )
    commitments = [roots[0]] + [b""] * len(graph.nodes)
    for i, root in zip(rest, roots[1:], strict=True):
        commitments[i] = root
    for i in hashed:
        commitments[i] = known_roots[graph.nodes[i - 1].output]  # type: ignore[index]
    tree, states = PositionTree.filled(commitments, prefix_roots=True)
    return GraphTrace(graph, values, commitments, states, tree)


def _corrupted(value: np.ndarray) -> np.ndarray:
    """A fault node's output: its lowest bit flipped."""
    value = value.copy()
    value.view(np.uint8).reshape(-1)[0] ^= 1
    return value


def _kept(node: Node) -> bool:
    return node.op not in MOVING_OPS


def trace_pieces(trace: GraphTrace) -> list[bytes | np.ndarray]:
    """The trace as a party keeps it (BASEDIR/graph.values, prover/task/graph_run.py), in pieces
    (a 7 B claim's are 110 MB, never joined into one): every node's output in its dtype's native
    bytes, in node order, but those of MOVING_OPS, then the commitments and the states of positions
    0..n, 32 bytes each. The input is not in it: graph.json holds its payload."""
    outputs = [
        np.ascontiguousarray(trace.values[node.output][0]).view(np.uint8)
        for node in trace.graph.nodes
        if _kept(node)
    ]
    return [*outputs, *trace.commitments, *trace.states]


def trace_of_bytes(
    graph: Graph, input_payload: bytes, data: bytes, fault_node: int | None = None
) -> GraphTrace:
    """The trace `trace_pieces` wrote for `graph` on this input (a dishonest one's with its
    `fault_node`); a ProverError if `data` is not of its size."""
    size = sum(graph.tensors[node.output].nbytes for node in graph.nodes if _kept(node))
    hashes = 32 * (len(graph.nodes) + 1)
    if len(data) != size + 2 * hashes:
        raise ProverError(f"{len(data)} bytes are not the stored trace of this graph ({size + 2 * hashes})")
    tensor = graph.tensors[graph.input]
    values: list[np.ndarray | None] = [None] * len(graph.tensors)
    values[graph.input] = np.frombuffer(input_payload, tensor.dtype.numpy.newbyteorder(">")).reshape(1, -1)
    offset = 0
    for index, node in enumerate(graph.nodes, start=1):
        output = graph.tensors[node.output]
        if _kept(node):
            values[node.output] = np.frombuffer(data, output.dtype.numpy, output.count, offset).reshape(1, -1)
            offset += output.nbytes
        else:
            value = engine.node_value(graph, node, values)
            values[node.output] = _corrupted(value) if index == fault_node else value
    commitments = [data[offset + i : offset + i + 32] for i in range(0, hashes, 32)]
    states = [data[offset + hashes + i : offset + hashes + i + 32] for i in range(0, hashes, 32)]
    return GraphTrace(graph, values, commitments, states)
