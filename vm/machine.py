"""The public face of the VM: a machine = state + memory, run fast, or stepped with witnesses by the
reference stepper that the on-chain verifier mirrors."""

from __future__ import annotations

from pathlib import Path

from vm.elf import load_segments
from vm.instructions import execute
from vm.memory import Memory
from vm.native import NativeExecutor
from vm.state import State
from vm.witness import StepWitness, step_proof


class Machine:
    """A MIPS32 machine (docs/machine.md). `state` is bound to `memory`: its `mem_root` and
    `encode()` always reflect the current memory.

    `output` collects the (fd, bytes) of the guest's write syscalls to stdout / stderr; it is an
    off-chain log, not part of the state.
    """

    def __init__(self, state: State | None = None, memory: Memory | None = None) -> None:
        self.memory = memory if memory is not None else Memory()
        self.state = state.copy(self.memory) if state is not None else State(memory=self.memory)
        self.output: list[tuple[int, bytes]] = []

    @classmethod
    def from_bytes(cls, code: bytes, addr: int = 0, pc: int = 0) -> Machine:
        """Raw big-endian code at `addr`; pc = `pc`, next_pc = pc + 4, everything else zero."""
        machine = cls()
        machine.memory.write(addr, code)
        machine.state.pc = pc
        machine.state.next_pc = (pc + 4) & 0xFFFFFFFF
        return machine

    @classmethod
    def from_elf(cls, path: str | Path) -> Machine:
        """The PT_LOAD segments of a 32-bit big-endian MIPS executable; pc = entry point."""
        entry, segments = load_segments(path)
        machine = cls.from_bytes(b"", pc=entry)
        for addr, data in segments:
            machine.memory.write(addr, data)
        return machine

    def state_hash(self) -> bytes:
        """keccak256 of the 226-byte state encoding."""
        return self.state.hash()

    def step(self) -> StepWitness:
        """Execute one step and return its witness (pre-state, proofs, post-state hash).

        An exited machine does not change; its witness has zero proofs (the contract reads none).
        """
        state_data = self.state.encode()
        proof = step_proof(self.state, self.memory)
        execute(self.state, self.memory, 1, self._collect_output)
        return StepWitness(state_data, proof, self.state_hash())

    def run(self, max_steps: int | None = None) -> int:
        """Run until exit or `max_steps` steps with the native executor (vm/native.c: the same
        states as the reference stepper); returns the steps run. A trace's runner signature."""
        return NativeExecutor(self).run(max_steps)

    def run_reference(self, max_steps: int | None = None) -> int:
        """Run with the reference stepper (vm/instructions.py, line by line what the contract
        executes) until exit or `max_steps` steps; returns the steps run."""
        return execute(self.state, self.memory, max_steps, self._collect_output)

    def _collect_output(self, fd: int, data: bytes) -> None:
        self.output.append((fd, data))

    def stdout(self) -> bytes:
        """Everything the guest wrote to fd 1."""
        return b"".join(data for fd, data in self.output if fd == 1)

    def stderr(self) -> bytes:
        """Everything the guest wrote to fd 2."""
        return b"".join(data for fd, data in self.output if fd == 2)

    def copy(self) -> Machine:
        """An independent copy (state, memory and output log)."""
        clone = Machine(self.state, self.memory.copy())
        clone.output = list(self.output)
        return clone
