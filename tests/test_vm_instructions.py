"""The reference stepper, instruction by instruction (docs/machine.md), with edge cases."""

import pytest
from vm_asm import (
    A0,
    A1,
    A2,
    A3,
    M32,
    NOP,
    RA,
    SYSCALL,
    T0,
    T1,
    T2,
    V0,
    ZERO,
    addiu,
    i_type,
    j_type,
    machine,
    r_type,
    special2,
)

from vm.instructions import DIVISION_BY_ZERO, INVALID_INSTRUCTION, UNALIGNED_ACCESS, UNALIGNED_PC

BASE = 0x1000


def one_step(word: int, **registers: int):
    """The machine after executing `word` with T0 = rs, T1 = rt (by name) and result in T2."""
    names = {"rs": T0, "rt": T1, "rd": T2}
    m = machine([word], {names[name]: value for name, value in registers.items()}, addr=BASE)
    m.step()
    return m


def alu(funct: int, rs: int, rt: int) -> int:
    m = one_step(r_type(funct, T2, T0, T1), rs=rs, rt=rt)
    assert not m.state.exited
    assert (m.state.pc, m.state.next_pc) == (BASE + 4, BASE + 8)
    return m.state.registers[T2]


@pytest.mark.parametrize(
    ("funct", "rs", "rt", "expected"),
    [
        (33, M32, 1, 0),  # addu wraps
        (32, 0x7FFFFFFF, 1, 0x80000000),  # add does not trap on overflow
        (35, 0, 1, M32),  # subu wraps
        (34, 0x80000000, 1, 0x7FFFFFFF),
        (36, 0xF0F0F0F0, 0xFF00FF00, 0xF000F000),
        (37, 0xF0F0F0F0, 0x0F0F0F0F, M32),
        (38, M32, 0x0F0F0F0F, 0xF0F0F0F0),
        (39, 0, 0, M32),  # nor
        (42, M32, 0, 1),  # slt: -1 < 0
        (42, 0, M32, 0),
        (43, M32, 0, 0),  # sltu: 0xffffffff > 0
        (43, 0, M32, 1),
        (4, 33, 1, 2),  # sllv uses rs & 31
        (6, 36, 0x80000000, 0x08000000),  # srlv
        (7, 4, 0x80000000, 0xF8000000),  # srav sign-fills
        (7, 31, 0x7FFFFFFF, 0),
    ],
)
def test_register_alu(funct: int, rs: int, rt: int, expected: int) -> None:
    assert alu(funct, rs, rt) == expected


@pytest.mark.parametrize(
    ("funct", "shamt", "rt", "expected"),
    [
        (0, 31, 1, 0x80000000),
        (0, 1, 0x80000001, 2),
        (2, 31, 0x80000000, 1),
        (3, 31, 0x80000000, M32),
        (3, 4, 0x70, 7),
    ],
)
def test_shifts_by_constant(funct: int, shamt: int, rt: int, expected: int) -> None:
    m = one_step(r_type(funct, T2, 0, T1, shamt), rt=rt)
    assert m.state.registers[T2] == expected


@pytest.mark.parametrize(
    ("opcode", "rs", "imm", "expected"),
    [
        (9, M32, 1, 0),  # addiu wraps
        (9, 0, -1, M32),  # sign-extended
        (8, 0x7FFFFFFF, 1, 0x80000000),  # addi does not trap
        (10, M32, 0, 1),  # slti: -1 < 0
        (10, 0, -1, 0),
        (11, 5, -1, 1),  # sltiu compares against 0xffffffff
        (11, M32, -1, 0),
        (12, M32, 0x8000, 0x8000),  # andi zero-extends
        (13, 0x10000, 0xFFFF, 0x1FFFF),  # ori zero-extends
        (14, M32, 0xFFFF, 0xFFFF0000),  # xori zero-extends
        (15, 0x1234, 0x8001, 0x80010000),  # lui ignores rs
    ],
)
def test_immediates(opcode: int, rs: int, imm: int, expected: int) -> None:
    m = one_step(i_type(opcode, T2, T0, imm), rs=rs)
    assert m.state.registers[T2] == expected


def test_writes_to_r0_are_discarded() -> None:
    m = one_step(addiu(ZERO, ZERO, 5))
    assert m.state.registers[ZERO] == 0
    m = one_step(r_type(9, ZERO, T0), rs=0x2000)  # jalr r0, t0: no link
    assert m.state.registers[ZERO] == 0 and m.state.next_pc == 0x2000


