"""MIPS.sol against examples written from docs/machine.md: each example gives a pre-state and the
post-state the specification demands (by hand, not by a VM), with the corner cases the contract
must get right: wrapping, signed division overflow, variable shifts by rs & 31, j/jal upper bits,
delay slots, traps, every syscall, unaligned and region-edge memory. Forged witnesses revert."""

import pytest
from eth_tester.exceptions import TransactionFailed

from prover.chain.contracts import MipsVerifier, decode_revert, revert_data
from prover.chain.local import LocalChain
from prover.errors import ProverError
from vm import Memory, State

M32 = 0xFFFFFFFF
PC = 0x00400000
STATE_FIELDS = ("mem_root", "pc", "next_pc", "lo", "hi", "heap", "exit_code", "exited", "step")


def changed(state: State, **changes: int | bytes) -> State:
    """A detached copy of `state` with fields changed by name (pc=..., mem_root=...) and registers
    by rN (r1=5, r31=0x400): the examples derive post-states from pre-states without mutating them.
    Only the encoding (vm.State) and the proofs (vm.Memory) come from vm, never a post-state."""
    copy = state.copy()
    for name, value in changes.items():
        if name in STATE_FIELDS:
            setattr(copy, name, value)
        elif name[0] == "r" and name[1:].isdigit() and int(name[1:]) < 32:
            assert isinstance(value, int)
            copy.registers[int(name[1:])] = value & M32
        else:
            raise ValueError(f"no state field or register {name!r}")
    return copy


BASE = changed(State(heap=0x40000000), pc=PC, next_pc=PC + 4, step=41, r29=0x7FFFD000)


def special(funct: int, rs: int = 0, rt: int = 0, rd: int = 0, shamt: int = 0) -> int:
    return (rs << 21) | (rt << 16) | (rd << 11) | (shamt << 6) | funct


def special2(funct: int, rs: int = 0, rt: int = 0, rd: int = 0) -> int:
    return (0x1C << 26) | special(funct, rs, rt, rd)


def itype(opcode: int, rs: int, rt: int, imm: int) -> int:
    return (opcode << 26) | (rs << 21) | (rt << 16) | (imm & 0xFFFF)


def jtype(opcode: int, target: int) -> int:
    return (opcode << 26) | (target & 0x03FFFFFF)


@pytest.fixture(scope="module")
def mips() -> MipsVerifier:
    return MipsVerifier.deploy(LocalChain().w3)


def run(
    mips: MipsVerifier,
    pre: State,
    insn: int | None,
    words: dict[int, int] | None = None,
    data_addr: int | None = None,
) -> tuple[State, Memory, bytes]:
    """Puts `insn` at pre.pc and `words` in memory, proves pc and data_addr, and steps."""
    memory = Memory()
    if insn is not None:
        memory.write_word(pre.pc & ~3, insn)
    for addr, word in (words or {}).items():
        memory.write_word(addr, word)
    pre = changed(pre, mem_root=memory.merkle_root())
    proof = memory.proof(pre.pc) + (memory.proof(data_addr) if data_addr is not None else bytes(896))
    return pre, memory, mips.step(pre.encode(), proof)


def advanced(pre: State, **changes: int | bytes) -> State:
    """The post-state of a non-control instruction: step + 1, pc = nextPC, nextPC += 4."""
    return changed(pre, step=pre.step + 1, pc=pre.next_pc, next_pc=(pre.next_pc + 4) & M32, **changes)


def trapped(pre: State, code: int) -> State:
    return changed(pre, step=pre.step + 1, exited=1, exit_code=code)


