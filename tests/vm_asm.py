"""A tiny MIPS32 encoder for the vm tests: instruction words from mnemonics' fields."""

from vm import Machine

M32 = 0xFFFFFFFF
ZERO, AT, V0, V1, A0, A1, A2, A3 = range(8)
T0, T1, T2, T3, T4, T5, T6, T7 = range(8, 16)
S0, S1, S2 = 16, 17, 18
SP, RA = 29, 31


def r_type(funct: int, rd: int = 0, rs: int = 0, rt: int = 0, shamt: int = 0) -> int:
    return (rs << 21) | (rt << 16) | (rd << 11) | (shamt << 6) | funct


def i_type(opcode: int, rt: int, rs: int, imm: int) -> int:
    return (opcode << 26) | (rs << 21) | (rt << 16) | (imm & 0xFFFF)


def special2(funct: int, rd: int, rs: int, rt: int = 0) -> int:
    return (0x1C << 26) | (rs << 21) | (rt << 16) | (rd << 11) | funct


def j_type(opcode: int, target: int) -> int:
    return (opcode << 26) | ((target >> 2) & 0x03FFFFFF)


NOP = 0
SYSCALL = r_type(12)


def addiu(rt: int, rs: int, imm: int) -> int:
    return i_type(9, rt, rs, imm)


def lui(rt: int, imm: int) -> int:
    return i_type(15, rt, 0, imm)


def ori(rt: int, rs: int, imm: int) -> int:
    return i_type(13, rt, rs, imm)


def code(words: list[int]) -> bytes:
    return b"".join(word.to_bytes(4, "big") for word in words)


def machine(words: list[int], registers: dict[int, int] | None = None, addr: int = 0x1000) -> Machine:
    """A machine with `words` at `addr` (pc there) and the given register values."""
    m = Machine.from_bytes(code(words), addr=addr, pc=addr)
    for index, value in (registers or {}).items():
        m.state.registers[index] = value & M32
    return m


def exit_program(code_register: int = A0) -> list[int]:
    """exit_group(register)."""
    return [r_type(37, A0, code_register, ZERO), addiu(V0, ZERO, 4246), SYSCALL]