@pytest.mark.parametrize(
    ("funct", "rs", "rt", "hi", "lo"),
    [
        (24, M32, M32, 0, 1),  # mult -1 * -1
        (24, M32, 2, M32, 0xFFFFFFFE),  # -1 * 2 = -2
        (24, 0x80000000, 0x80000000, 0x40000000, 0),
        (25, M32, M32, 0xFFFFFFFE, 1),  # multu
        (25, 0x80000000, 2, 1, 0),
        (26, 7, 2, 1, 3),  # div
        (26, (-7) & M32, 2, M32, (-3) & M32),  # truncates toward zero; remainder takes the dividend's sign
        (26, 7, (-2) & M32, 1, (-3) & M32),
        (26, (-7) & M32, (-2) & M32, M32, 3),
        (26, 0x80000000, M32, 0, 0x80000000),  # INT_MIN / -1 does not trap
        (27, M32, 2, 1, 0x7FFFFFFF),  # divu
        (27, 7, M32, 7, 0),
    ],
)
def test_multiply_divide(funct: int, rs: int, rt: int, hi: int, lo: int) -> None:
    m = one_step(r_type(funct, 0, T0, T1), rs=rs, rt=rt)
    assert (m.state.hi, m.state.lo) == (hi, lo)


@pytest.mark.parametrize("funct", [26, 27])
def test_division_by_zero_traps(funct: int) -> None:
    m = one_step(r_type(funct, 0, T0, T1), rs=5, rt=0)
    assert (m.state.exited, m.state.exit_code, m.state.pc, m.state.step) == (1, DIVISION_BY_ZERO, BASE, 1)
    assert (m.state.hi, m.state.lo) == (0, 0)


def test_hi_lo_moves() -> None:
    m = machine([r_type(17, 0, T0), r_type(19, 0, T1), r_type(16, T2), r_type(18, T3 := 11)], {T0: 5, T1: 6})
    m.run_reference(4)
    assert (m.state.hi, m.state.lo, m.state.registers[T2], m.state.registers[T3]) == (5, 6, 5, 6)


@pytest.mark.parametrize(
    ("funct", "rs", "rt", "expected"),
    [
        (2, M32, M32, 1),  # mul: low 32 bits of the signed product
        (2, 0x10000, 0x10000, 0),
        (2, (-3) & M32, 5, (-15) & M32),
        (0x20, 0, 0, 32),  # clz
        (0x20, M32, 0, 0),
        (0x20, 1, 0, 31),
        (0x21, M32, 0, 32),  # clo
        (0x21, 0, 0, 0),
        (0x21, 0xF0000000, 0, 4),
    ],
)
def test_special2(funct: int, rs: int, rt: int, expected: int) -> None:
    m = one_step(special2(funct, T2, T0, T1), rs=rs, rt=rt)
    assert m.state.registers[T2] == expected


@pytest.mark.parametrize(
    ("funct", "rt", "moves"), [(10, 0, True), (10, 1, False), (11, 0, False), (11, M32, True)]
)
def test_movz_movn(funct: int, rt: int, moves: bool) -> None:
    m = one_step(r_type(funct, T2, T0, T1), rs=77, rt=rt)
    assert m.state.registers[T2] == (77 if moves else 0)
    assert m.state.pc == BASE + 4


def test_sync_is_a_no_op() -> None:
    m = one_step(r_type(15))
    assert (m.state.pc, m.state.next_pc, m.state.exited) == (BASE + 4, BASE + 8, 0)


# ---------------------------------------------------------------------------- control flow

BRANCHES = [
    # (opcode, rt field, rs value, rt value, taken)
    (4, T1, 5, 5, True),
    (4, T1, 5, 6, False),
    (5, T1, 5, 6, True),
    (5, T1, M32, M32, False),
    (6, 0, 0, 0, True),  # blez
    (6, 0, M32, 0, True),
    (6, 0, 1, 0, False),
    (7, 0, 1, 0, True),  # bgtz
    (7, 0, 0x80000000, 0, False),
    (1, 0, M32, 0, True),  # bltz
    (1, 0, 0, 0, False),
    (1, 1, 0, 0, True),  # bgez
    (1, 1, 0x80000000, 0, False),
]