ALU_EXAMPLES = [
    # (name, instruction, registers before, changes after)
    ("addu wraps", special(33, 1, 2, 3), {"r1": M32, "r2": 2}, {"r3": 1}),
    ("add does not trap", special(32, 1, 2, 3), {"r1": 0x7FFFFFFF, "r2": 1}, {"r3": 0x80000000}),
    ("subu wraps", special(35, 1, 2, 3), {"r1": 1, "r2": 2}, {"r3": M32}),
    ("sub", special(34, 1, 2, 3), {"r1": 10, "r2": 3}, {"r3": 7}),
    ("and", special(36, 1, 2, 3), {"r1": 0xF0F0, "r2": 0xFF00}, {"r3": 0xF000}),
    ("or", special(37, 1, 2, 3), {"r1": 0xF0F0, "r2": 0xFF00}, {"r3": 0xFFF0}),
    ("xor", special(38, 1, 2, 3), {"r1": 0xF0F0, "r2": 0xFF00}, {"r3": 0x0FF0}),
    ("nor", special(39, 1, 2, 3), {"r1": 0xF0F0, "r2": 0xFF00}, {"r3": 0xFFFF000F}),
    ("slt signed", special(42, 1, 2, 3), {"r1": M32, "r2": 0}, {"r3": 1}),
    ("sltu unsigned", special(43, 1, 2, 3), {"r1": M32, "r2": 0}, {"r3": 0}),
    ("sll", special(0, 0, 1, 3, shamt=4), {"r1": 0x8000000F}, {"r3": 0xF0}),
    ("srl", special(2, 0, 1, 3, shamt=4), {"r1": 0x80000000}, {"r3": 0x08000000}),
    ("sra", special(3, 0, 1, 3, shamt=31), {"r1": 0x80000000}, {"r3": M32}),
    ("sllv uses rs & 31", special(4, 2, 1, 3), {"r1": 1, "r2": 0xFFFFFFE1}, {"r3": 2}),
    ("srlv uses rs & 31", special(6, 2, 1, 3), {"r1": 0x80000000, "r2": 33}, {"r3": 0x40000000}),
    ("srav uses rs & 31", special(7, 2, 1, 3), {"r1": 0x80000000, "r2": 33}, {"r3": 0xC0000000}),
    ("movz moves on zero", special(10, 1, 2, 3), {"r1": 9, "r2": 0, "r3": 5}, {"r3": 9}),
    ("movz keeps", special(10, 1, 2, 3), {"r1": 9, "r2": 1, "r3": 5}, {}),
    ("movn moves on non-zero", special(11, 1, 2, 3), {"r1": 9, "r2": 1, "r3": 5}, {"r3": 9}),
    ("mfhi", special(16, rd=3), {}, {"r3": 0x1234}),
    ("mthi", special(17, rs=1), {"r1": 77}, {"hi": 77}),
    ("mflo", special(18, rd=3), {}, {"r3": 0x5678}),
    ("mtlo", special(19, rs=1), {"r1": 78}, {"lo": 78}),
    ("mult signed", special(24, 1, 2), {"r1": M32, "r2": M32}, {"hi": 0, "lo": 1}),
    ("mult mixed sign", special(24, 1, 2), {"r1": M32, "r2": 2}, {"hi": M32, "lo": 0xFFFFFFFE}),
    ("multu", special(25, 1, 2), {"r1": M32, "r2": M32}, {"hi": 0xFFFFFFFE, "lo": 1}),
    ("div INT_MIN / -1", special(26, 1, 2), {"r1": 0x80000000, "r2": M32}, {"lo": 0x80000000, "hi": 0}),
    ("div truncates", special(26, 1, 2), {"r1": (-7) & M32, "r2": 2}, {"lo": (-3) & M32, "hi": M32}),
    ("divu", special(27, 1, 2), {"r1": M32, "r2": 16}, {"lo": 0x0FFFFFFF, "hi": 15}),
    ("sync", special(15), {}, {}),
    ("mul", special2(2, 1, 2, 3), {"r1": (-3) & M32, "r2": 5}, {"r3": (-15) & M32}),
    ("clz 0", special2(0x20, 1, 0, 3), {"r1": 0}, {"r3": 32}),
    ("clz", special2(0x20, 1, 0, 3), {"r1": 0x00010000}, {"r3": 15}),
    ("clo", special2(0x21, 1, 0, 3), {"r1": 0xFFF00000}, {"r3": 12}),
    ("clo all ones", special2(0x21, 1, 0, 3), {"r1": M32}, {"r3": 32}),
    ("addiu negative", itype(9, 1, 3, -1), {"r1": 0}, {"r3": M32}),
    ("addi does not trap", itype(8, 1, 3, 1), {"r1": 0x7FFFFFFF}, {"r3": 0x80000000}),
    ("slti", itype(10, 1, 3, -1), {"r1": (-2) & M32}, {"r3": 1}),
    ("sltiu sign-extends", itype(11, 1, 3, -1), {"r1": 5}, {"r3": 1}),
    ("andi zero-extends", itype(12, 1, 3, 0x8001), {"r1": M32}, {"r3": 0x8001}),
    ("ori", itype(13, 1, 3, 0x8000), {"r1": 0x10000}, {"r3": 0x18000}),
    ("xori", itype(14, 1, 3, 0xFFFF), {"r1": 0xF0F0}, {"r3": 0x0F0F}),
    ("lui", itype(15, 0, 3, 0x8001), {}, {"r3": 0x80010000}),
    ("writes to r0 are discarded", itype(9, 1, 0, 5), {"r1": 1}, {}),
]


