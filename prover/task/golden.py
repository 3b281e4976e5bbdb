"""The golden image of an inference task (docs/memory-map.md): the guest program, the input and the
model laid out in VM memory, and the initial state hash S0.

S0 depends only on the three region roots, so a contract can recompute it from the commitments:
`initial_state_hash(program_root, input_root, model_root)` below is that function, written out
from the specification rather than taken from the machine, and `build_golden` checks that the
machine's actual state hash equals it.
"""

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from prover.errors import ProverError
from prover.task.guest.build import GUEST_ELF
from vm import Machine
from vm.hashing import LEAF_SIZE, ZERO_HASHES, keccak

SLOT_BITS = 28  # each of the 16 slots is 2^28 bytes: one subtree at level 23 of the memory tree
SLOT_SIZE = 1 << SLOT_BITS
SLOT_LEVEL = SLOT_BITS - 5  # 32-byte leaves are level 0
SLOT_COUNT = 16
TOP_LEVELS = 4  # the "top tree" over the 16 slot roots
REGION_HEADER = 32  # a data region starts with [u32 length][28 zero bytes]

PROGRAM_BASE = 0x00000000
INPUT_BASE = 0x10000000
MODEL_BASE = 0x20000000
OUTPUT_BASE = 0x30000000
ENTRY = 0x00400000
HEAP_START = 0x40000000
STACK_POINTER = 0x7FFFD000
SP_REGISTER = 29
MAX_PAYLOAD = SLOT_SIZE - REGION_HEADER


def region_bytes(payload: bytes) -> bytes:
    """A data region's content from its base: the header leaf, then the payload."""
    if len(payload) > MAX_PAYLOAD:
        raise ProverError(f"payload of {len(payload)} bytes does not fit a {SLOT_SIZE >> 20} MiB region")
    return len(payload).to_bytes(4, "big") + bytes(REGION_HEADER - 4) + payload


