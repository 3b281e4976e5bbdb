"""The fast executor: the same machine as vm/instructions.py, run as compiled basic blocks.

A block is a straight run of instructions starting at some pc, ended by a jump or branch and its
delay slot (or before an instruction the block cannot hold: a syscall, an invalid word, a branch
whose delay slot is itself a jump). Each block becomes one generated Python function; a block that
branches back to its own start loops inside the function while the step budget allows.

Bit-identical results to the reference stepper come from three rules:
- anything unusual is left to the reference stepper, one step at a time: entering a block with
  next_pc != pc + 4 (inside a delay slot), syscalls, traps (a block returns just before an
  instruction that would trap: unaligned access, division by zero), and the last steps of a budget
  smaller than the next block;
- a store into a page that holds compiled code drops that page's blocks, and the running block
  returns right after the store (it may have rewritten its own next instructions);
- the reference steps run here check the same (a store they do is decoded first).

`Machine.run` runs a machine with a new executor. `FastExecutor(machine)` keeps its compiled blocks
between `run` calls; writes to the machine's memory from outside (Memory.write) must be followed by
a new executor.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from vm.instructions import MEMORY_OPCODES, STORE_OPCODES, data_address, execute
from vm.memory import PAGE_BITS, PAGE_MASK

if TYPE_CHECKING:  # Machine runs with this executor: a run-time import would be a cycle
    from vm.machine import Machine

M32 = 0xFFFFFFFF
MAX_BLOCK = 128
_word = struct.Struct(">I")

Block = Callable[..., tuple[int, int, int]]


def _sext16(insn: int) -> int:
    return ((insn & 0xFFFF) ^ 0x8000) - 0x8000


def _signed(expr: str) -> str:
    return f"(({expr} ^ 0x80000000) - 0x80000000)"


def _is_control(insn: int) -> bool:
    op = insn >> 26
    if op == 0:
        return (insn & 0x3F) in (8, 9)
    return op in (1, 2, 3, 4, 5, 6, 7)


def _simple(insn: int, emit: Callable[[str], None], bail: str, after_store: str) -> bool:
    """Emit one non-control instruction; False if the block cannot hold it (nothing emitted).

    `bail` leaves the block before this instruction; `after_store` leaves it right after a store
    into a code page."""
    op = insn >> 26
    rs, rt, rd = (insn >> 21) & 31, (insn >> 16) & 31, (insn >> 11) & 31
    s, t = f"regs[{rs}]", f"regs[{rt}]"
    imm = insn & 0xFFFF
    if op == 0:
        funct = insn & 0x3F
        shamt = (insn >> 6) & 31
        alu = {
            32: f"({s} + {t}) & {M32}",
            33: f"({s} + {t}) & {M32}",
            34: f"({s} - {t}) & {M32}",
            35: f"({s} - {t}) & {M32}",
            36: f"{s} & {t}",
            37: f"{s} | {t}",
            38: f"{s} ^ {t}",
            39: f"({s} | {t}) ^ {M32}",
            42: f"1 if {s} ^ 0x80000000 < {t} ^ 0x80000000 else 0",
            43: f"1 if {s} < {t} else 0",
            0: f"({t} << {shamt}) & {M32}",
            2: f"{t} >> {shamt}",
            3: f"({_signed(t)} >> {shamt}) & {M32}",
            4: f"({t} << ({s} & 31)) & {M32}",
            6: f"{t} >> ({s} & 31)",
            7: f"({_signed(t)} >> ({s} & 31)) & {M32}",
            16: "st.hi",
            18: "st.lo",
        }
        if funct in alu:
            if rd:
                emit(f"regs[{rd}] = {alu[funct]}")
            return True
        if funct in (10, 11):
            if rd:
                emit(f"if {t} {'==' if funct == 10 else '!='} 0: regs[{rd}] = {s}")
            return True
        if funct == 15:
            return True
        if funct == 17:
            emit(f"st.hi = {s}")
            return True
        if funct == 19:
            emit(f"st.lo = {s}")
            return True
        if funct == 24:
            emit(f"p = ({_signed(s)} * {_signed(t)}) & 0xFFFFFFFFFFFFFFFF")
            emit(f"st.hi = p >> 32; st.lo = p & {M32}")
            return True
        if funct == 25:
            emit(f"p = {s} * {t}")
            emit(f"st.hi = p >> 32; st.lo = p & {M32}")
            return True
        if funct == 26:
            emit(f"if {t} == 0: {bail}")
            emit(f"a = {_signed(s)}; b = {_signed(t)}; q = abs(a) // abs(b)")
            emit("if (a < 0) != (b < 0): q = -q")
            emit(f"st.lo = q & {M32}; st.hi = (a - q * b) & {M32}")
            return True
        if funct == 27:
            emit(f"if {t} == 0: {bail}")
            emit(f"st.lo = {s} // {t}; st.hi = {s} % {t}")
            return True
        return False
    if op == 0x1C:
        funct = insn & 0x3F
        exprs = {
            2: f"({s} * {t}) & {M32}",
            0x20: f"32 - {s}.bit_length()",
            0x21: f"32 - ({s} ^ {M32}).bit_length()",
        }
        if funct not in exprs:
            return False
        if rd:
            emit(f"regs[{rd}] = {exprs[funct]}")
        return True
    if 8 <= op <= 15:
        simm = _sext16(insn)
        exprs = {
            8: f"({s} + {simm}) & {M32}",
            9: f"({s} + {simm}) & {M32}",
            10: f"1 if {s} ^ 0x80000000 < {(simm & M32) ^ 0x80000000} else 0",
            11: f"1 if {s} < {simm & M32} else 0",
            12: f"{s} & {imm}",
            13: f"{s} | {imm}",
            14: f"{s} ^ {imm}",
            15: f"{imm << 16}",
        }
        if rt:
            emit(f"regs[{rt}] = {exprs[op]}")
        return True
    if op in (0x20, 0x24, 0x28):  # lb, lbu, sb: one byte, no word merge
        emit(f"a = ({s} + {_sext16(insn)}) & {M32}")
        emit(f"pi = a >> {PAGE_BITS}; pg = pages.get(pi)")
        if op == 0x28:
            emit(f"if pg is None: pg = pages[pi] = bytearray({PAGE_MASK + 1})")
            emit("dirty.add(pi)")
            emit(f"pg[a & {PAGE_MASK}] = {t} & 0xFF")
            emit(f"if pi in code_pages: invalidate(pi); {after_store}")
        elif rt:
            value = f"pg[a & {PAGE_MASK}] if pg is not None else 0"
            emit(f"regs[{rt}] = (({value}) ^ 0x80) - 0x80 & {M32}" if op == 0x20 else f"regs[{rt}] = {value}")
        return True
    if op in MEMORY_OPCODES:
        emit(f"a = ({s} + {_sext16(insn)}) & {M32}")
        if op in (0x23, 0x30, 0x2B, 0x38):
            emit(f"if a & 3: {bail}")
        elif op in (0x21, 0x25, 0x29):
            emit(f"if a & 1: {bail}")
        emit(f"pi = a >> {PAGE_BITS}; pg = pages.get(pi)")
        emit(f"m = unpack(pg, a & {PAGE_MASK & ~3})[0] if pg is not None else 0")
        shift_byte = "(24 - (a & 3) * 8)"
        shift_half = "(16 - (a & 2) * 8)"
        lane = "((a & 3) * 8)"
        loads = {
            0x23: "m",
            0x30: "m",
            0x20: f"((((m >> {shift_byte}) & 0xFF) ^ 0x80) - 0x80) & {M32}",
            0x24: f"(m >> {shift_byte}) & 0xFF",
            0x21: f"((((m >> {shift_half}) & 0xFFFF) ^ 0x8000) - 0x8000) & {M32}",
            0x25: f"(m >> {shift_half}) & 0xFFFF",
            0x22: f"({t} & ~({M32} << {lane}) & {M32}) | ((m << {lane}) & {M32})",
            0x26: f"({t} & ~({M32} >> {shift_byte}) & {M32}) | (m >> {shift_byte})",
        }
        if op in loads:
            if rt:
                emit(f"regs[{rt}] = {loads[op]}")
            return True
        stores = {
            0x2B: t,
            0x38: t,
            0x28: f"(m & ~(0xFF << {shift_byte}) & {M32}) | (({t} & 0xFF) << {shift_byte})",
            0x29: f"(m & ~(0xFFFF << {shift_half}) & {M32}) | (({t} & 0xFFFF) << {shift_half})",
            0x2A: f"(m & ~({M32} >> {lane}) & {M32}) | ({t} >> {lane})",
            0x2E: f"(m & ~({M32} << {shift_byte}) & {M32}) | (({t} << {shift_byte}) & {M32})",
        }
        emit(f"if pg is None: pg = pages[pi] = bytearray({PAGE_MASK + 1})")
        emit("dirty.add(pi)")
        emit(f"pack(pg, a & {PAGE_MASK & ~3}, {stores[op]})")
        if op == 0x38 and rt:
            emit(f"regs[{rt}] = 1")
        emit(f"if pi in code_pages: invalidate(pi); {after_store}")
        return True
    return False


def _with_register_locals(body: str) -> str:
    """The block function around `body`: registers live in locals r0..r31 inside the block, loaded
    on entry and stored back before every return (an unchanged local stores its own value back)."""
    body = re.sub(r"regs\[(\d+)\]", r"r\1", body)
    used = sorted({int(number) for number in re.findall(r"\br(\d+)\b", body)})
    written = sorted({int(number) for number in re.findall(r"\br(\d+) = ", body)})
    store = "".join(f"regs[{number}] = r{number}; " for number in written)
    body = body.replace("return ", store + "return ")
    load = "".join(f"    r{number} = regs[{number}]\n" for number in used)
    return f"def block(regs, pages, dirty, st, budget):\n{load}    n = 0\n    while True:\n{body}"


class FastExecutor:
    """Runs a machine with compiled blocks; results equal the reference stepper's, step for step."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.blocks: dict[int, tuple[Block | None, int]] = {}
        self.code_pages: dict[int, set[int]] = {}
        self._globals = {
            "unpack": _word.unpack_from,
            "pack": _word.pack_into,
            "code_pages": self.code_pages,
            "invalidate": self._invalidate,
        }

    def _invalidate(self, page: int) -> None:
        for pc in self.code_pages.pop(page, ()):
            self.blocks.pop(pc, None)

    def _fetch(self, pc: int) -> int:
        page = self.machine.memory.pages.get(pc >> PAGE_BITS)
        return _word.unpack_from(page, pc & PAGE_MASK)[0] if page is not None else 0

    def _compile(self, start: int) -> tuple[Block | None, int]:
        """The block at `start` and its length in steps (None, 0 if it holds no instruction)."""
        lines: list[str] = []
        indent = ["        "]

        def emit(line: str) -> None:
            lines.append(indent[0] + line)

        pc = start
        count = 0
        end: list[str] | None = None  # the lines that end the block after a jump's delay slot
        loops = False
        while count < MAX_BLOCK:
            insn = self._fetch(pc)
            bail = f"return n + {count}, {pc}, {(pc + 4) & M32}"
            after = f"return n + {count + 1}, {(pc + 4) & M32}, {(pc + 8) & M32}"
            if not _is_control(insn):
                if not _simple(insn, emit, bail, after):
                    break
                count += 1
                pc = (pc + 4) & M32
                continue
            slot_pc = (pc + 4) & M32
            slot = self._fetch(slot_pc)
            if _is_control(slot):
                break
            body: list[str] = []
            op = insn >> 26
            if op in (2, 3):
                target = ((pc + 4) & 0xF0000000) | ((insn & 0x03FFFFFF) << 2)
                if op == 3:
                    body.append(f"regs[31] = {(pc + 8) & M32}")
                next_expr = str(target)
            elif op == 0:
                body.append(f"t = regs[{(insn >> 21) & 31}]")
                rd = (insn >> 11) & 31
                if insn & 0x3F == 9 and rd:
                    body.append(f"regs[{rd}] = {(pc + 8) & M32}")
                next_expr = "t"
            else:
                # Unsigned register values: a negative one is >= 0x80000000.
                rs = f"regs[{(insn >> 21) & 31}]"
                rt_field = (insn >> 16) & 31
                conditions = {
                    4: f"{rs} == regs[{rt_field}]",
                    5: f"{rs} != regs[{rt_field}]",
                    6: f"({rs} == 0 or {rs} >= 0x80000000)",
                    7: f"0 < {rs} < 0x80000000",
                }
                if op == 1:
                    if rt_field not in (0, 1):
                        break
                    conditions[1] = f"{rs} {'>=' if rt_field == 0 else '<'} 0x80000000"
                target = (pc + 4 + _sext16(insn) * 4) & M32
                fall = (pc + 8) & M32
                body.append(f"taken = {conditions[op]}")
                next_expr = f"({target} if taken else {fall})"
                loops = target == start
            slot_lines: list[str] = []
            slot_bail = f"return n + {count + 1}, {slot_pc}, {next_expr}"
            slot_after = f"return n + {count + 2}, {next_expr}, ({next_expr} + 4) & {M32}"
            if not _simple(slot, slot_lines.append, slot_bail, slot_after):
                break
            for line in body + slot_lines:
                emit(line)
            count += 2
            length = count
            if loops:
                end = [
                    "if taken and n + 2 * " + str(length) + " <= budget:",
                    f"    n += {length}",
                    "    continue",
                    f"return n + {length}, {next_expr}, ({next_expr} + 4) & {M32}",
                ]
            elif next_expr == "t":
                end = [f"return n + {length}, t, (t + 4) & {M32}"]
            else:
                end = [f"return n + {length}, {next_expr}, ({next_expr} + 4) & {M32}"]
            break
        if count == 0:
            return None, 0
        if end is None:
            end = [f"return n + {count}, {pc}, {(pc + 4) & M32}"]
        for line in end:
            emit(line)
        source = _with_register_locals("\n".join(lines))
        namespace: dict[str, object] = {}
        exec(compile(source, f"<block {start:#010x}>", "exec"), self._globals, namespace)
        last = (start + 4 * (count - 1)) & M32
        for page in {start >> PAGE_BITS, last >> PAGE_BITS}:
            self.code_pages.setdefault(page, set()).add(start)
        return namespace["block"], count  # type: ignore[return-value]

    def _reference_step(self) -> int:
        """One step by the reference stepper, dropping the blocks of a code page it stores into."""
        machine = self.machine
        state = machine.state
        if not state.pc & 3:
            insn = self._fetch(state.pc)
            if insn >> 26 in STORE_OPCODES:
                addr = data_address(insn, state.registers)
                if addr is not None and addr >> PAGE_BITS in self.code_pages:
                    self._invalidate(addr >> PAGE_BITS)
        return execute(state, machine.memory, 1, machine._collect_output)

    def run(self, max_steps: int | None = None) -> int:
        """Run until exit or `max_steps` steps; returns the steps run."""
        machine = self.machine
        state = machine.state
        memory = machine.memory
        regs = state.registers
        pages = memory.pages
        blocks = self.blocks
        budget = max_steps if max_steps is not None else 1 << 64
        done = 0
        while done < budget and not state.exited:
            pc = state.pc
            if pc & 3 or state.next_pc != (pc + 4) & M32:
                done += self._reference_step()  # a trap, or inside a delay slot
                continue
            entry = blocks.get(pc)
            if entry is None:
                entry = blocks[pc] = self._compile(pc)
            block, length = entry
            if block is None or length > budget - done:
                done += self._reference_step()
                continue
            # `dirty` is re-read: Memory.merkle_root replaces the set.
            count, state.pc, state.next_pc = block(regs, pages, memory.dirty, state, budget - done)
            if count == 0:  # the first instruction would trap
                done += self._reference_step()
                continue
            state.step += count
            done += count
        return done


