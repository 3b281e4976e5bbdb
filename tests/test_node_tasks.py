"""Node tasks of multi-phase games: the native region roots, node files, the single-node program
in the VM bit-exact with the numpy engine per node (trained MLP and LeNet-5, and a DAG touching
every int8 op), and the commitments the contract recomputes (node S0, tree roots, G_0)."""

import mmap
import os
from pathlib import Path

import numpy as np
import pytest
from contract_fixtures import Deployment, deploy
from test_guest_models import int8_convnet

from prover.errors import ProverError
from prover.model import engine
from prover.model.graph import DType, Graph, Op
from prover.model.modelfile import load_model, read_model, write_model
from prover.task import merkle
from prover.task.commitments import PositionTree, commit_model, node_leaf, tree_root
from prover.task.golden import MODEL_BASE, region_bytes, region_root, subtree_root
from prover.task.graph_trace import trace_graph
from prover.task.node import (
    activation_operands,
    node_file,
    node_image,
    node_initial_state_hash,
    node_output,
    node_program_root,
    tensor_payload,
)
from vm.hashing import keccak

REPO = Path(__file__).resolve().parent.parent
ERR_GRAPH_IO = 18


def models() -> dict[str, Graph]:
    return {
        "mlp": load_model(REPO / "models" / "mlp_int8.ggml"),
        "lenet5": load_model(REPO / "models" / "lenet5_int8.ggml"),
        "dag": read_model(int8_convnet()),
    }


def some_input(graph: Graph, seed: int = 0) -> bytes:
    tensor = graph.tensors[graph.input]
    values = np.random.default_rng(seed).integers(0, 256, tensor.count).astype(np.uint8)
    return values.astype(tensor.dtype.numpy).astype(tensor.dtype.numpy.newbyteorder(">")).tobytes()


# 32 * 1023 and 32 * 1024 (with the header leaf): a chunk of 2^10 leaves just full, one leaf over
@pytest.mark.parametrize("size", [0, 1, 31, 32, 33, 4095, 4096, 32 * 1023, 32 * 1024, 100_003])
def test_native_region_root_is_the_region_root(size: int, tmp_path: Path) -> None:
    payload = os.urandom(size)
    assert merkle.region_root(payload) == region_root(payload)
    path = tmp_path / "payload"
    path.write_bytes(payload)
    if size:
        with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, prot=mmap.PROT_READ) as mapped:
            assert merkle.region_root(mapped) == region_root(payload)  # read in place, not copied


@pytest.mark.parametrize("level", [0, 3, 9, 10, 11, 14])
def test_native_region_root_at_every_level(level: int) -> None:
    """Levels below, at and above the native code's 2^10-leaf chunks (hashed lanes at a time)."""
    payload = os.urandom(32 * ((1 << level) - 1))  # a region just full: every leaf nonzero
    assert merkle.region_root(payload, level) == subtree_root([(0, region_bytes(payload))], level)


def test_many_region_roots_in_one_call_are_each_region_root() -> None:
    """merkle.region_roots (one native call for a trace's tensors) and parallel_region_roots (a
    share per core) against the region root of each payload: empty ones, int32 arrays (their big-
    endian bytes, read in place), sizes around a chunk, in any order."""
    rng = np.random.default_rng(7)
    payloads: list[bytes | np.ndarray] = [
        os.urandom(size) for size in (0, 1, 31, 32 * 1023, 32 * 1024, 5000, 0)
    ]
    payloads += [rng.integers(-(2**31), 2**31, size, dtype=np.int64).astype(">i4") for size in (1, 777, 9000)]
    expected = [region_root(np.asarray(p).tobytes() if isinstance(p, np.ndarray) else p) for p in payloads]
    assert merkle.region_roots(payloads) == expected
    assert merkle.parallel_region_roots(payloads) == expected
    assert merkle.region_roots([]) == []
    with pytest.raises(ProverError, match="does not fit"):
        merkle.region_roots([b"", bytes(100)], level=2)


def test_native_keccak_is_keccak256() -> None:
    for _ in range(20):
        left, right = os.urandom(32), os.urandom(32)
        assert merkle.keccak_pair(left, right) == keccak(left + right)


def test_a_payload_larger_than_its_region_is_refused() -> None:
    with pytest.raises(ProverError, match="does not fit"):
        merkle.region_root(bytes(100), level=2)


@pytest.mark.parametrize("name", ["mlp", "lenet5", "dag"])
def test_each_node_in_the_vm_equals_the_engine(name: str) -> None:
    graph = models()[name]
    values = engine.activations(
        graph,
        np.frombuffer(some_input(graph), graph.tensors[graph.input].dtype.numpy.newbyteorder(">"))[None],
    )
    for index, node in enumerate(graph.nodes):
        inputs = [tensor_payload(graph.tensors[t], values[t][0]) for t in activation_operands(graph, node)]
        image = node_image(node_file(graph, index), inputs)
        image.machine.run()
        assert (image.machine.state.exited, image.machine.state.exit_code) == (1, 0), f"node {index}"
        expected = tensor_payload(graph.tensors[node.output], values[node.output][0])
        assert node_output(image.machine) == expected, f"{name} node {index} ({node.op.name})"