@pytest.mark.parametrize(("opcode", "rt_field", "rs", "rt", "taken"), BRANCHES)
def test_branches_run_the_delay_slot(opcode: int, rt_field: int, rs: int, rt: int, taken: bool) -> None:
    # branch +3 words; delay slot sets t2 = 1; the fall-through sets t2 += 10.
    words = [i_type(opcode, rt_field, T0, 3), addiu(T2, ZERO, 1), addiu(T2, T2, 10), NOP, addiu(T2, T2, 100)]
    m = machine(words, {T0: rs, T1: rt})
    m.step()
    target = BASE + 4 + 12 if taken else BASE + 8
    assert (m.state.pc, m.state.next_pc) == (BASE + 4, target)
    m.step()
    assert (m.state.pc, m.state.registers[T2]) == (target, 1)
    m.step()
    assert m.state.registers[T2] == (101 if taken else 11)


def test_backward_branch_offset() -> None:
    m = machine([NOP, NOP, i_type(4, 0, 0, -2)])
    m.run_reference(3)
    assert (m.state.pc, m.state.next_pc) == (BASE + 12, BASE + 4)


def test_regimm_other_rt_traps() -> None:
    m = one_step(i_type(1, 16, T0, 1))  # bltzal is not in the subset
    assert (m.state.exited, m.state.exit_code) == (1, INVALID_INSTRUCTION)


def test_j_and_jal_keep_the_delay_slot_region() -> None:
    # A jump in the last word of a 256 MiB region takes the upper bits of the delay slot's address.
    addr = 0x0FFFFFFC
    m = machine([j_type(3, 0x40)], addr=addr)
    m.step()
    assert (m.state.pc, m.state.next_pc) == (0x10000000, 0x10000040)
    assert m.state.registers[RA] == (addr + 8) & M32
    m = machine([j_type(2, 0x123454)])
    m.step()
    assert m.state.next_pc == 0x123454 and m.state.registers[RA] == 0


def test_jr_jalr_links() -> None:
    m = one_step(r_type(9, T2, T0), rs=0x4000)
    assert (m.state.pc, m.state.next_pc, m.state.registers[T2]) == (BASE + 4, 0x4000, BASE + 8)
    m = machine([r_type(9, RA, RA)], {RA: 0x5000})  # jalr ra, ra jumps to the old ra
    m.step()
    assert (m.state.next_pc, m.state.registers[RA]) == (0x5000, BASE + 8)
    m = one_step(r_type(8, 0, T0), rs=0x6002)  # jr to an unaligned address: the fetch traps
    assert m.state.next_pc == 0x6002
    m.run_reference(2)
    assert (m.state.exited, m.state.exit_code, m.state.pc) == (1, UNALIGNED_PC, 0x6002)


def test_jal_link_is_visible_in_the_delay_slot() -> None:
    m = machine([j_type(3, 0x2000), r_type(37, T2, RA, ZERO)])
    m.run_reference(2)
    assert m.state.registers[T2] == BASE + 8 and m.state.pc == 0x2000


def test_branch_in_a_delay_slot_follows_the_rules() -> None:
    # beq 0,0,+4 with a j in its delay slot: the j executes with pc = slot, next_pc = branch target.
    m = machine([i_type(4, 0, 0, 4), j_type(2, 0x3000)])
    m.run_reference(2)
    assert (m.state.pc, m.state.next_pc) == (BASE + 20, 0x3000)


# ---------------------------------------------------------------------------- loads and stores

WORD = 0x8192A3B4
DATA = 0x2000


def memory_step(word: int, base: int = DATA, rt: int = 0, memory_word: int = WORD):
    m = machine([word], {T0: base, T1: rt})
    m.memory.write_word(DATA, memory_word)
    witness = m.step()
    return m, witness


@pytest.mark.parametrize("offset", range(4))
def test_byte_loads_every_lane(offset: int) -> None:
    byte = (WORD >> (24 - 8 * offset)) & 0xFF
    m, _ = memory_step(i_type(0x20, T1, T0, offset))
    assert m.state.registers[T1] == ((byte ^ 0x80) - 0x80) & M32
    m, _ = memory_step(i_type(0x24, T1, T0, offset))
    assert m.state.registers[T1] == byte


@pytest.mark.parametrize("offset", [0, 2])
def test_half_loads(offset: int) -> None:
    half = (WORD >> (16 - 8 * offset)) & 0xFFFF
    m, _ = memory_step(i_type(0x21, T1, T0, offset))
    assert m.state.registers[T1] == ((half ^ 0x8000) - 0x8000) & M32
    m, _ = memory_step(i_type(0x25, T1, T0, offset))
    assert m.state.registers[T1] == half


