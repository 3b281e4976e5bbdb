"""Node tasks of multi-phase games (docs/memory-map.md, "Node tasks"): one node of a model run by
the single-node program (prover/task/guest/node.elf) from its activation inputs.

    node_graph(graph, i) / node_file(graph, i)   the node file: node i alone with its weights
    activation_operands(graph, node)             its activation inputs, in binding order
    node_initial_state_hash(program, node, ins)  S0, as DisputeGame.nodeInitialStateHash
    node_image(node_file, inputs)                the initial machine, checked against that S0
    node_output(final machine)                   the output tensor's bytes from the output region
"""

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np

from prover.errors import ProverError
from prover.model.graph import Graph, Node, Tensor
from prover.model.modelfile import write_model
from prover.task import merkle
from prover.task.golden import (
    MODEL_BASE,
    OUTPUT_BASE,
    REGION_HEADER,
    SLOT_COUNT,
    SLOT_LEVEL,
    SLOT_SIZE,
    ZERO_HASHES,
    fresh_machine,
    fresh_state_hash,
    program_root,
    region_bytes,
    top_tree_root,
)
from prover.task.guest.build import NODE_ELF
from vm import Machine

FIRST_EXTRA_INPUT_SLOT = 8
# Slot 1, then slots 8..15: where the node's activation inputs go, in binding order.
NODE_INPUT_SLOTS = (1, *range(FIRST_EXTRA_INPUT_SLOT, SLOT_COUNT))
MAX_NODE_INPUTS = len(NODE_INPUT_SLOTS)


def activation_operands(graph: Graph, node: Node) -> list[int]:
    """The node's operands without stored data, in operand order, each once: the order in which
    the single-node program binds them to its input regions."""
    operands: list[int] = []
    for t in node.inputs:
        if t is not None and graph.tensors[t].data is None and t not in operands:
            operands.append(t)
    return operands


def node_graph(graph: Graph, index: int) -> Graph:
    """Node `index` of `graph` alone: its operands in operand order (each once), then its output;
    the first activation operand is the input tensor; no metadata."""
    node = graph.nodes[index]
    where = f"node {index} ({node.op.name})"
    activations = activation_operands(graph, node)
    if not activations:
        raise ProverError(f"{where} has no activation input: it cannot be a node task")
    if len(activations) > MAX_NODE_INPUTS:
        raise ProverError(
            f"{where} has {len(activations)} activation inputs; a node task takes {MAX_NODE_INPUTS}"
        )
    order: list[int] = []
    for t in node.inputs:
        if t is not None and t not in order:
            order.append(t)
    position = {t: i for i, t in enumerate(order)}
    tensors: list[Tensor] = [replace(graph.tensors[t]) for t in order]
    tensors.append(replace(graph.tensors[node.output]))
    single = Node(
        node.op, [None if t is None else position[t] for t in node.inputs], len(order), dict(node.attrs)
    )
    return Graph(tensors=tensors, nodes=[single], input=position[activations[0]], output=len(order))


def node_file(graph: Graph, index: int) -> bytes:
    """The canonical node file of node `index` (docs/memory-map.md, "Node files")."""
    return write_model(node_graph(graph, index), single_node=True)


def tensor_payload(tensor: Tensor, value: np.ndarray) -> bytes:
    """A tensor's elements as the guest holds them in memory: its dtype, big-endian, dims[0]
    fastest (a row-major numpy array of shape dims[::-1], or its flat (count,) form)."""
    return payload_array(tensor, value).tobytes()


def payload_array(tensor: Tensor, value: np.ndarray) -> np.ndarray:
    """`tensor_payload`'s bytes as a contiguous array, `value` itself when it is one already (an
    int8 tensor's: hashed in place, not copied)."""
    return np.ascontiguousarray(value, dtype=tensor.dtype.numpy.newbyteorder(">"))


def node_slot_roots(program_root: bytes, node_root: bytes, input_roots: list[bytes]) -> list[bytes]:
    if not 1 <= len(input_roots) <= MAX_NODE_INPUTS:
        raise ProverError(f"a node task takes 1 to {MAX_NODE_INPUTS} inputs, not {len(input_roots)}")
    slots = [ZERO_HASHES[SLOT_LEVEL]] * SLOT_COUNT
    slots[0], slots[MODEL_BASE // SLOT_SIZE] = program_root, node_root
    for slot, root in zip(NODE_INPUT_SLOTS, input_roots, strict=False):
        slots[slot] = root
    return slots


def node_initial_state_hash(program_root: bytes, node_root: bytes, input_roots: list[bytes]) -> bytes:
    """S0 of a node task from its commitments (DisputeGame.nodeInitialStateHash)."""
    return fresh_state_hash(top_tree_root(node_slot_roots(program_root, node_root, input_roots)))


@cache
def node_program_root(program: Path = NODE_ELF) -> bytes:
    """The root of slot 0 holding the single-node program's segments."""
    return program_root(program)


@dataclass(frozen=True)
class NodeImage:
    """A node task's initial machine and the commitments the contract derives its S0 from."""

    machine: Machine
    program_root: bytes
    node_root: bytes
    input_roots: tuple[bytes, ...]
    initial_hash: bytes


def node_image(node: bytes, inputs: list[bytes], program: Path = NODE_ELF) -> NodeImage:
    """The single-node program, the node file `node` and the activation inputs (payloads, in
    binding order) laid out in a fresh machine; its state hash is checked against
    node_initial_state_hash of the natively computed roots."""
    machine = fresh_machine(program)
    machine.memory.write(MODEL_BASE, region_bytes(node))
    for slot, payload in zip(NODE_INPUT_SLOTS, inputs, strict=False):
        machine.memory.write(slot * SLOT_SIZE, region_bytes(payload))
    program_root = node_program_root(program)
    node_root = merkle.region_root(node)
    input_roots = tuple(merkle.region_root(payload) for payload in inputs)
    initial_hash = node_initial_state_hash(program_root, node_root, list(input_roots))
    if machine.state_hash() != initial_hash:
        raise RuntimeError("the node task's initial machine differs from docs/memory-map.md's S0")
    return NodeImage(machine, program_root, node_root, input_roots, initial_hash)


def node_output(machine: Machine) -> bytes:
    """The output region's payload (the node's output tensor bytes) of an exited node task."""
    length = int.from_bytes(machine.memory.read(OUTPUT_BASE, 4), "big")
    return machine.memory.read(OUTPUT_BASE + REGION_HEADER, length)
