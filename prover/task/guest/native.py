"""The guest's C sources built for the host with the system C compiler, for testing without the VM.

The same interpreter code runs, minus start.c (the MIPS entry point and syscalls): Python lays the
three regions out in buffers exactly as they sit in VM memory (32-byte header leaf with the
big-endian length, then the payload) and calls `guest_run` through ctypes. Tests compare it with the
numpy engine on many inputs in seconds, and fuzz the validation with sanitizers on.
"""

import ctypes
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from prover.task.guest.build import GUEST_DIR, SOURCES

HOST_SOURCES = tuple(source for source in SOURCES if source != "start.c")
REGION_HEADER = 32
ARENA_SIZE = 1 << 25
OUTPUT_CAPACITY = REGION_HEADER + 4 + ARENA_SIZE  # the output tensor lives in the arena: it fits
HOST_FLAGS = ("-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-fno-strict-aliasing")


def region(payload: bytes) -> bytes:
    """A data region as the guest sees it: [u32 length BE][28 zero bytes][payload]."""
    return len(payload).to_bytes(4, "big") + bytes(REGION_HEADER - 4) + payload


@dataclass(frozen=True)
class GuestResult:
    exit_code: int
    output: bytes  # the output payload: u32 class, then the output tensor's bytes (empty on error)

    @property
    def predicted_class(self) -> int:
        return int.from_bytes(self.output[:4], "big")


def build_library(out_dir: Path, sanitize: bool = False) -> Path:
    """Compile the interpreter into a shared library in `out_dir`; with `sanitize`, UBSan traps on
    any undefined behaviour (signed overflow, bad shifts, misaligned access)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no host C compiler (cc/gcc) on PATH")
    flags = list(HOST_FLAGS)
    if sanitize:
        flags += ["-fsanitize=undefined", "-fno-sanitize-recover=all", "-fsanitize-undefined-trap-on-error"]
    library = Path(out_dir) / ("guest_ubsan.so" if sanitize else "guest.so")
    sources = [str(GUEST_DIR / source) for source in HOST_SOURCES]
    subprocess.run(
        [compiler, *flags, "-shared", "-fPIC", *sources, "-o", str(library)],
        check=True,
        capture_output=True,
        text=True,
    )
    return library


def _load_libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return libc


_LIBC = _load_libc()


class GuardedBuffer:
    """Bytes placed so that they end exactly where an inaccessible page begins: a read one byte past
    the end faults (SIGSEGV) instead of silently reading neighbouring memory. Linux / POSIX only."""

    PAGE = 4096
    PROT_NONE, PROT_READ_WRITE = 0, 3
    MAP_PRIVATE_ANONYMOUS = 0x22

    def __init__(self, data: bytes) -> None:
        pages = -(-len(data) // self.PAGE) + 1
        self._size = pages * self.PAGE
        self._base = _LIBC.mmap(None, self._size, self.PROT_READ_WRITE, self.MAP_PRIVATE_ANONYMOUS, -1, 0)
        if self._base in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        guard = self._base + self._size - self.PAGE
        if _LIBC.mprotect(guard, self.PAGE, self.PROT_NONE) != 0:
            raise OSError(ctypes.get_errno(), "mprotect failed")
        self.address = guard - len(data)
        ctypes.memmove(self.address, data, len(data))

    def __del__(self) -> None:
        _LIBC.munmap(self._base, self._size)


class NativeGuest:
    """The interpreter loaded from a library built by `build_library`."""

    def __init__(self, library: Path) -> None:
        self._lib = ctypes.CDLL(str(library))
        self._lib.guest_run.restype = ctypes.c_int
        self._lib.guest_run.argtypes = [
            ctypes.c_void_p,  # input region
            ctypes.c_void_p,  # model region
            ctypes.c_void_p,  # output region
            ctypes.c_void_p,  # arena
            ctypes.c_uint32,  # arena size
        ]
        self._arena = ctypes.create_string_buffer(ARENA_SIZE)
        self._output = ctypes.create_string_buffer(OUTPUT_CAPACITY)

    def run(self, model: bytes, data: bytes) -> GuestResult:
        """Run the guest on a model file and an input payload, each region ending at a guard page."""
        input_region, model_region = GuardedBuffer(region(data)), GuardedBuffer(region(model))
        ctypes.memset(self._output, 0, REGION_HEADER)
        code = self._lib.guest_run(
            input_region.address, model_region.address, self._output, self._arena, ARENA_SIZE
        )
        if code != 0:
            return GuestResult(code, b"")
        output = ctypes.addressof(self._output)
        length = int.from_bytes(ctypes.string_at(output, 4), "big")
        return GuestResult(0, ctypes.string_at(output + REGION_HEADER, length))
