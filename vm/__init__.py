"""The MIPS32 machine: state, Merkle memory, step semantics, witnesses."""