@pytest.mark.parametrize("opcode", [0x23, 0x30])
def test_word_loads(opcode: int) -> None:
    m, witness = memory_step(i_type(opcode, T1, T0, -4), base=DATA + 4)
    assert m.state.registers[T1] == WORD
    assert witness.proof[896:] == m.memory.proof(DATA)


# lwl / lwr / swl / swr with register 0x11223344 and memory 0x8192A3B4 (bytes 81 92 A3 B4).
@pytest.mark.parametrize(
    ("offset", "lwl", "lwr", "swl", "swr"),
    [
        (0, 0x8192A3B4, 0x11223381, 0x11223344, 0x4492A3B4),
        (1, 0x92A3B444, 0x11228192, 0x81112233, 0x3344A3B4),
        (2, 0xA3B43344, 0x118192A3, 0x81921122, 0x223344B4),
        (3, 0xB4223344, 0x8192A3B4, 0x8192A311, 0x11223344),
    ],
)
def test_unaligned_word_access(offset: int, lwl: int, lwr: int, swl: int, swr: int) -> None:
    rt = 0x11223344
    for opcode, expected in ((0x22, lwl), (0x26, lwr)):
        m, _ = memory_step(i_type(opcode, T1, T0, offset), rt=rt)
        assert m.state.registers[T1] == expected, hex(opcode)
    for opcode, expected in ((0x2A, swl), (0x2E, swr)):
        m, _ = memory_step(i_type(opcode, T1, T0, offset), rt=rt)
        assert m.memory.read_word(DATA) == expected, hex(opcode)


@pytest.mark.parametrize("offset", range(4))
def test_store_byte_every_lane(offset: int) -> None:
    m, _ = memory_step(i_type(0x28, T1, T0, offset), rt=0x1234_56CC)
    expected = bytearray(WORD.to_bytes(4, "big"))
    expected[offset] = 0xCC
    assert m.memory.read(DATA, 4) == bytes(expected)


@pytest.mark.parametrize("offset", [0, 2])
def test_store_half_every_lane(offset: int) -> None:
    m, _ = memory_step(i_type(0x29, T1, T0, offset), rt=0x1234_ABCD)
    expected = bytearray(WORD.to_bytes(4, "big"))
    expected[offset : offset + 2] = b"\xab\xcd"
    assert m.memory.read(DATA, 4) == bytes(expected)


def test_sw_and_sc() -> None:
    m, witness = memory_step(i_type(0x2B, T1, T0, 0), rt=0xDEADBEEF)
    assert m.memory.read_word(DATA) == 0xDEADBEEF and m.state.registers[T1] == 0xDEADBEEF
    assert witness.post_hash == m.state_hash()
    m, _ = memory_step(i_type(0x38, T1, T0, 0), rt=0xDEADBEEF)
    assert m.memory.read_word(DATA) == 0xDEADBEEF and m.state.registers[T1] == 1


def test_load_into_r0_is_discarded() -> None:
    m, _ = memory_step(i_type(0x23, ZERO, T0, 0))
    assert m.state.registers[ZERO] == 0


def test_effective_address_wraps() -> None:
    m = machine([i_type(0x2B, T1, T0, 8)], {T0: M32 - 3, T1: 7})
    m.step()
    assert m.memory.read_word(4) == 7


@pytest.mark.parametrize(
    ("opcode", "offset"),
    [(0x23, 1), (0x23, 2), (0x30, 3), (0x2B, 2), (0x38, 1), (0x21, 1), (0x25, 3), (0x29, 1)],
)
def test_unaligned_access_traps(opcode: int, offset: int) -> None:
    m, _ = memory_step(i_type(opcode, T1, T0, offset), rt=5)
    assert (m.state.exited, m.state.exit_code, m.state.pc, m.state.registers[T1]) == (
        1,
        UNALIGNED_ACCESS,
        BASE,
        5,
    )
    assert m.memory.read_word(DATA) == WORD


# ---------------------------------------------------------------------------- traps


@pytest.mark.parametrize(
    "word",
    [
        0xFFFFFFFF,
        (0x11 << 26),  # COP1
        (0x27 << 26),  # lwu (MIPS64)
        (0x2C << 26),
        (0x31 << 26),  # lwc1
        r_type(1),  # funct 1
        r_type(5),
        r_type(13),  # break
        r_type(44),
        special2(3, 0, 0),
    ],
)
def test_invalid_instructions_trap(word: int) -> None:
    m = machine([word], {T0: 1})
    before = m.state.encode()
    m.step()
    assert (m.state.exited, m.state.exit_code, m.state.step) == (1, INVALID_INSTRUCTION, 1)
    after = m.state.encode()
    assert after[:88] == before[:88] and after[98:] == before[98:]  # nothing but exit and step changed


