"""Errors raised by the machine for bad inputs (never for a guest's behaviour: traps are states)."""


class VmError(ValueError):
    """A bad input to the machine: one line saying what is wrong and where."""


class ElfError(VmError):
    """An ELF file that is not a loadable 32-bit big-endian MIPS executable."""


class SnapshotError(VmError):
    """A snapshot file that is truncated, corrupt or of another format."""
