"""VM benchmark: instructions per second of the reference stepper and the native executor on an int8
784x500 matrix-vector product built for MIPS32 (ziglang, on the fly), the ratio to unicorn on the
same program when it is installed, the Merkle root of a fresh 2 MiB image, and the witness of a
random step of a 3-million-step run. Times are CPU seconds of this process.

    .venv/bin/python benchmarks/bench_vm.py
"""

import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the C build helper
from vm_guest import build_c

from vm import Machine, Memory
from vm.elf import load_segments
from vm.trace import DEFAULT_INTERVAL, Trace

STACK = 0x7FFFD000
MATVEC = r"""
#define ROWS 500
#define COLS 784
static signed char weights[ROWS * COLS];
static signed char input[COLS];
static int output[ROWS];

void _start(void) {
    unsigned seed = 12345;
    for (int i = 0; i < ROWS * COLS; i++) {
        seed = seed * 1103515245u + 12345u;
        weights[i] = (signed char)(seed >> 16);
    }
    for (int j = 0; j < COLS; j++) {
        seed = seed * 1103515245u + 12345u;
        input[j] = (signed char)(seed >> 16);
    }
    unsigned digest = 0;
    for (int r = 0; r < ROWS; r++) {
        const signed char *row = weights + r * COLS;
        int acc = 0;
        for (int c = 0; c < COLS; c++) acc += row[c] * input[c];
        output[r] = acc;
        digest = digest * 31u + (unsigned)acc;
    }
    sys_write(1, &digest, 4);
    sys_exit(digest & 0x7f);
}
"""


def fresh(elf: Path) -> Machine:
    machine = Machine.from_elf(elf)
    machine.state.registers[29] = STACK
    return machine


def timed(function):
    """The result and the CPU seconds of this process (the machine is shared with other jobs, so
    wall time would measure their load too; it is printed once, for the load average)."""
    start = time.process_time()
    result = function()
    elapsed = time.process_time() - start
    return result, elapsed


def load_note() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def run_unicorn(elf: Path) -> float | None:
    """Seconds for unicorn to run the program to its exit_group, or None without unicorn."""
    try:
        import unicorn
        from unicorn import mips_const
    except ImportError:
        return None
    entry, segments = load_segments(elf)
    emu = unicorn.Uc(unicorn.UC_ARCH_MIPS, unicorn.UC_MODE_MIPS32 | unicorn.UC_MODE_BIG_ENDIAN)
    emu.mem_map(0, 0x01000000)  # the program's segments (below 16 MiB)
    for addr, data in segments:
        emu.mem_write(addr, data)
    emu.mem_map(STACK - 0x100000, 0x100000 + 0x3000)
    emu.reg_write(mips_const.UC_MIPS_REG_SP, STACK)
    exited = []

    def on_syscall(uc, number, data) -> None:
        # Unicorn resumes after the syscall instruction by itself; write's result is not checked.
        if uc.reg_read(mips_const.UC_MIPS_REG_V0) == 4246:
            exited.append(uc.reg_read(mips_const.UC_MIPS_REG_A0) & 0xFF)
            uc.emu_stop()

    emu.hook_add(unicorn.UC_HOOK_INTR, on_syscall)
    start = time.process_time()
    try:
        emu.emu_start(entry, 0xFFFFFFFF)
    except unicorn.UcError:
        if not exited:  # unicorn reports an error when stopped from inside the syscall hook
            raise
    return time.process_time() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-vm-") as tmp:
        elf = build_c(MATVEC, Path(tmp), "matvec")

        reference = fresh(elf)
        steps, reference_time = timed(reference.run_reference)
        print(f"program: int8 784x500 matrix-vector product, {steps:,} instructions to exit ({load_note()})")
        print(f"reference stepper: {steps / reference_time / 1e6:.2f} M instr/s ({reference_time:.2f} s)")

        native = fresh(elf)
        native_steps, native_time = timed(native.run)
        same = native.state.encode() == reference.state.encode() and native_steps == steps
        assert same, "native != reference"
        print(
            f"native executor:   {steps / native_time / 1e6:.2f} M instr/s ({native_time:.3f} s), "
            f"{reference_time / native_time:.1f}x the reference; final states identical"
        )

        unicorn_time = run_unicorn(elf)
        if unicorn_time is None:
            print("unicorn: not installed")
        else:
            print(
                f"unicorn:           {steps / unicorn_time / 1e6:.2f} M instr/s ({unicorn_time:.3f} s); "
                f"reference / unicorn = {unicorn_time / reference_time:.4f}, "
                f"native / unicorn = {unicorn_time / native_time:.4f}"
            )

        memory = Memory()
        memory.write(0, random.Random(1).randbytes(2 << 20))
        _, root_time = timed(memory.merkle_root)
        print(f"Merkle root of a fresh 2 MiB image: {root_time:.3f} s")

        run_steps = 3_000_000
        trace, record_time = timed(lambda: Trace.record(fresh(elf), max_steps=run_steps))
        print(
            f"trace of {trace.steps:,} steps, checkpoint every {DEFAULT_INTERVAL:,}: "
            f"recorded in {record_time:.2f} s, {len(trace.checkpoints)} checkpoints"
        )
        rng = random.Random(2)
        times = []
        for _ in range(10):
            k = rng.randrange(trace.steps)
            _, elapsed = timed(lambda k=k: trace.witness_at(k))
            times.append(elapsed)
        print(
            f"witness of a random step k: mean {sum(times) / len(times):.3f} s, "
            f"max {max(times):.3f} s (10 samples)"
        )


if __name__ == "__main__":
    main()