@pytest.mark.parametrize(("name", "insn", "before", "after"), ALU_EXAMPLES, ids=[e[0] for e in ALU_EXAMPLES])
def test_alu(mips: MipsVerifier, name: str, insn: int, before: dict[str, int], after: dict[str, int]) -> None:
    pre = changed(BASE, hi=0x1234, lo=0x5678, **before)
    pre, _, post_hash = run(mips, pre, insn)
    assert post_hash == advanced(pre, **after).hash()


def control(pre: State, target: int, **registers: int) -> State:
    """The post-state of a taken branch or jump: the delay slot, then target."""
    return changed(pre, step=pre.step + 1, pc=pre.next_pc, next_pc=target & M32, **registers)


def test_j_takes_the_upper_bits_of_the_delay_slot(mips: MipsVerifier) -> None:
    pre = changed(BASE, pc=0x0FFFFFFC, next_pc=0x10000000)
    pre, _, post_hash = run(mips, pre, jtype(2, 0x40))
    assert post_hash == control(pre, 0x10000100).hash()


def test_jal_links_pc_plus_8(mips: MipsVerifier) -> None:
    pre, _, post_hash = run(mips, BASE, jtype(3, 0x100040))
    assert post_hash == control(pre, 0x00400100, r31=PC + 8).hash()


def test_jalr_reads_the_target_before_linking(mips: MipsVerifier) -> None:
    pre, _, post_hash = run(mips, changed(BASE, r31=0x00400800), special(9, 31, 0, 31))
    assert post_hash == control(pre, 0x00400800, r31=PC + 8).hash()


def test_jr_in_a_delay_slot_follows_the_rules(mips: MipsVerifier) -> None:
    pre = changed(BASE, next_pc=0x00500000, r4=0x00600000)
    pre, _, post_hash = run(mips, pre, special(8, 4))
    assert post_hash == control(pre, 0x00600000).hash()


@pytest.mark.parametrize(
    ("insn", "registers", "taken"),
    [
        (itype(4, 1, 2, -2), {"r1": 5, "r2": 5}, True),  # beq backwards
        (itype(5, 1, 2, 3), {"r1": 5, "r2": 5}, False),  # bne
        (itype(6, 1, 0, 3), {"r1": 0}, True),  # blez 0
        (itype(7, 1, 0, 3), {"r1": 0x80000000}, False),  # bgtz negative
        (itype(1, 1, 0, 3), {"r1": M32}, True),  # bltz
        (itype(1, 1, 1, 3), {"r1": M32}, False),  # bgez
    ],
)
def test_branches(mips: MipsVerifier, insn: int, registers: dict[str, int], taken: bool) -> None:
    pre = changed(BASE, next_pc=0x00400010, **registers)  # in a delay slot
    pre, _, post_hash = run(mips, pre, insn)
    offset = ((insn & 0xFFFF) ^ 0x8000) - 0x8000
    target = PC + 4 + 4 * offset if taken else pre.next_pc + 4
    assert post_hash == control(pre, target).hash()