class SharedBlocksRunner:
    """Runs machine after machine (a Trace runner: `runner(machine, max_steps)`) with one
    FastExecutor, so that the blocks compiled for one serve the next. Compiling a guest's blocks
    costs about as much as a whole int8 MLP inference, and a trace restores a machine per query.

    Why the sharing is sound: a block is a function of the code words it covers and of nothing
    else, and an executor drops the blocks of a page when a store hits it, so between runs its
    blocks are exactly those compiled from the current bytes of its machine's code pages
    (`code_pages`). They are therefore valid for any machine whose code pages hold the same bytes;
    for a machine where one differs (its program, or code another run modified), a fresh executor
    is made."""

    def __init__(self) -> None:
        self.executor: FastExecutor | None = None
        self.fresh_executors = 0  # how many executors were made (1 when every machine shared one)

    def __call__(self, machine: Machine, max_steps: int | None = None) -> int:
        executor = self.executor
        if executor is None or not _same_code(executor, machine):
            executor = self.executor = FastExecutor(machine)
            self.fresh_executors += 1
        executor.machine = machine
        return executor.run(max_steps)

    @property
    def machine(self) -> Machine | None:
        """The machine of the last call: after Trace.record, the run's final machine."""
        return self.executor.machine if self.executor is not None else None


def _same_code(executor: FastExecutor, machine: Machine) -> bool:
    if executor.machine is machine:
        return True
    ours, theirs = executor.machine.memory.pages, machine.memory.pages
    return all(ours.get(page) == theirs.get(page) for page in executor.code_pages)
