"""The committed guest ELFs (the whole-model guest.elf and the single-node node.elf): reproducible
from their sources, loadable at the fixed entry, and made only of instructions the VM executes
(docs/machine.md)."""

from pathlib import Path

import capstone
import pytest
from elftools.elf.constants import P_FLAGS
from elftools.elf.elffile import ELFFile

from prover.task.guest.build import GUEST_ELF, NODE_ELF, build

ENTRY = 0x00400000
PROGRAM_SLOT_END = 0x10000000

# docs/machine.md's instruction list, by capstone mnemonic. Capstone prints some encodings under an
# alias; each alias below names an encoding of a listed instruction (e.g. `move` = `addu rd, rs, $0`,
# `nop` = `sll $0, $0, 0`, `b` = `beq $0, $0`). Deliberately absent: bal / bgezal / bltzal (REGIMM
# with link), teq and the other traps, every FPU and coprocessor instruction, MIPS32r2 additions.
SUPPORTED = {
    "j", "jal", "beq", "bne", "blez", "bgtz", "bltz", "bgez",
    "addi", "addiu", "slti", "sltiu", "andi", "ori", "xori", "lui",
    "sll", "srl", "sra", "sllv", "srlv", "srav", "jr", "jalr", "movz", "movn", "syscall", "sync",
    "mfhi", "mthi", "mflo", "mtlo", "mult", "multu", "div", "divu",
    "add", "addu", "sub", "subu", "and", "or", "xor", "nor", "slt", "sltu",
    "mul", "clz", "clo",
    "lb", "lh", "lwl", "lw", "lbu", "lhu", "lwr", "ll", "sb", "sh", "swl", "sw", "swr", "sc",
}  # fmt: skip
ALIASES = {"move", "nop", "negu", "neg", "not", "beqz", "bnez", "b", "li"}


PROGRAMS = {"guest": (GUEST_ELF, False), "node": (NODE_ELF, True)}  # path, built as the node program
both_programs = pytest.mark.parametrize("program", list(PROGRAMS))


def elf(program: str) -> ELFFile:
    return ELFFile(PROGRAMS[program][0].open("rb"))


def executable_words(program: str) -> list[tuple[int, bytes]]:
    words = []
    for segment in elf(program).iter_segments():
        if segment["p_type"] == "PT_LOAD" and segment["p_flags"] & P_FLAGS.PF_X:
            data = segment.data()
            words += [(segment["p_vaddr"] + i, data[i : i + 4]) for i in range(0, len(data), 4)]
    return words


@both_programs
def test_rebuild_is_byte_identical(tmp_path: Path, program: str) -> None:
    path, node_program = PROGRAMS[program]
    rebuilt = build(tmp_path / path.name, node_program=node_program)
    rebuild = "python -m prover.task.guest.build"
    assert rebuilt.read_bytes() == path.read_bytes(), f"run `{rebuild}` and commit"


@both_programs
def test_elf_is_big_endian_mips32_at_the_fixed_entry(program: str) -> None:
    header = elf(program).header
    assert header["e_ident"]["EI_CLASS"] == "ELFCLASS32"
    assert header["e_ident"]["EI_DATA"] == "ELFDATA2MSB"
    assert header["e_machine"] == "EM_MIPS"
    assert header["e_flags"] & 0xF0000000 == 0x50000000  # EF_MIPS_ARCH_32: MIPS32 release 1
    assert header["e_entry"] == ENTRY


@both_programs
def test_segments_lie_in_the_program_slot(program: str) -> None:
    loads = [s for s in elf(program).iter_segments() if s["p_type"] == "PT_LOAD"]
    assert loads
    assert min(s["p_vaddr"] for s in loads) == ENTRY
    assert all(s["p_vaddr"] + s["p_memsz"] <= PROGRAM_SLOT_END for s in loads)


def unsupported(words: list[tuple[int, bytes]]) -> list[str]:
    """The words among (address, word) pairs that are not instructions the VM executes."""
    disassembler = capstone.Cs(capstone.CS_ARCH_MIPS, capstone.CS_MODE_MIPS32 | capstone.CS_MODE_BIG_ENDIAN)
    found = []
    for address, word in words:
        decoded = list(disassembler.disasm(word, address))
        mnemonic = decoded[0].mnemonic if decoded else f"undecodable {word.hex()}"
        if mnemonic not in SUPPORTED | ALIASES:
            found.append(f"{address:#010x}: {mnemonic}")
        elif word[0] >> 2 == 1 and (word[1] & 0x1F) not in (0, 1):  # REGIMM: only bltz / bgez
            found.append(f"{address:#010x}: REGIMM rt={word[1] & 0x1F}")
    return found


@both_programs
def test_every_instruction_is_supported_by_the_vm(program: str) -> None:
    words = executable_words(program)
    assert len(words) > 1000
    assert unsupported(words) == []


@pytest.mark.parametrize(
    "word",
    [
        0x00A00034,  # teq $5, $0 (what -mcheck-zero-division would emit)
        0x04110004,  # bal (bgezal $0)
        0x04100004,  # bltzal $0
        0x46020000,  # add.s $f0, $f0, $f2
        0xC4400000,  # lwc1 $f0, 0($2)
        0x7C021420,  # seb $2, $2 (MIPS32r2)
        0x0000000D,  # break
    ],
)
def test_the_check_flags_unsupported_encodings(word: int) -> None:
    assert unsupported([(ENTRY, word.to_bytes(4, "big"))]) != []


def test_the_check_passes_supported_encodings() -> None:
    words = [
        0x00851021,
        0x24420001,
        0x8C820000,
        0x04010004,
        0x70851002,
        0x0000000C,
    ]  # addu addiu lw bgez mul syscall
    assert unsupported([(ENTRY, w.to_bytes(4, "big")) for w in words]) == []


@both_programs
def test_the_guest_never_touches_k0_or_k1(program: str) -> None:
    """Fault injection (docs/cli.md) flips $k0 in a dishonest party's trace and relies on the guest
    never reading or writing $k0 / $k1, so that the corrupted run ends with the same output."""
    disassembler = capstone.Cs(capstone.CS_ARCH_MIPS, capstone.CS_MODE_MIPS32 | capstone.CS_MODE_BIG_ENDIAN)
    users = []
    for address, word in executable_words(program):
        for instruction in disassembler.disasm(word, address):
            if "$k0" in instruction.op_str or "$k1" in instruction.op_str:
                users.append(f"{address:#010x}: {instruction.mnemonic} {instruction.op_str}")
    assert users == []