def test_a_node_with_two_activation_inputs_binds_them_in_operand_order() -> None:
    graph = models()["dag"]
    index = next(i for i, node in enumerate(graph.nodes) if node.op == Op.ADD)
    node = graph.nodes[index]
    assert activation_operands(graph, node) == node.inputs[:2]
    trace = trace_graph(graph, some_input(graph))
    a, b = trace.node_inputs(index + 1)
    swapped = node_image(node_file(graph, index), [b, a])
    swapped.machine.run()
    straight = node_image(node_file(graph, index), [a, b])
    straight.machine.run()
    assert node_output(straight.machine) == trace.payload(node.output)
    assert node_output(swapped.machine) != node_output(straight.machine)  # the order is meaningful


def test_the_node_program_refuses_a_file_of_two_nodes() -> None:
    graph = models()["mlp"]
    image = node_image(node_file(graph, 0), [some_input(graph)])
    image.machine.memory.write(MODEL_BASE, region_bytes(write_model(graph)))
    image.machine.run()
    assert (image.machine.state.exited, image.machine.state.exit_code) == (1, ERR_GRAPH_IO)


def test_a_node_without_activation_inputs_cannot_be_a_node_task() -> None:
    graph = Graph()
    w = graph.add_tensor("w", DType.I8, (4,), np.arange(4))
    graph.input = graph.add_tensor("x", DType.I8, (4,))
    graph.output = graph.add_node(Op.RELU, [w], "y", DType.I8, (4,))
    with pytest.raises(ProverError, match="no activation input"):
        node_file(graph, 0)


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return deploy(k=4)


def test_the_contract_derives_the_node_tasks_s0(deployment: Deployment) -> None:
    graph = models()["dag"]
    trace = trace_graph(graph, some_input(graph))
    for index in range(len(graph.nodes)):
        image = node_image(node_file(graph, index), trace.node_inputs(index + 1))
        expected = node_initial_state_hash(image.program_root, image.node_root, list(image.input_roots))
        assert image.initial_hash == expected
        onchain = deployment.game.node_initial_state_hash(
            image.program_root, image.node_root, list(image.input_roots)
        )
        assert onchain == expected
    assert image.program_root == node_program_root()


def test_tree_roots_and_the_graph_tasks_initial_state_agree_with_the_contract(deployment: Deployment) -> None:
    graph = models()["mlp"]
    trace = trace_graph(graph, some_input(graph))
    commitment = commit_model(graph)
    tree = trace.tree_at(len(graph.nodes))
    for position in range(len(graph.nodes) + 1):
        proof = tree.proof(position)
        assert tree_root(trace.commitments[position], position, proof) == trace.states[-1]
        assert deployment.game.tree_root(trace.commitments[position], position, proof) == trace.states[-1]
    node = 2
    leaf = node_leaf(commitment.node_roots[node - 1], list(commitment.positions[node - 1]))
    assert tree_root(leaf, node, commitment.node_proof(node)) == commitment.nodes_root
    task = deployment.game.create_graph_task(
        node_program_root(),
        trace.commitments[0],
        commitment.nodes_root,
        len(graph.nodes),
        sender=deployment.submitter,
    )
    assert bytes(deployment.game.call("tasks", task)) == trace.states[0]
    assert deployment.game.task_of(node_program_root(), trace.commitments[0], commitment.model_root) == task


def test_position_tree_updates_match_a_fresh_tree() -> None:
    leaves = {position: os.urandom(32) for position in (0, 1, 2, 5, 1000, (1 << 20) - 1)}
    incremental, fresh = PositionTree(), PositionTree()
    for position, leaf in leaves.items():
        incremental.set(position, os.urandom(32))
        incremental.set(position, leaf)
    for position, leaf in reversed(leaves.items()):
        fresh.set(position, leaf)
    assert incremental.root() == fresh.root()


@pytest.mark.parametrize("count", [1, 2, 3, 8, 9, 17, 1000])
def test_a_natively_filled_tree_and_its_prefix_roots_are_those_of_leaves_set_one_by_one(count: int) -> None:
    leaves = [os.urandom(32) for _ in range(count)]
    tree, prefix_roots = PositionTree.filled(leaves, prefix_roots=True)
    one_by_one, expected = PositionTree(), []
    for position, leaf in enumerate(leaves):
        one_by_one.set(position, leaf)
        expected.append(one_by_one.root())
    assert prefix_roots == expected
    assert tree.root() == one_by_one.root()
    assert all(tree.proof(p) == one_by_one.proof(p) for p in {0, count // 2, count - 1, count, 1 << 19})


def test_a_full_tree_fills_natively_and_more_leaves_are_refused() -> None:
    assert PositionTree.filled([bytes(32)] * 3)[0].root() == PositionTree().root()
    with pytest.raises(ProverError, match="do not fit"):
        PositionTree.filled([bytes(32)] * ((1 << 20) + 1))
    with pytest.raises(ProverError, match="32-byte leaves"):
        merkle.position_tree(b"", 20, prefix_roots=False)


def test_a_dishonest_graph_trace_differs_from_its_fault_node_on() -> None:
    graph = models()["lenet5"]
    honest = trace_graph(graph, some_input(graph))
    faulty = trace_graph(graph, some_input(graph), fault_node=5)
    assert honest.states[:5] == faulty.states[:5]
    assert all(a != b for a, b in zip(honest.states[5:], faulty.states[5:], strict=True))
