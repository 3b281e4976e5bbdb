"""ELF loading: segments, bss, entry point, and one-line errors for files the VM cannot load."""

import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from vm_guest import build_c, zig_available

from vm import ElfError, Machine
from vm.elf import load_segments

pytestmark = pytest.mark.skipif(not zig_available(), reason="ziglang is not installed")

SOURCE = r"""
static volatile int factor = 5;
static int table[1000];  /* bss */
static const char message[] = "sum done\n";
void _start(void) {
    int sum = 0;
    for (int i = 0; i < 1000; i++) { table[i] += i; sum += table[i] * factor; }
    sys_write(1, message, sizeof message - 1);
    sys_exit(sum & 0x7f);
}
"""


@pytest.fixture(scope="module")
def elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c(SOURCE, tmp_path_factory.mktemp("elf"))


def test_runs_a_compiled_program(elf: Path) -> None:
    machine = Machine.from_elf(elf)
    entry, _ = load_segments(elf)
    assert machine.state.pc == entry and machine.state.next_pc == entry + 4
    machine.state.registers[29] = 0x7FFFD000
    machine.run()
    assert (machine.state.exited, machine.state.exit_code) == (1, sum(i * 5 for i in range(1000)) & 0x7F)
    assert machine.stdout() == b"sum done\n"
    fast = Machine.from_elf(elf)
    fast.state.registers[29] = 0x7FFFD000
    fast.run()
    assert fast.state.encode() == machine.state.encode()


def test_bss_is_zeroed(elf: Path) -> None:
    with elf.open("rb") as stream:
        headers = [seg.header for seg in ELFFile(stream).iter_segments() if seg["p_type"] == "PT_LOAD"]
    _, segments = load_segments(elf)
    with_bss = [
        (header, data)
        for header, (_, data) in zip(headers, segments, strict=True)
        if header.p_memsz > header.p_filesz
    ]
    assert with_bss
    for header, data in with_bss:
        assert len(data) == header.p_memsz and not any(data[header.p_filesz :])


def patched(elf: Path, tmp_path: Path, offset: int, fmt: str, value: int) -> Path:
    data = bytearray(elf.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    path = tmp_path / "patched.elf"
    path.write_bytes(bytes(data))
    return path


def program_header(elf: Path, index: int) -> int:
    data = elf.read_bytes()
    (phoff,) = struct.unpack_from(">I", data, 28)
    (phentsize,) = struct.unpack_from(">H", data, 42)
    return phoff + index * phentsize


def load_indices(elf: Path) -> list[int]:
    data = elf.read_bytes()
    (count,) = struct.unpack_from(">H", data, 44)
    return [i for i in range(count) if struct.unpack_from(">I", data, program_header(elf, i))[0] == 1]


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "message"),
    [
        (4, "B", 2, "64-bit"),  # EI_CLASS
        (5, "B", 1, "little-endian"),  # EI_DATA
        (18, ">H", 3, "EM_386"),  # e_machine
        (16, ">H", 1, "ET_REL"),  # e_type
        (0, "B", 0, "not an ELF file"),
    ],
)
def test_header_errors(elf: Path, tmp_path: Path, offset: int, fmt: str, value: int, message: str) -> None:
    with pytest.raises(ElfError, match=message) as error:
        Machine.from_elf(patched(elf, tmp_path, offset, fmt, value))
    assert "\n" not in str(error.value)


def test_overlapping_segments(elf: Path, tmp_path: Path) -> None:
    first, second = load_indices(elf)[:2]
    (vaddr,) = struct.unpack_from(">I", elf.read_bytes(), program_header(elf, first) + 8)
    path = patched(elf, tmp_path, program_header(elf, second) + 8, ">I", vaddr)
    with pytest.raises(ElfError, match="overlap"):
        load_segments(path)


def test_segment_out_of_range(elf: Path, tmp_path: Path) -> None:
    path = patched(elf, tmp_path, program_header(elf, load_indices(elf)[0]) + 8, ">I", 0xFFFFFF00)
    with pytest.raises(ElfError, match="leaves 4 GiB"):
        load_segments(path)


def test_truncated_files(elf: Path, tmp_path: Path) -> None:
    data = elf.read_bytes()
    for size in (10, 60, len(data) // 2):
        path = tmp_path / f"cut{size}.elf"
        path.write_bytes(data[:size])
        with pytest.raises(ElfError):
            load_segments(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match="cannot read"):
        Machine.from_elf(tmp_path / "nothing.elf")
