"""Build the guest ELFs: `python -m prover.task.guest.build [--out PATH] [--node-out PATH]`.

Two programs come from the same sources: guest.elf runs a whole model, node.elf (built with
NODE_PROGRAM defined, which only changes the entry in start.c) runs one node of a multi-phase
game's node task (docs/memory-map.md, "Node tasks").

The compiler is the PyPI `ziglang` package pinned in the dev extra (clang + lld + compiler_rt in
one wheel), so the build is the same on every machine. The flags select big-endian MIPS32 release 1
without FPU (soft float through compiler_rt), position-dependent code without the abicalls
convention, no division-by-zero traps (`teq`), no debug information, no build id and sources named
relative to this directory: the output is a pure function of the sources and the compiler version.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

GUEST_DIR = Path(__file__).resolve().parent
GUEST_ELF = GUEST_DIR / "guest.elf"
NODE_ELF = GUEST_DIR / "node.elf"
NODE_PROGRAM_FLAGS = ("-DNODE_PROGRAM",)
SOURCES = ("start.c", "interp.c", "model.c", "check.c", "ops_int8.c", "ops_f32.c", "ops_move.c", "softmath.c")
LINKER_SCRIPT = "guest.ld"

COMPILE_FLAGS = (
    "-target", "mips-freestanding-eabi",
    "-mcpu=mips32",
    "-msoft-float",
    "-O2",
    "-std=c11",
    "-Wall", "-Wextra", "-Werror",
    "-ffreestanding",
    "-fno-pic",
    # zig's driver turns abicalls on after the user's -mno-abicalls; the last feature flag wins.
    "-Xclang", "-target-feature", "-Xclang", "+noabicalls",
    "-mno-check-zero-division",
    "-ffp-contract=off",
    "-fomit-frame-pointer",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-g0",
    "-static",
)  # fmt: skip
LINK_FLAGS = (
    "-Wl,-e,_start",
    "-Wl,--build-id=none",
    "-Wl,--strip-all",
)  # fmt: skip


def compiler_command() -> list[str]:
    """`zig cc` from the ziglang wheel in this interpreter's environment."""
    return [sys.executable, "-m", "ziglang", "cc"]


def build(out: Path = GUEST_ELF, node_program: bool = False) -> Path:
    """Compile and link the guest (with `node_program`, the single-node program) into `out`
    (written atomically) and return its path."""
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="guest-build-") as tmp:
        target = Path(tmp) / "guest.elf"
        command = [
            *compiler_command(),
            *COMPILE_FLAGS,
            *(NODE_PROGRAM_FLAGS if node_program else ()),
            f"-ffile-prefix-map={GUEST_DIR}=.",
            *LINK_FLAGS,
            "-T", LINKER_SCRIPT,
            *SOURCES,
            "-o", str(target),
        ]  # fmt: skip
        result = subprocess.run(command, cwd=GUEST_DIR, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"guest build failed:\n{result.stdout}{result.stderr}")
        partial = out.with_name(out.name + ".tmp")
        shutil.copyfile(target, partial)
        os.replace(partial, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GUEST_ELF, help="where to write the whole-model ELF")
    parser.add_argument("--node-out", type=Path, default=NODE_ELF, help="where to write the single-node ELF")
    args = parser.parse_args()
    print(build(args.out))
    print(build(args.node_out, node_program=True))


if __name__ == "__main__":
    main()
