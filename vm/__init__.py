"""The MIPS32 machine: state, Merkle memory, step semantics, witnesses (docs/machine.md, docs/vm.md)."""

from vm.errors import ElfError, SnapshotError, VmError
from vm.machine import Machine
from vm.memory import Memory, verify_proof
from vm.state import State
from vm.witness import StepWitness

__all__ = [
    "ElfError",
    "Machine",
    "Memory",
    "SnapshotError",
    "State",
    "StepWitness",
    "VmError",
    "verify_proof",
]
