"""Small freestanding C programs built for the VM with the ziglang compiler (tests and benchmarks)."""

import subprocess
import sys
from pathlib import Path

FLAGS = (
    "-target", "mips-freestanding-eabi", "-mcpu=mips32", "-msoft-float", "-O2", "-ffreestanding",
    "-fno-pic", "-Xclang", "-target-feature", "-Xclang", "+noabicalls", "-static", "-nostdlib",
    "-Wl,-e,_start", "-Wl,--build-id=none",
)  # fmt: skip

# exit_group and write as inline syscalls, for programs without a libc.
PRELUDE = r"""
static void sys_exit(int code) {
    register int v0 __asm__("$2") = 4246;
    register int a0 __asm__("$4") = code;
    __asm__ volatile("syscall" : : "r"(v0), "r"(a0) : "memory");
    for (;;) {}
}
static int sys_write(int fd, const void *buf, unsigned size) {
    register int v0 __asm__("$2") = 4004;
    register int a0 __asm__("$4") = fd;
    register const void *a1 __asm__("$5") = buf;
    register unsigned a2 __asm__("$6") = size;
    __asm__ volatile("syscall" : "+r"(v0) : "r"(a0), "r"(a1), "r"(a2) : "$7", "memory");
    return v0;
}
"""


def zig_available() -> bool:
    return subprocess.run([sys.executable, "-m", "ziglang", "version"], capture_output=True).returncode == 0


def build_c(source: str, directory: Path, name: str = "program") -> Path:
    """Compile and link `source` (PRELUDE prepended; it defines `void _start(void)`) into an ELF."""
    c_file = directory / f"{name}.c"
    elf = directory / f"{name}.elf"
    c_file.write_text(PRELUDE + source)
    command = [sys.executable, "-m", "ziglang", "cc", *FLAGS, str(c_file), "-o", str(elf)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"build of {c_file} failed:\n{result.stderr}")
    return elf