def test_unaligned_pc_traps_without_proof() -> None:
    m = machine([NOP])
    m.state.pc = BASE + 2
    witness = m.step()
    assert (m.state.exited, m.state.exit_code, m.state.pc) == (1, UNALIGNED_PC, BASE + 2)
    assert witness.proof == bytes(1792)


def test_exited_machine_does_not_change() -> None:
    m = machine([NOP])
    m.state.exited, m.state.exit_code = 1, 3
    before = m.state_hash()
    witness = m.step()
    assert m.state_hash() == before == witness.post_hash and m.state.step == 0
    assert m.run_reference() == 0


# ---------------------------------------------------------------------------- syscalls


def syscall(number: int, a0: int = 0, a1: int = 0, a2: int = 0, heap: int = 0x40000000):
    m = machine([SYSCALL], {V0: number, A0: a0, A1: a1, A2: a2, A3: 0x55})
    m.state.heap = heap
    m.step()
    return m


def result(m) -> tuple[int, int]:
    return m.state.registers[V0], m.state.registers[A3]


def test_exit_group() -> None:
    m = syscall(4246, a0=0x1234)
    assert (m.state.exited, m.state.exit_code, m.state.pc, m.state.next_pc) == (1, 0x34, BASE, BASE + 4)
    assert result(m) == (4246, 0x55)  # registers unchanged


def test_mmap() -> None:
    m = syscall(4090, a0=0, a1=1)
    assert result(m) == (0x40000000, 0) and m.state.heap == 0x40001000
    m = syscall(4090, a0=0, a1=0x2000)
    assert m.state.heap == 0x40002000
    m = syscall(4090, a0=0x1230000, a1=0x2000)
    assert result(m) == (0x1230000, 0) and m.state.heap == 0x40000000
    m = syscall(4090, a0=0, a1=0x1000, heap=0xFFFFF000)
    assert m.state.heap == 0  # 32-bit wrapping


@pytest.mark.parametrize(
    ("number", "a0", "a1", "expected"),
    [
        (4045, 0, 0, (0x60000000, 0)),  # brk
        (4120, 0, 0, (1, 0)),  # clone
        (4003, 0, 0, (0, 0)),  # read stdin: end of file
        (4003, 3, 0, (M32, 9)),
        (4004, 3, 0, (M32, 9)),  # write to another fd
        (4055, 0, 3, (0, 0)),  # fcntl F_GETFL
        (4055, 1, 3, (1, 0)),
        (4055, 2, 3, (1, 0)),
        (4055, 5, 3, (M32, 9)),
        (4055, 1, 4, (M32, 22)),
        (4001, 0, 0, (M32, 89)),  # anything else: ENOSYS
        (0, 0, 0, (M32, 89)),
    ],
)
def test_syscall_results(number: int, a0: int, a1: int, expected: tuple[int, int]) -> None:
    m = syscall(number, a0=a0, a1=a1)
    assert result(m) == expected
    assert (m.state.pc, m.state.next_pc, m.state.exited) == (BASE + 4, BASE + 8, 0)


@pytest.mark.parametrize("fd", [1, 2])
def test_write_logs_output(fd: int) -> None:
    m = machine([SYSCALL], {V0: 4004, A0: fd, A1: DATA, A2: 5})
    m.memory.write(DATA, b"hello world")
    m.step()
    assert result(m) == (5, 0)
    assert m.output == [(fd, b"hello")]
    assert (m.stdout(), m.stderr()) == ((b"hello", b"") if fd == 1 else (b"", b"hello"))


def test_write_of_a_huge_size_logs_a_bounded_prefix() -> None:
    m = machine([SYSCALL], {V0: 4004, A0: 1, A1: 0xFFFFFFF0, A2: M32})
    m.step()
    assert result(m) == (M32, 0) and len(m.stdout()) == 16


def test_syscall_in_a_delay_slot_continues_at_the_target() -> None:
    m = machine([j_type(2, 0x3000), SYSCALL], {V0: 4045})
    m.run_reference(2)
    assert (m.state.pc, m.state.registers[V0]) == (0x3000, 0x60000000)