@pytest.mark.parametrize(
    ("insn", "code"),
    [
        (itype(1, 1, 2, 0), 0xF1),  # REGIMM rt = 2 (bltzl) is not in the subset
        (special(1), 0xF1),  # funct 1
        (special(5), 0xF1),
        (special(13), 0xF1),  # break
        (special2(3), 0xF1),
        (0x11 << 26, 0xF1),  # COP1
        (0x3F << 26, 0xF1),
        (itype(0x27, 0, 1, 0), 0xF1),  # a load opcode outside the subset: no data proof read
        (special(27, 1, 0), 0xF2),  # divu by zero
        (special(26, 1, 0), 0xF2),  # div by zero
    ],
)
def test_traps_change_only_the_exit_fields(mips: MipsVerifier, insn: int, code: int) -> None:
    pre, _, post_hash = run(mips, changed(BASE, r1=7), insn)
    assert post_hash == trapped(pre, code).hash()


def test_unaligned_pc_traps_without_reading_memory(mips: MipsVerifier) -> None:
    pre = changed(BASE, pc=PC + 2, mem_root=b"\x11" * 32)
    assert mips.step(pre.encode(), bytes(1792)) == trapped(pre, 0xF4).hash()


def test_an_exited_machine_does_not_change(mips: MipsVerifier) -> None:
    pre = changed(BASE, exited=1, exit_code=3, mem_root=b"\x22" * 32)
    assert mips.step(pre.encode(), bytes(1792)) == pre.hash()


# ---------------------------------------------------------------- loads and stores

LOAD_EXAMPLES = [
    # (opcode, address, memory word at address & ~3, rt before, rt after)
    (0x20, 0x0FFFFFFF, 0x000000F0, 0, 0xFFFFFFF0),  # lb: the last byte of slot 0, sign-extended
    (0x24, 0x10000000, 0xF0000000, 0, 0xF0),  # lbu: the first byte of slot 1
    (0x21, 0x20000002, 0x00008001, 0, 0xFFFF8001),  # lh
    (0x25, 0x20000002, 0x00008001, 0, 0x8001),  # lhu
    (0x23, 0xFFFFFFFC, 0xCAFEBABE, 0, 0xCAFEBABE),  # lw: the last word of memory
    (0x30, 0x00001000, 0x12345678, 0, 0x12345678),  # ll
    (0x22, 0x00000001, 0x11223344, 0xAABBCCDD, 0x223344DD),  # lwl
    (0x26, 0x00000001, 0x11223344, 0xAABBCCDD, 0xAABB1122),  # lwr
    (0x22, 0x00000003, 0x11223344, 0xAABBCCDD, 0x44BBCCDD),
    (0x26, 0x00000003, 0x11223344, 0xAABBCCDD, 0x11223344),
]


@pytest.mark.parametrize(("opcode", "addr", "word", "rt_before", "rt_after"), LOAD_EXAMPLES)
def test_loads(mips: MipsVerifier, opcode: int, addr: int, word: int, rt_before: int, rt_after: int) -> None:
    base = (addr + 0x10) & M32  # rs + (-16) == addr
    pre = changed(BASE, r5=base, r6=rt_before)
    pre, _, post_hash = run(mips, pre, itype(opcode, 5, 6, -16), {addr & ~3: word}, data_addr=addr)
    assert post_hash == advanced(pre, r6=rt_after).hash()


STORE_EXAMPLES = [
    # (opcode, address, memory word before, rt, memory word after)
    (0x28, 0x0FFFFFFF, 0x11223344, 0xAABBCCDD, 0x112233DD),  # sb
    (0x29, 0x10000002, 0x11223344, 0xAABBCCDD, 0x1122CCDD),  # sh
    (0x2B, 0xFFFFFFFC, 0x11223344, 0xAABBCCDD, 0xAABBCCDD),  # sw
    (0x2A, 0x00000001, 0x11223344, 0xAABBCCDD, 0x11AABBCC),  # swl
    (0x2E, 0x00000001, 0x11223344, 0xAABBCCDD, 0xCCDD3344),  # swr
    (0x2A, 0x00000000, 0x11223344, 0xAABBCCDD, 0xAABBCCDD),
    (0x2E, 0x00000003, 0x11223344, 0xAABBCCDD, 0xAABBCCDD),
]