def subtree_root(chunks: Iterable[tuple[int, bytes]], level: int) -> bytes:
    """The Merkle root of a subtree of 2^level leaves holding `chunks` ((byte offset, bytes) pairs,
    offsets relative to the subtree's first byte) and zeros elsewhere. Only touched leaves are hashed."""
    leaves: dict[int, bytearray] = {}
    for offset, data in chunks:
        for position in range(offset - offset % LEAF_SIZE, offset + len(data), LEAF_SIZE):
            leaf = leaves.setdefault(position // LEAF_SIZE, bytearray(LEAF_SIZE))
            start, end = max(position, offset), min(position + LEAF_SIZE, offset + len(data))
            leaf[start - position : end - position] = data[start - offset : end - offset]
    nodes: dict[int, bytes] = {index: bytes(leaf) for index, leaf in leaves.items()}
    for height in range(level):
        zero = ZERO_HASHES[height]
        nodes = {
            parent: keccak(nodes.get(2 * parent, zero) + nodes.get(2 * parent + 1, zero))
            for parent in {index >> 1 for index in nodes}
        }
    return nodes.get(0, ZERO_HASHES[level])


def region_root(payload: bytes) -> bytes:
    """The root (level 23) of a data region holding `payload`: what a contract recomputes to check a
    claimed output against the top-tree proof of slot 3."""
    return subtree_root([(0, region_bytes(payload))], SLOT_LEVEL)


def top_tree_root(slot_roots: list[bytes]) -> bytes:
    """The memory root from the 16 slot roots: pairs hashed upward four times."""
    if len(slot_roots) != SLOT_COUNT:
        raise ValueError(f"expected {SLOT_COUNT} slot roots, got {len(slot_roots)}")
    level = list(slot_roots)
    while len(level) > 1:
        level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def initial_state_hash(program_root: bytes, input_root: bytes, model_root: bytes) -> bytes:
    """S0: keccak256 of the 226-byte state encoding (docs/machine.md) of a fresh task, whose memory
    holds the program, input and model regions in slots 0, 1, 2 and zeros elsewhere, at pc = entry
    with $sp set and the heap at its start. A contract recomputes it from the three roots."""
    zero_slot = ZERO_HASHES[SLOT_LEVEL]
    return fresh_state_hash(
        top_tree_root([program_root, input_root, model_root] + [zero_slot] * (SLOT_COUNT - 3))
    )


def fresh_state_hash(mem_root: bytes) -> bytes:
    """The state hash of a fresh machine over `mem_root`: pc at the entry, $sp set, the heap at
    its start, every other field zero (inference tasks and node tasks alike)."""
    registers = [0] * 32
    registers[SP_REGISTER] = STACK_POINTER
    encoding = (
        mem_root
        + bytes(32)  # preimageKey
        + struct.pack(">IIIIII", 0, ENTRY, ENTRY + 4, 0, 0, HEAP_START)  # preimageOffset pc nextPC lo hi heap
        + struct.pack(">BBQ", 0, 0, 0)  # exitCode exited step
        + struct.pack(">32I", *registers)
    )
    return keccak(encoding)


def verify_output_proof(output_payload: bytes, siblings: list[bytes], mem_root: bytes) -> bool:
    """Whether `output_payload` is slot 3's content under `mem_root`, given slot 3's four top-tree
    siblings bottom-up (slot 2; slots 0-1; slots 4-7; slots 8-15)."""
    node = region_root(output_payload)
    index = OUTPUT_BASE >> SLOT_BITS
    for sibling in siblings:
        node = keccak(sibling + node) if index & 1 else keccak(node + sibling)
        index >>= 1
    return len(siblings) == TOP_LEVELS and node == mem_root


def sibling_slot_root(proof: bytes) -> bytes:
    """The level-23 sibling of a memory proof (leaf, then 27 siblings bottom-up): for an address in
    slot s, the root of slot s ^ 1."""
    return proof[LEAF_SIZE * (1 + SLOT_LEVEL) : LEAF_SIZE * (2 + SLOT_LEVEL)]


def top_tree_siblings(proof: bytes) -> list[bytes]:
    """The four top-tree siblings (levels 23 to 26) of a memory proof."""
    levels = range(SLOT_LEVEL, SLOT_LEVEL + TOP_LEVELS)
    return [proof[LEAF_SIZE * (1 + level) : LEAF_SIZE * (2 + level)] for level in levels]


def fresh_machine(program: Path) -> Machine:
    """A machine holding `program`'s segments, at its entry with $sp and the heap set."""
    machine = Machine.from_elf(program)
    if machine.state.pc != ENTRY:
        raise ProverError(f"{program}: entry point {machine.state.pc:#x}, expected {ENTRY:#x}")
    machine.state.registers[SP_REGISTER] = STACK_POINTER
    machine.state.heap = HEAP_START
    return machine


def program_root(program: Path) -> bytes:
    """The root of slot 0 of a fresh machine holding the ELF `program` (a task's programRoot)."""
    return sibling_slot_root(fresh_machine(program).memory.proof(INPUT_BASE))


@dataclass(frozen=True)
class GoldenImage:
    """A task's initial machine and the commitments a contract sees."""

    machine: Machine
    program_root: bytes
    input_root: bytes
    model_root: bytes
    initial_hash: bytes  # S0
    regions: tuple[tuple[str, int, int], ...]  # (name, base, bytes used from the base)

    def to_json(self) -> dict[str, object]:
        return {
            "S0": "0x" + self.initial_hash.hex(),
            "program_root": "0x" + self.program_root.hex(),
            "input_root": "0x" + self.input_root.hex(),
            "model_root": "0x" + self.model_root.hex(),
            "memory_map": [
                {"region": name, "base": f"{base:#010x}", "size": f"{SLOT_SIZE:#x}", "used": used}
                for name, base, used in self.regions
            ],
        }


class GoldenTemplate:
    """The program and model regions of a task laid out once; `image(data)` adds an input.

    Many inputs under one model (the bit-exactness checks over the MNIST test set) then hash the
    program and model pages once instead of per input. Each image is still a complete, independent
    machine whose state hash is checked against `initial_state_hash` of its three roots, exactly as
    `build_golden` does (which is this class used once)."""

    def __init__(self, model: bytes, program: Path = GUEST_ELF) -> None:
        machine = fresh_machine(program)
        machine.memory.write(MODEL_BASE, region_bytes(model))
        # The machine's tree holds every slot root: read them off proofs of the neighbour slots.
        # (Taking the proofs also brings the tree up to date, so each copy rehashes only its input.)
        self.program_root = sibling_slot_root(machine.memory.proof(INPUT_BASE))
        self.model_root = sibling_slot_root(machine.memory.proof(OUTPUT_BASE))
        self._machine = machine
        self._model_size = len(model)
        self._program_end = program_end(program)

    def image(self, data: bytes) -> GoldenImage:
        """A fresh machine holding the program, the model and `data` as the input, with its roots
        and S0; checks the machine's state hash equals `initial_state_hash`."""
        machine = self._machine.copy()
        machine.memory.write(INPUT_BASE, region_bytes(data))
        input_root = sibling_slot_root(machine.memory.proof(PROGRAM_BASE))
        initial_hash = initial_state_hash(self.program_root, input_root, self.model_root)
        if machine.state_hash() != initial_hash:
            raise RuntimeError("the machine's initial state differs from docs/memory-map.md's S0")
        regions = _regions(self._program_end, len(data), self._model_size)
        return GoldenImage(machine, self.program_root, input_root, self.model_root, initial_hash, regions)


def program_end(program: Path) -> int:
    """The end of the program's highest PT_LOAD segment (bss included)."""
    with open(program, "rb") as file:
        segments = [seg for seg in ELFFile(file).iter_segments() if seg["p_type"] == "PT_LOAD"]
        return max(seg["p_vaddr"] + seg["p_memsz"] for seg in segments)


def _regions(program_used: int, input_size: int, model_size: int) -> tuple[tuple[str, int, int], ...]:
    return (
        ("program", PROGRAM_BASE, program_used),
        ("input", INPUT_BASE, REGION_HEADER + input_size),
        ("model", MODEL_BASE, REGION_HEADER + model_size),
        ("output", OUTPUT_BASE, 0),
    )


def golden_of_machine(machine: Machine, program: Path = GUEST_ELF) -> GoldenImage | None:
    """The golden image `machine` is, its roots read off its memory; None if it is not one (its
    state hash is not the S0 of those roots). How a party re-derives a lost golden.json."""
    memory = machine.memory
    program_root = sibling_slot_root(memory.proof(INPUT_BASE))
    input_root = sibling_slot_root(memory.proof(PROGRAM_BASE))
    model_root = sibling_slot_root(memory.proof(OUTPUT_BASE))
    initial_hash = initial_state_hash(program_root, input_root, model_root)
    if machine.state_hash() != initial_hash:
        return None
    regions = _regions(program_end(program), memory.read_word(INPUT_BASE), memory.read_word(MODEL_BASE))
    return GoldenImage(machine, program_root, input_root, model_root, initial_hash, regions)


def build_golden(model: bytes, data: bytes, program: Path = GUEST_ELF) -> GoldenImage:
    """Lay out the guest ELF, the input and the model in a fresh machine (docs/memory-map.md) and
    compute the region roots and S0; checks the machine's state hash equals `initial_state_hash`."""
    return GoldenTemplate(model, program).image(data)
