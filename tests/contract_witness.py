"""Hand-built step witnesses for the verifier's specification examples: a packed state (docs/machine.md,
"State") and a sparse Merkle memory that makes proofs. No instruction semantics here: the examples
state their expected post-state themselves, and the differential tests take witnesses from vm/."""

import struct
from dataclasses import dataclass, field, replace

from eth_hash.auto import keccak

from prover.golden import ZERO_HASHES

TREE_DEPTH = 27
LEAF_SIZE = 32


@dataclass(frozen=True)
class State:
    mem_root: bytes = bytes(32)
    pc: int = 0x00400000
    next_pc: int = 0x00400004
    lo: int = 0
    hi: int = 0
    heap: int = 0x40000000
    exit_code: int = 0
    exited: int = 0
    step: int = 0
    registers: tuple[int, ...] = (0,) * 32

    def encode(self) -> bytes:
        return (
            self.mem_root
            + bytes(32)  # preimageKey
            + struct.pack(">IIIIII", 0, self.pc, self.next_pc, self.lo, self.hi, self.heap)
            + struct.pack(">BBQ", self.exit_code, self.exited, self.step)
            + struct.pack(">32I", *self.registers)
        )

    def hash(self) -> bytes:
        return keccak(self.encode())

    def with_registers(self, **values: int) -> "State":
        """A copy with registers set by name: r1=5, r31=0x400."""
        registers = list(self.registers)
        for name, value in values.items():
            registers[int(name[1:])] = value & 0xFFFFFFFF
        return replace(self, registers=tuple(registers))


@dataclass
class SparseMemory:
    """Big-endian memory of 32-byte leaves, all zero except the ones written."""

    leaves: dict[int, bytearray] = field(default_factory=dict)

    def write_word(self, addr: int, word: int) -> None:
        leaf = self.leaves.setdefault(addr >> 5, bytearray(LEAF_SIZE))
        offset = addr & 28
        leaf[offset : offset + 4] = word.to_bytes(4, "big")

    def _levels(self) -> list[dict[int, bytes]]:
        levels = [{index: bytes(leaf) for index, leaf in self.leaves.items()}]
        for height in range(TREE_DEPTH):
            zero, nodes = ZERO_HASHES[height], levels[-1]
            levels.append(
                {
                    p: keccak(nodes.get(2 * p, zero) + nodes.get(2 * p + 1, zero))
                    for p in {i >> 1 for i in nodes}
                }
            )
        return levels

    def root(self) -> bytes:
        return self._levels()[TREE_DEPTH].get(0, ZERO_HASHES[TREE_DEPTH])

    def proof(self, addr: int) -> bytes:
        """The 896-byte proof of the leaf holding `addr`: the leaf, then 27 siblings bottom-up."""
        levels = self._levels()
        index = addr >> 5
        siblings = [levels[h].get((index >> h) ^ 1, ZERO_HASHES[h]) for h in range(TREE_DEPTH)]
        return bytes(self.leaves.get(index, bytes(LEAF_SIZE))) + b"".join(siblings)