@pytest.mark.parametrize(("opcode", "addr", "before", "rt", "after"), STORE_EXAMPLES)
def test_stores(mips: MipsVerifier, opcode: int, addr: int, before: int, rt: int, after: int) -> None:
    pre = changed(BASE, r5=addr, r6=rt)
    pre, memory, post_hash = run(mips, pre, itype(opcode, 5, 6, 0), {addr & ~3: before}, data_addr=addr)
    memory.write_word(addr & ~3, after)
    assert post_hash == advanced(pre, mem_root=memory.merkle_root()).hash()


def test_sc_stores_and_sets_rt(mips: MipsVerifier) -> None:
    pre = changed(BASE, r5=0x7FFFCFF0, r6=0xDEADBEEF)
    pre, memory, post_hash = run(mips, pre, itype(0x38, 5, 6, 0), {0x7FFFCFF0: 0}, data_addr=0x7FFFCFF0)
    memory.write_word(0x7FFFCFF0, 0xDEADBEEF)
    assert post_hash == advanced(pre, mem_root=memory.merkle_root(), r6=1).hash()


def test_store_into_the_instruction_leaf(mips: MipsVerifier) -> None:
    pre = changed(BASE, r5=PC + 8, r6=0x01020304)
    pre, memory, post_hash = run(mips, pre, itype(0x2B, 5, 6, 0), data_addr=PC + 8)
    memory.write_word(PC + 8, 0x01020304)
    assert post_hash == advanced(pre, mem_root=memory.merkle_root()).hash()


@pytest.mark.parametrize(
    ("opcode", "addr"),
    [
        (0x23, 0x1002),
        (0x30, 0x1001),
        (0x21, 0x1001),
        (0x25, 0x1003),
        (0x2B, 0x1003),
        (0x38, 0x1002),
        (0x29, 1),
    ],
)
def test_unaligned_accesses_trap_without_a_data_proof(mips: MipsVerifier, opcode: int, addr: int) -> None:
    pre, _, post_hash = run(mips, changed(BASE, r5=addr), itype(opcode, 5, 6, 0))
    assert post_hash == trapped(pre, 0xF3).hash()


# ---------------------------------------------------------------- syscalls

SYSCALL = special(12)
SYSCALL_EXAMPLES = [
    # (v0, a0, a1, a2, v0 after, a3 after, other changes)
    (4090, 0, 1, 0, 0x40000000, 0, {"heap": 0x40001000}),  # mmap rounds up to pages
    (4090, 0, 0x2000, 0, 0x40000000, 0, {"heap": 0x40002000}),
    (4090, 0, M32, 0, 0x40000000, 0, {}),  # the size rounds up to 2^32: heap wraps to itself
    (4090, 0x50000000, 0x1000, 0, 0x50000000, 0, {}),  # a hint is returned, heap unchanged
    (4045, 0, 0, 0, 0x60000000, 0, {}),  # brk
    (4120, 0, 0, 0, 1, 0, {}),  # clone
    (4004, 1, 0x1000, 12, 12, 0, {}),  # write stdout
    (4004, 2, 0x1000, 5, 5, 0, {}),  # write stderr
    (4004, 3, 0x1000, 5, M32, 9, {}),  # write: EBADF
    (4003, 0, 0x1000, 5, 0, 0, {}),  # read stdin: end of file
    (4003, 4, 0x1000, 5, M32, 9, {}),  # read: EBADF
    (4055, 0, 3, 0, 0, 0, {}),  # fcntl F_GETFL
    (4055, 2, 3, 0, 1, 0, {}),
    (4055, 7, 3, 0, M32, 9, {}),
    (4055, 1, 4, 0, M32, 22, {}),  # fcntl: EINVAL
    (4999, 0, 0, 0, M32, 89, {}),  # ENOSYS
]


