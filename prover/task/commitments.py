"""The commitments of graph tasks (docs/memory-map.md, "Node files and the model's commitment",
"Tensor tree"): depth-20 position trees, node leaves, and a model's nodes tree and modelRoot.

    tree = PositionTree(); tree.set(position, leaf); tree.root(); tree.proof(position)
    tree_root(leaf, position, siblings)        what DisputeGame.treeRoot recomputes
    task_graph(model, tile_macs) -> Graph      the model tiled and answered: what a task commits to
    commit_model(graph) -> ModelCommitment     every node file's root (native hashing), the nodes
                                               tree over their leaves, modelRoot
Positions: 0 is the graph input, i (1..n) is node i = graph.nodes[i - 1] and its output tensor.
"""

import struct
from collections.abc import Callable
from dataclasses import dataclass

from prover.errors import ProverError
from prover.model.answer import with_answer
from prover.model.graph import DType, Graph, Op
from prover.model.tiling import DEFAULT_TILE_MACS, tile_graph
from prover.task import merkle
from prover.task.node import activation_operands, node_file
from vm.hashing import ZERO_HASHES, keccak

TREE_DEPTH = 20
MAX_NODES = (1 << TREE_DEPTH) - 1  # positions 1..n with n < 2^20


class PositionTree:
    """A sparse binary Merkle tree of depth 20 (zero leaves empty, node = keccak(left || right)),
    maintained incrementally: setting a leaf rehashes its path (20 hashes)."""

    def __init__(self) -> None:
        self._levels: list[dict[int, bytes]] = [{} for _ in range(TREE_DEPTH + 1)]

    def set(self, position: int, leaf: bytes) -> None:
        if not 0 <= position < 1 << TREE_DEPTH:
            raise ProverError(f"position {position} is outside the tree (0 .. 2^{TREE_DEPTH} - 1)")
        node = leaf
        for level in range(TREE_DEPTH + 1):
            self._levels[level][position] = node
            if level == TREE_DEPTH:
                break
            sibling = self._node(level, position ^ 1)
            node = keccak(sibling + node) if position & 1 else keccak(node + sibling)
            position >>= 1

    @classmethod
    def filled(cls, leaves: list[bytes], prefix_roots: bool = False) -> tuple["PositionTree", list[bytes]]:
        """The tree holding `leaves` at positions 0, 1, ... hashed natively (what setting them one
        by one gives), and with `prefix_roots` the root of the tree holding only leaves 0..i, for
        each i (a graph trace's states G_i; else [])."""
        if len(leaves) > 1 << TREE_DEPTH:
            raise ProverError(f"{len(leaves)} leaves do not fit the tree (2^{TREE_DEPTH})")
        levels, states = merkle.position_tree(b"".join(leaves), TREE_DEPTH, prefix_roots)
        tree = cls()
        for level, data in enumerate(levels):
            tree._levels[level] = {i // 32: data[i : i + 32] for i in range(0, len(data), 32)}
        return tree, [states[i : i + 32] for i in range(0, len(states), 32)]

    def _node(self, level: int, index: int) -> bytes:
        return self._levels[level].get(index, ZERO_HASHES[level])

    def root(self) -> bytes:
        return self._node(TREE_DEPTH, 0)

    def proof(self, position: int) -> list[bytes]:
        """The 20 siblings of `position`, bottom-up."""
        siblings = []
        for level in range(TREE_DEPTH):
            siblings.append(self._node(level, position ^ 1))
            position >>= 1
        return siblings


def tree_root(leaf: bytes, position: int, siblings: list[bytes]) -> bytes:
    """The root a leaf and its siblings lead to (DisputeGame.treeRoot)."""
    if len(siblings) != TREE_DEPTH:
        raise ProverError(f"a tree proof has {TREE_DEPTH} siblings, not {len(siblings)}")
    node = leaf
    for sibling in siblings:
        node = keccak(sibling + node) if position & 1 else keccak(node + sibling)
        position >>= 1
    return node


def node_leaf(node_root: bytes, positions: list[int]) -> bytes:
    """keccak256(nodeRoot || positions as 32-byte big-endian words)."""
    return keccak(node_root + b"".join(p.to_bytes(32, "big") for p in positions))


def model_root(nodes_root: bytes, node_count: int) -> bytes:
    """A graph task's modelRoot: keccak256(nodesRoot || u64 n)."""
    return keccak(nodes_root + struct.pack(">Q", node_count))


def producer_positions(graph: Graph) -> dict[int, int]:
    """Each computed tensor's tensor-tree position: 0 for the graph input, i for node i's output."""
    producers = {node.output: i + 1 for i, node in enumerate(graph.nodes)}
    producers[graph.input] = 0
    return producers


def input_positions(graph: Graph, index: int, producers: dict[int, int] | None = None) -> list[int]:
    """The tensor-tree positions of node `index`'s activation inputs, in binding order
    (`producers`: producer_positions(graph), when called for many nodes)."""
    producers = producer_positions(graph) if producers is None else producers
    return [producers[t] for t in activation_operands(graph, graph.nodes[index])]


def check_graph_task(graph: Graph) -> None:
    """A graph fit for a graph task: int8-exact, output last, within the tree (ProverError)."""
    if not graph.nodes or len(graph.nodes) > MAX_NODES:
        raise ProverError(f"a graph task has 1 to {MAX_NODES} nodes, not {len(graph.nodes)}")
    if graph.output != graph.nodes[-1].output:
        raise ProverError("a graph task's output must be its last node's output")
    if any(tensor.dtype == DType.F32 for tensor in graph.tensors):
        raise ProverError("f32 models are not multi-phase: numpy's f32 is not bit-exact with the guest's")
    if graph.tensors[graph.output].dtype != DType.I8 and graph.nodes[-1].op not in (Op.ANSWER, Op.GREEDY):
        raise ProverError(
            "a graph task's output must be int8 (its answer: the class, then the output's bytes)"
        )


def task_graph(graph: Graph, tile_macs: int = DEFAULT_TILE_MACS) -> Graph:
    """The graph a graph task commits to: the model tiled (prover/model/tiling.py), then its
    ANSWER node (prover/model/answer.py). Both sides must build it alike: it is the task's model."""
    check_graph_task(graph)
    return with_answer(tile_graph(graph, tile_macs))


@dataclass(frozen=True)
class ModelCommitment:
    """Node i's (1-based) root, input positions and leaf; the nodes tree and modelRoot."""

    node_roots: tuple[bytes, ...]  # index i - 1 for node i
    positions: tuple[tuple[int, ...], ...]
    nodes_tree: PositionTree
    model_root: bytes

    @property
    def node_count(self) -> int:
        return len(self.node_roots)

    @property
    def nodes_root(self) -> bytes:
        return self.nodes_tree.root()

    def node_proof(self, node: int) -> list[bytes]:
        return self.nodes_tree.proof(node)


def commit_model(graph: Graph, progress: Callable[[int], None] | None = None) -> ModelCommitment:
    """Every node file's region root (native hashing), each node's leaf at its position in the
    nodes tree, and the model root. `progress(bytes)` is called per node with its file's size."""
    check_graph_task(graph)
    roots, positions = [], []
    producers = producer_positions(graph)
    for index in range(len(graph.nodes)):
        data = node_file(graph, index)
        roots.append(merkle.region_root(data))
        positions.append(tuple(input_positions(graph, index, producers)))
        if progress is not None:
            progress(len(data))
    return model_commitment(tuple(roots), tuple(positions))


def model_commitment(roots: tuple[bytes, ...], positions: tuple[tuple[int, ...], ...]) -> ModelCommitment:
    """The commitment of a model whose node i has root roots[i - 1] and inputs positions[i - 1]:
    the nodes tree of their leaves (position 0 empty) and its modelRoot."""
    leaves = [node_leaf(root, list(inputs)) for root, inputs in zip(roots, positions, strict=True)]
    tree, _ = PositionTree.filled([bytes(32), *leaves])
    return ModelCommitment(roots, positions, tree, model_root(tree.root(), len(roots)))
