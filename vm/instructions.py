"""The reference stepper: docs/machine.md "One step", instruction by instruction.

`execute` runs up to `max_steps` steps of a machine in place. It is the one definition of the
semantics in Python: `Machine.step()` calls it for one step (after taking the witness) and
`Machine.run_reference()` for many; the native executor (vm/native.c) is tested against it.

The loop keeps the state in local variables (CPython is several times faster with locals than with
attribute access) and is laid out as the contract is: fetch, then decode by opcode (SPECIAL by
funct, SPECIAL2, jumps, branches, immediates, loads and stores), then the common end of an
instruction (`pc = next_pc; next_pc += 4`). A trap leaves every field but `step`, `exited` and
`exit_code` as it was before the instruction.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from vm.memory import PAGE_BITS, PAGE_SIZE, Memory
from vm.state import State

M32 = 0xFFFFFFFF

# Trap exit codes (docs/machine.md, "Traps").
INVALID_INSTRUCTION = 0xF1
DIVISION_BY_ZERO = 0xF2
UNALIGNED_ACCESS = 0xF3
UNALIGNED_PC = 0xF4

# Syscall numbers (MIPS o32 Linux) and results.
SYS_EXIT_GROUP = 4246
SYS_MMAP = 4090
SYS_BRK = 4045
SYS_CLONE = 4120
SYS_WRITE = 4004
SYS_READ = 4003
SYS_FCNTL = 4055
BRK_START = 0x60000000
EBADF = 9
EINVAL = 22
ENOSYS = 89
F_GETFL = 3

# Primary opcodes of the loads and stores (their data word needs a memory proof).
LOAD_OPCODES = frozenset((0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x30))
STORE_OPCODES = frozenset((0x28, 0x29, 0x2A, 0x2B, 0x2E, 0x38))
MEMORY_OPCODES = LOAD_OPCODES | STORE_OPCODES

# The most bytes of one write syscall kept in the off-chain output log (a guest may pass any size).
OUTPUT_LIMIT = 1 << 20

OutputSink = Callable[[int, bytes], None]

_word = struct.Struct(">I")
assert PAGE_BITS == 12 and PAGE_SIZE == 4096  # spelled out as literals in execute()


def sign32(value: int) -> int:
    """The 32-bit pattern `value` as a signed integer."""
    return value - ((value & 0x80000000) << 1)


def data_address(insn: int, registers: list[int]) -> int | None:
    """The effective address of a load or store instruction (None for any other instruction)."""
    if insn >> 26 not in MEMORY_OPCODES:
        return None
    return (registers[(insn >> 21) & 31] + ((insn & 0xFFFF) ^ 0x8000) - 0x8000) & M32


def execute(
    state: State, memory: Memory, max_steps: int | None = None, output: OutputSink | None = None
) -> int:
    """Run until the machine exits or `max_steps` steps are done; returns the steps executed.

    `output(fd, data)` receives the bytes of write syscalls to stdout/stderr (at most OUTPUT_LIMIT
    per call); they are not part of the state. The loop spells out its constants (32-bit mask,
    page bits) because a literal is faster than a global in CPython's hot loop.
    """
    if state.exited:
        return 0
    regs = state.registers
    pages = memory.pages
    dirty = memory.dirty
    read_word = _word.unpack_from
    write_word = _word.pack_into
    pc, npc, lo, hi, heap = state.pc, state.next_pc, state.lo, state.hi, state.heap
    first = step = state.step
    end = step + max_steps if max_steps is not None else 1 << 64
    trap = 0
    exit_code = -1

    while step < end:
        step += 1
        if pc & 3:
            trap = UNALIGNED_PC
            break
        page = pages.get(pc >> 12)
        insn = read_word(page, pc & 0xFFF)[0] if page is not None else 0
        op = insn >> 26

        if op == 0:  # ------------------------------------------------------------ SPECIAL
            funct = insn & 0x3F
            rs = regs[(insn >> 21) & 31]
            rt = regs[(insn >> 16) & 31]
            if funct == 33 or funct == 32:  # addu, add (no overflow trap, as cannon)
                value = (rs + rt) & 0xFFFFFFFF
            elif funct == 0:  # sll
                value = (rt << ((insn >> 6) & 31)) & 0xFFFFFFFF
            elif funct == 35 or funct == 34:  # subu, sub
                value = (rs - rt) & 0xFFFFFFFF
            elif funct == 37:  # or
                value = rs | rt
            elif funct == 36:  # and
                value = rs & rt
            elif funct == 43:  # sltu
                value = 1 if rs < rt else 0
            elif funct == 42:  # slt: flipping the sign bits orders signed values as unsigned
                value = 1 if rs ^ 0x80000000 < rt ^ 0x80000000 else 0
            elif funct == 2:  # srl
                value = rt >> ((insn >> 6) & 31)
            elif funct == 3:  # sra
                value = (((rt ^ 0x80000000) - 0x80000000) >> ((insn >> 6) & 31)) & 0xFFFFFFFF
            elif funct == 38:  # xor
                value = rs ^ rt
            elif funct == 39:  # nor
                value = (rs | rt) ^ 0xFFFFFFFF
            elif funct == 4:  # sllv
                value = (rt << (rs & 31)) & 0xFFFFFFFF
            elif funct == 6:  # srlv
                value = rt >> (rs & 31)
            elif funct == 7:  # srav
                value = (((rt ^ 0x80000000) - 0x80000000) >> (rs & 31)) & 0xFFFFFFFF
            elif funct == 8:  # jr
                pc, npc = npc, rs
                continue
            elif funct == 9:  # jalr: the link is written after the target was read
                rd = (insn >> 11) & 31
                link = (pc + 8) & 0xFFFFFFFF
                pc, npc = npc, rs
                if rd:
                    regs[rd] = link
                continue
            elif funct == 10 or funct == 11:  # movz, movn
                if (rt == 0) == (funct == 10):
                    value = rs
                else:
                    pc, npc = npc, (npc + 4) & 0xFFFFFFFF
                    continue
            elif funct == 16:  # mfhi
                value = hi
            elif funct == 18:  # mflo
                value = lo
            elif funct == 17 or funct == 19:  # mthi, mtlo
                if funct == 17:
                    hi = rs
                else:
                    lo = rs
                pc, npc = npc, (npc + 4) & 0xFFFFFFFF
                continue
            elif 24 <= funct <= 27:  # mult, multu, div, divu
                if funct == 24:
                    product = (sign32(rs) * sign32(rt)) & 0xFFFFFFFFFFFFFFFF
                    hi, lo = product >> 32, product & 0xFFFFFFFF
                elif funct == 25:
                    product = rs * rt
                    hi, lo = product >> 32, product & 0xFFFFFFFF
                elif rt == 0:
                    trap = DIVISION_BY_ZERO
                    break
                elif funct == 26:
                    # Truncation toward zero; the remainder takes the dividend's sign.
                    a, b = sign32(rs), sign32(rt)
                    quotient = abs(a) // abs(b)
                    if (a < 0) != (b < 0):
                        quotient = -quotient
                    lo, hi = quotient & 0xFFFFFFFF, (a - quotient * b) & 0xFFFFFFFF
                else:
                    lo, hi = rs // rt, rs % rt
                pc, npc = npc, (npc + 4) & 0xFFFFFFFF
                continue
            elif funct == 12:  # syscall
                number = regs[2]
                a0 = regs[4]
                if number == SYS_EXIT_GROUP:
                    exit_code = a0 & 0xFF
                    break
                a1 = regs[5]
                v0 = errno = 0
                if number == SYS_MMAP:
                    if a0 == 0:
                        v0 = heap
                        heap = (heap + ((a1 + 0xFFF) & ~0xFFF)) & 0xFFFFFFFF
                    else:
                        v0 = a0
                elif number == SYS_BRK:
                    v0 = BRK_START
                elif number == SYS_CLONE:
                    v0 = 1
                elif number == SYS_WRITE:
                    if a0 == 1 or a0 == 2:
                        v0 = regs[6]
                        if output is not None:
                            size = min(v0, OUTPUT_LIMIT, (1 << 32) - a1)
                            output(a0, memory.read(a1, size))
                    else:
                        v0, errno = 0xFFFFFFFF, EBADF
                elif number == SYS_READ:
                    if a0 != 0:
                        v0, errno = 0xFFFFFFFF, EBADF
                elif number == SYS_FCNTL:
                    if a1 != F_GETFL:
                        v0, errno = 0xFFFFFFFF, EINVAL
                    elif a0 == 1 or a0 == 2:
                        v0 = 1
                    elif a0 != 0:
                        v0, errno = 0xFFFFFFFF, EBADF
                else:
                    v0, errno = 0xFFFFFFFF, ENOSYS
                regs[2] = v0
                regs[7] = errno
                pc, npc = npc, (npc + 4) & 0xFFFFFFFF
                continue
            elif funct == 15:  # sync
                pc, npc = npc, (npc + 4) & 0xFFFFFFFF
                continue
            else:
                trap = INVALID_INSTRUCTION
                break
            rd = (insn >> 11) & 31
            if rd:
                regs[rd] = value
            pc, npc = npc, (npc + 4) & 0xFFFFFFFF
            continue

        if op >= 0x20:  # ------------------------------------------------- loads and stores
            addr = (regs[(insn >> 21) & 31] + ((insn & 0xFFFF) ^ 0x8000) - 0x8000) & 0xFFFFFFFF
            rt_index = (insn >> 16) & 31
            if op == 0x23 or op == 0x30:  # lw, ll
                if addr & 3:
                    trap = UNALIGNED_ACCESS
                    break
                page = pages.get(addr >> 12)
                if rt_index:
                    regs[rt_index] = read_word(page, addr & 0xFFF)[0] if page is not None else 0
                pc, npc = npc, (npc + 4) & 0xFFFFFFFF
                continue
            if op == 0x28 or op == 0x20 or op == 0x24:  # sb, lb, lbu: the common byte accesses
                page_index = addr >> 12
                page = pages.get(page_index)
                if op == 0x28:
                    if page is None:
                        page = pages[page_index] = bytearray(4096)
                    dirty.add(page_index)
                    page[addr & 0xFFF] = regs[rt_index] & 0xFF
                elif rt_index:
                    value = page[addr & 0xFFF] if page is not None else 0
                    regs[rt_index] = ((value ^ 0x80) - 0x80) & 0xFFFFFFFF if op == 0x20 else value
                pc, npc = npc, (npc + 4) & 0xFFFFFFFF
                continue
            if op not in MEMORY_OPCODES:
                trap = INVALID_INSTRUCTION
                break
            if (op == 0x21 or op == 0x25 or op == 0x29) and addr & 1:
                trap = UNALIGNED_ACCESS
                break
            if (op == 0x2B or op == 0x38) and addr & 3:
                trap = UNALIGNED_ACCESS
                break
            word_addr = addr & ~3
            page_index = word_addr >> 12
            page = pages.get(page_index)
            mem = read_word(page, word_addr & 0xFFF)[0] if page is not None else 0
            rt = regs[rt_index]
            byte_shift = 24 - (addr & 3) * 8  # right of the addressed byte
            half_shift = 16 - (addr & 2) * 8  # right of the addressed halfword
            lane = (addr & 3) * 8  # left of the addressed byte
            if op < 0x28:  # lh, lhu, lwl, lwr
                if op == 0x21:  # lh
                    value = (mem >> half_shift) & 0xFFFF
                    value = ((value ^ 0x8000) - 0x8000) & 0xFFFFFFFF
                elif op == 0x25:  # lhu
                    value = (mem >> half_shift) & 0xFFFF
                elif op == 0x22:  # lwl
                    value = (rt & ~(0xFFFFFFFF << lane) & 0xFFFFFFFF) | ((mem << lane) & 0xFFFFFFFF)
                else:  # lwr
                    value = (rt & ~(0xFFFFFFFF >> byte_shift) & 0xFFFFFFFF) | (mem >> byte_shift)
                if rt_index:
                    regs[rt_index] = value
                pc, npc = npc, (npc + 4) & 0xFFFFFFFF
                continue
            if op == 0x2B or op == 0x38:  # sw, sc (the other stores: sh, swl, swr)
                mem = rt
            elif op == 0x29:  # sh
                mem = (mem & ~(0xFFFF << half_shift) & 0xFFFFFFFF) | ((rt & 0xFFFF) << half_shift)
            elif op == 0x2A:  # swl
                mem = (mem & ~(0xFFFFFFFF >> lane) & 0xFFFFFFFF) | (rt >> lane)
            else:  # swr
                mem = (mem & ~(0xFFFFFFFF << byte_shift) & 0xFFFFFFFF) | ((rt << byte_shift) & 0xFFFFFFFF)
            if page is None:
                page = pages[page_index] = bytearray(4096)
            dirty.add(page_index)
            write_word(page, word_addr & 0xFFF, mem)
            if op == 0x38 and rt_index:  # sc always succeeds
                regs[rt_index] = 1
            pc, npc = npc, (npc + 4) & 0xFFFFFFFF
            continue

        if op >= 8:
            if op >= 16:
                if op != 0x1C:
                    trap = INVALID_INSTRUCTION
                    break
                # ------------------------------------------------------------ SPECIAL2
                funct = insn & 0x3F
                rs = regs[(insn >> 21) & 31]
                if funct == 2:  # mul
                    value = (rs * regs[(insn >> 16) & 31]) & 0xFFFFFFFF
                elif funct == 0x20:  # clz
                    value = 32 - rs.bit_length()
                elif funct == 0x21:  # clo
                    value = 32 - (rs ^ 0xFFFFFFFF).bit_length()
                else:
                    trap = INVALID_INSTRUCTION
                    break
                rd = (insn >> 11) & 31
                if rd:
                    regs[rd] = value
                pc, npc = npc, (npc + 4) & 0xFFFFFFFF
                continue
            # -------------------------------------------------------------------- immediates
            rs = regs[(insn >> 21) & 31]
            imm = insn & 0xFFFF
            if op == 9 or op == 8:  # addiu, addi (no overflow trap, as cannon)
                value = (rs + (imm ^ 0x8000) - 0x8000) & 0xFFFFFFFF
            elif op == 15:  # lui
                value = imm << 16
            elif op == 13:  # ori
                value = rs | imm
            elif op == 12:  # andi
                value = rs & imm
            elif op == 10:  # slti
                value = 1 if ((rs ^ 0x80000000) - 0x80000000) < (imm ^ 0x8000) - 0x8000 else 0
            elif op == 11:  # sltiu: unsigned against the sign-extended immediate
                value = 1 if rs < ((imm ^ 0x8000) - 0x8000) & 0xFFFFFFFF else 0
            else:  # xori
                value = rs ^ imm
            rt_index = (insn >> 16) & 31
            if rt_index:
                regs[rt_index] = value
            pc, npc = npc, (npc + 4) & 0xFFFFFFFF
            continue

        if op >= 4 or op == 1:  # ---------------------------------------------------- branches
            # Registers hold unsigned 32-bit values: a negative one is >= 0x80000000.
            rs = regs[(insn >> 21) & 31]
            if op == 5:  # bne
                taken = rs != regs[(insn >> 16) & 31]
            elif op == 4:  # beq
                taken = rs == regs[(insn >> 16) & 31]
            elif op == 6:  # blez
                taken = rs == 0 or rs >= 0x80000000
            elif op == 7:  # bgtz
                taken = 0 < rs < 0x80000000
            else:
                rt_field = (insn >> 16) & 31
                if rt_field == 0:  # bltz
                    taken = rs >= 0x80000000
                elif rt_field == 1:  # bgez
                    taken = rs < 0x80000000
                else:
                    trap = INVALID_INSTRUCTION
                    break
            if taken:
                pc, npc = npc, (pc + 4 + (((insn & 0xFFFF) ^ 0x8000) - 0x8000) * 4) & 0xFFFFFFFF
            else:
                pc, npc = npc, (npc + 4) & 0xFFFFFFFF
            continue

        # ---------------------------------------------------------------- j (2), jal (3)
        target = ((pc + 4) & 0xF0000000) | ((insn & 0x03FFFFFF) << 2)
        if op == 3:
            regs[31] = (pc + 8) & 0xFFFFFFFF
        pc, npc = npc, target

    state.pc, state.next_pc, state.lo, state.hi, state.heap, state.step = pc, npc, lo, hi, heap, step
    if trap:
        state.exited, state.exit_code = 1, trap
    elif exit_code >= 0:
        state.exited, state.exit_code = 1, exit_code
    return step - first