@pytest.mark.parametrize(("v0", "a0", "a1", "a2", "v0_after", "a3_after", "changes"), SYSCALL_EXAMPLES)
def test_syscalls(
    mips: MipsVerifier, v0: int, a0: int, a1: int, a2: int, v0_after: int, a3_after: int, changes: dict
) -> None:
    pre = changed(BASE, r2=v0, r4=a0, r5=a1, r6=a2, r7=0x77)
    pre, _, post_hash = run(mips, pre, SYSCALL)
    assert post_hash == advanced(pre, r2=v0_after, r7=a3_after, **changes).hash()


def test_exit_group_changes_only_the_exit_fields(mips: MipsVerifier) -> None:
    pre, _, post_hash = run(mips, changed(BASE, r2=4246, r4=0x1FE), SYSCALL)
    assert post_hash == trapped(pre, 0xFE).hash()


# ---------------------------------------------------------------- forged witnesses


def honest_store_witness() -> tuple[bytes, bytes]:
    memory = Memory()
    memory.write_word(PC, itype(0x2B, 5, 6, 0))
    memory.write_word(0x10000040, 0x55)
    pre = changed(BASE, mem_root=memory.merkle_root(), r5=0x10000040, r6=9)
    return pre.encode(), memory.proof(PC) + memory.proof(0x10000040)


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


@pytest.mark.parametrize(
    ("what", "error"),
    [
        ("instruction leaf", "InvalidMemoryProof"),
        ("instruction sibling", "InvalidMemoryProof"),
        ("data leaf", "InvalidMemoryProof"),
        ("top data sibling", "InvalidMemoryProof"),
        ("memRoot byte", "InvalidMemoryProof"),
        ("short state", "MalformedWitness"),
        ("long state", "MalformedWitness"),
        ("short proof", "MalformedWitness"),
        ("long proof", "MalformedWitness"),
        ("exited byte 2", "MalformedWitness"),
    ],
)
def test_forged_witnesses_revert(mips: MipsVerifier, what: str, error: str) -> None:
    state, proof = honest_store_witness()
    assert len(mips.step(state, proof)) == 32  # the honest witness goes through
    state, proof = {
        "instruction leaf": (state, flip(proof, 3)),
        "instruction sibling": (state, flip(proof, 32 * 9)),
        "data leaf": (state, flip(proof, 896 + 5)),
        "top data sibling": (state, flip(proof, 896 + 27 * 32)),
        "memRoot byte": (flip(state, 0), proof),
        "short state": (state[:-1], proof),
        "long state": (state + b"\x00", proof),
        "short proof": (state, proof[:-32]),
        "long proof": (state, proof + bytes(32)),
        "exited byte 2": (state[:89] + b"\x02" + state[90:], proof),
    }[what]
    with pytest.raises(ProverError, match=error):
        mips.step(state, proof)


def test_non_canonical_calldata_reverts(mips: MipsVerifier) -> None:
    """Calldata the ABI decoder accepts but that is not the canonical layout: trailing bytes, or
    the proof moved 32 bytes further (its head offset adjusted). A truncated call does not even
    decode (a revert without data)."""
    state, proof = honest_store_witness()
    calldata = mips.step_calldata(state, proof)
    proof_at = 4 + 0x160
    moved_proof = (
        calldata[:36] + (0x180).to_bytes(32, "big") + calldata[68:proof_at] + bytes(32) + calldata[proof_at:]
    )
    for forged, reason in [
        (calldata + bytes(32), "MalformedWitness()"),
        (moved_proof, "MalformedWitness()"),
        (calldata[:-1], "reverted without a reason"),
    ]:
        with pytest.raises(TransactionFailed) as failure:
            mips.w3.eth.call({"to": mips.address, "data": "0x" + forged.hex()})
        assert decode_revert(revert_data(failure.value)) == reason
