"""Loading 32-bit big-endian MIPS ELF executables (pyelftools) into memory."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path
from typing import BinaryIO

from elftools.common.exceptions import ELFError as PyElfError
from elftools.construct import ConstructError
from elftools.elf.elffile import ELFFile

from vm.errors import ElfError
from vm.memory import ADDRESS_SPACE, Memory


def _open(stream: BinaryIO, name: str) -> ELFFile:
    try:
        elf = ELFFile(stream)
    except (PyElfError, ConstructError, struct.error) as exc:
        raise ElfError(f"{name}: not an ELF file ({exc})") from None
    if elf.elfclass != 32:
        raise ElfError(f"{name}: {elf.elfclass}-bit ELF, expected 32-bit")
    if elf.little_endian:
        raise ElfError(f"{name}: little-endian ELF, expected big-endian MIPS")
    if elf["e_machine"] != "EM_MIPS":
        raise ElfError(f"{name}: ELF for machine {elf['e_machine']}, expected EM_MIPS")
    if elf["e_type"] != "ET_EXEC":
        raise ElfError(f"{name}: ELF type {elf['e_type']}, expected an executable (ET_EXEC)")
    return elf


def load_segments(path: str | Path) -> tuple[int, list[tuple[int, bytes]]]:
    """The entry point and the (address, bytes) of every PT_LOAD segment, bss as zero bytes.

    Raises ElfError (one line) for other machines, little-endian or 64-bit files, truncated
    files, and segments that overlap or leave the 32-bit address space.
    """
    path = Path(path)
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise ElfError(f"{path}: cannot read ({exc.strerror})") from None
    with stream:
        elf = _open(stream, str(path))
        file_size = path.stat().st_size
        for table, offset, count, size in (
            ("program", elf["e_phoff"], elf["e_phnum"], elf["e_phentsize"]),
            ("section", elf["e_shoff"], elf["e_shnum"], elf["e_shentsize"]),
        ):
            if offset + count * size > file_size:
                raise ElfError(f"{path}: truncated: the {table} header table ends past the end of the file")
        segments: list[tuple[int, bytes]] = []
        try:
            for index, segment in enumerate(elf.iter_segments()):
                if segment["p_type"] != "PT_LOAD":
                    continue
                vaddr, filesz, memsz = segment["p_vaddr"], segment["p_filesz"], segment["p_memsz"]
                if filesz > memsz:
                    raise ElfError(f"{path}: segment {index} has filesz {filesz:#x} > memsz {memsz:#x}")
                if vaddr + memsz > ADDRESS_SPACE:
                    raise ElfError(f"{path}: segment {index} at {vaddr:#x} + {memsz:#x} leaves 4 GiB")
                if segment["p_offset"] + filesz > file_size:
                    raise ElfError(f"{path}: truncated: segment {index} ends past the end of the file")
                data = segment.data()
                segments.append((vaddr, data + bytes(memsz - filesz)))
        except PyElfError as exc:
            raise ElfError(f"{path}: corrupt ELF ({exc})") from None
        except (ConstructError, struct.error, ValueError) as exc:
            raise ElfError(f"{path}: truncated or corrupt ELF ({exc})") from None
        entry = elf["e_entry"]
    ordered = sorted((addr, addr + len(data)) for addr, data in segments if data)
    for (start_a, end_a), (start_b, _) in itertools.pairwise(ordered):
        if start_b < end_a:
            raise ElfError(f"{path}: segments at {start_a:#x}-{end_a:#x} and {start_b:#x} overlap")
    if not segments:
        raise ElfError(f"{path}: no PT_LOAD segment")
    return entry, segments


def load_into(memory: Memory, segments: list[tuple[int, bytes]]) -> None:
    for addr, data in segments:
        memory.write(addr, data)
