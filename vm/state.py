"""The machine state and its 226-byte packed big-endian encoding (docs/machine.md, "State")."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from vm.errors import VmError
from vm.hashing import keccak

if TYPE_CHECKING:
    from vm.memory import Memory

STATE_SIZE = 226
# memRoot, preimageKey, preimageOffset, pc, nextPC, lo, hi, heap, exitCode, exited, step, registers.
_LAYOUT = struct.Struct(">32s32sIIIIIIBBQ32I")
assert _LAYOUT.size == STATE_SIZE


class State:
    """The registers and counters of the machine.

    A machine's state is bound to its memory: `mem_root` then reads the memory's current Merkle root
    (computed lazily), so `encode()` is always the encoding of the whole machine. A state made by
    `decode` (or with `memory=None`) carries a fixed `mem_root` instead.
    """

    __slots__ = (
        "_mem_root",
        "exit_code",
        "exited",
        "heap",
        "hi",
        "lo",
        "memory",
        "next_pc",
        "pc",
        "preimage_key",
        "preimage_offset",
        "registers",
        "step",
    )

    def __init__(
        self,
        *,
        pc: int = 0,
        next_pc: int = 4,
        lo: int = 0,
        hi: int = 0,
        heap: int = 0,
        exit_code: int = 0,
        exited: int = 0,
        step: int = 0,
        registers: list[int] | None = None,
        preimage_key: bytes = bytes(32),
        preimage_offset: int = 0,
        mem_root: bytes = bytes(32),
        memory: Memory | None = None,
    ) -> None:
        self.pc = pc
        self.next_pc = next_pc
        self.lo = lo
        self.hi = hi
        self.heap = heap
        self.exit_code = exit_code
        self.exited = int(exited)
        self.step = step
        self.registers = list(registers) if registers is not None else [0] * 32
        self.preimage_key = preimage_key
        self.preimage_offset = preimage_offset
        self._mem_root = mem_root
        self.memory = memory

    @property
    def mem_root(self) -> bytes:
        return self.memory.merkle_root() if self.memory is not None else self._mem_root

    @mem_root.setter
    def mem_root(self, root: bytes) -> None:
        if self.memory is not None:
            raise VmError("mem_root of a machine's state follows its memory; write the memory instead")
        self._mem_root = root

    def encode(self) -> bytes:
        """The 226-byte packed encoding (cannon's layout)."""
        if len(self.registers) != 32:
            raise VmError(f"state has {len(self.registers)} registers, expected 32")
        return _LAYOUT.pack(
            self.mem_root,
            self.preimage_key,
            self.preimage_offset,
            self.pc,
            self.next_pc,
            self.lo,
            self.hi,
            self.heap,
            self.exit_code,
            self.exited,
            self.step,
            *self.registers,
        )

    def hash(self) -> bytes:
        """keccak256 of the encoding."""
        return keccak(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> State:
        """A detached state (fixed mem_root) from its 226-byte encoding."""
        if len(data) != STATE_SIZE:
            raise VmError(f"state encoding is {len(data)} bytes, expected {STATE_SIZE}")
        fields = _LAYOUT.unpack(data)
        if fields[9] > 1:
            raise VmError(f"state encoding has exited = {fields[9]}, expected 0 or 1")
        mem_root, key, offset, pc, next_pc, lo, hi, heap, exit_code, exited, step = fields[:11]
        return cls(
            pc=pc,
            next_pc=next_pc,
            lo=lo,
            hi=hi,
            heap=heap,
            exit_code=exit_code,
            exited=exited,
            step=step,
            registers=list(fields[11:]),
            preimage_key=key,
            preimage_offset=offset,
            mem_root=mem_root,
        )

    def copy(self, memory: Memory | None = None) -> State:
        """A copy with the same fields, bound to `memory` (or detached with the current root)."""
        return State(
            pc=self.pc,
            next_pc=self.next_pc,
            lo=self.lo,
            hi=self.hi,
            heap=self.heap,
            exit_code=self.exit_code,
            exited=self.exited,
            step=self.step,
            registers=self.registers,
            preimage_key=self.preimage_key,
            preimage_offset=self.preimage_offset,
            mem_root=self.mem_root if memory is None else bytes(32),
            memory=memory,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and self.encode() == other.encode()

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return (
            f"State(pc={self.pc:#010x}, next_pc={self.next_pc:#010x}, step={self.step}, "
            f"exited={self.exited}, exit_code={self.exit_code})"
        )
