"""The witness of one step: cannon's `step(bytes stateData, bytes proof)` inputs (docs/machine.md)."""

from __future__ import annotations

from dataclasses import dataclass

from vm.hashing import keccak
from vm.instructions import data_address
from vm.memory import PROOF_SIZE, Memory
from vm.state import State

STEP_PROOF_SIZE = 2 * PROOF_SIZE  # instruction word, then data word
_NO_PROOF = bytes(PROOF_SIZE)
STEP_SELECTOR = keccak(b"step(bytes,bytes)")[:4]


@dataclass(frozen=True)
class StepWitness:
    """The pre-state encoding and the two memory proofs of one step, and the post-state hash the
    step leads to."""

    state_data: bytes  # 226 bytes
    proof: bytes  # 1792 bytes
    post_hash: bytes  # keccak256 of the post-state encoding

    def calldata(self) -> bytes:
        """The ABI-encoded call `step(stateData, proof)` (selector, two offsets, padded bytes)."""
        padded_state = self.state_data + bytes(-len(self.state_data) % 32)
        head = (64).to_bytes(32, "big") + (64 + 32 + len(padded_state)).to_bytes(32, "big")
        return (
            STEP_SELECTOR
            + head
            + len(self.state_data).to_bytes(32, "big")
            + padded_state
            + len(self.proof).to_bytes(32, "big")
            + self.proof
        )


def step_proof(state: State, memory: Memory) -> bytes:
    """The 1792-byte proof of the next step of (state, memory), against the current memory root.

    The instruction proof is of the word at pc; the data proof of the word a load or store reads or
    writes (also when that access traps as unaligned: the contract then does not read it). A proof
    the step does not read (an exited machine, an unaligned pc, no data access) is zero bytes.
    """
    if state.exited or state.pc & 3:
        return bytes(STEP_PROOF_SIZE)
    insn_proof = memory.proof(state.pc)
    insn = int.from_bytes(insn_proof[state.pc & 28 : (state.pc & 28) + 4], "big")
    addr = data_address(insn, state.registers)
    data_proof = memory.proof(addr & ~3) if addr is not None else _NO_PROOF
    return insn_proof + data_proof
