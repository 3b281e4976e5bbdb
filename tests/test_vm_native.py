"""The native executor (vm/native.c) against the reference stepper: identical states (memory roots
included: the pages it stores into reach the Merkle tree), memory and output after any number of
steps, on random programs (loops, delay slots, traps, syscalls, self-modifying code, stores into
new pages) and on whole guest runs stopped at random steps."""

import random
from pathlib import Path

import pytest
from vm_asm import NOP, SYSCALL, V0, addiu, code, i_type, j_type, r_type, special2

from vm import Machine
from vm.native import NativeExecutor

CODE = 0x00400000
DATA = 0x10000000
SIZE = 64  # instructions per random program
DATA_BASE, CODE_BASE, ODD_BASE = 16, 17, 18  # registers the programs never write
SPECIAL_FUNCTS = (
    0,
    2,
    3,
    4,
    6,
    7,
    10,
    11,
    15,
    16,
    17,
    18,
    19,
    24,
    25,
    26,
    27,
    32,
    33,
    34,
    35,
    36,
    37,
    38,
    39,
    42,
    43,
)


def random_instruction(rng: random.Random, index: int) -> int:
    dest = rng.randint(0, 15)
    rs, rt = rng.randint(0, 15), rng.randint(0, 15)
    kind = rng.random()
    if kind < 0.3:
        return r_type(rng.choice(SPECIAL_FUNCTS), dest, rs, rt, rng.randint(0, 31))
    if kind < 0.45:
        return i_type(rng.randint(8, 15), dest, rs, rng.getrandbits(16))
    if kind < 0.5:
        return special2(rng.choice((2, 0x20, 0x21)), dest, rs, rt)
    if kind < 0.7:  # loads and stores around the data base, some unaligned, a few into the code
        opcode = rng.choice(
            (0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x30, 0x28, 0x29, 0x2A, 0x2B, 0x2E, 0x38)
        )
        base = rng.choices((DATA_BASE, ODD_BASE, CODE_BASE), weights=(20, 1, 1))[0]
        offset = rng.randrange(0, SIZE * 4, 4) if base == CODE_BASE else rng.randint(-16, 16) * 4
        if opcode in (0x20, 0x22, 0x24, 0x26, 0x28, 0x2A, 0x2E) or rng.random() < 0.05:
            offset += rng.randint(0, 3)  # byte and unaligned-word accesses at every lane
        return i_type(opcode, dest, base, offset)
    if kind < 0.85:  # a short branch, forward or backward, staying inside the program
        offset = rng.randint(-index, SIZE - index - 2)
        opcode = rng.choice((1, 4, 5, 6, 7))
        rt_field = rng.randint(0, 1) if opcode == 1 else rt
        return i_type(opcode, rt_field, rs, offset)
    if kind < 0.9:
        return j_type(rng.choice((2, 3)), CODE + 4 * rng.randrange(SIZE))
    if kind < 0.93:
        return r_type(9, rng.choice((0, 31, dest)), CODE_BASE)  # jalr to the program start
    if kind < 0.96:
        return SYSCALL
    if kind < 0.97:
        return rng.getrandbits(32)  # most likely invalid
    return NOP


def random_machine(seed: int) -> Machine:
    rng = random.Random(seed)
    words = [random_instruction(rng, index) for index in range(SIZE)]
    machine = Machine.from_bytes(code(words), addr=CODE, pc=CODE)
    machine.memory.write(DATA - 64, rng.randbytes(128))
    registers = machine.state.registers
    for index in range(1, 16):
        registers[index] = rng.choice((0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, rng.getrandbits(32)))
    registers[V0] = rng.choice((4045, 4120, 4003, 4055, 4004, 4090, 1))
    registers[DATA_BASE], registers[CODE_BASE], registers[ODD_BASE] = DATA, CODE, DATA + 1
    machine.state.heap = 0x40000000
    return machine


def snapshot(machine: Machine) -> tuple[bytes, list[tuple[int, bytes]], list[tuple[int, bytes]]]:
    return machine.state.encode(), list(machine.memory.nonzero_pages()), machine.output


@pytest.mark.parametrize("seed", range(400))
def test_random_programs_end_in_the_same_state(seed: int) -> None:
    steps = random.Random(seed).choice((1, 2, 3, 17, 500, 3000))
    reference, native = random_machine(seed), random_machine(seed)
    reference.run_reference(steps)
    assert NativeExecutor(native).run(steps) == reference.state.step
    assert snapshot(native) == snapshot(reference)


@pytest.mark.parametrize("seed", range(40))
def test_stopping_at_every_step_count(seed: int) -> None:
    """Runs of 1, 2, 3, ... steps (including stops inside delay slots) with one executor, compared
    with the reference after each."""
    rng = random.Random(seed)
    reference, native = random_machine(1000 + seed), random_machine(1000 + seed)
    executor = NativeExecutor(native)
    for _ in range(150):
        reference.run_reference(1)
        executor.run(1)
        assert native.state.encode() == reference.state.encode()
        chunk = rng.randint(1, 40)
        reference.run_reference(chunk)
        executor.run(chunk)
        assert snapshot(native) == snapshot(reference)


def test_self_modifying_code_runs_the_new_instructions() -> None:
    # A loop whose body is rewritten: the store replaces `addiu t0, t0, 1` by `addiu t0, t0, 100`.
    t0, t1, t2, t3 = 8, 9, 10, 11
    patched = addiu(t0, t0, 100)
    words = [
        addiu(t1, 0, 5),  # 0: loop counter
        addiu(t0, t0, 1),  # 4: patched below
        addiu(t1, t1, -1),  # 8
        i_type(0x2B, t2, CODE_BASE, 4),  # 12: sw t2, 4(code): the patch
        i_type(5, 0, t1, -4),  # 16: bne t1, zero, 4
        NOP,
        addiu(V0, 0, 4246),
        SYSCALL,
    ]
    for run in ("reference", "native"):
        machine = Machine.from_bytes(code(words), addr=CODE, pc=CODE)
        machine.state.registers[CODE_BASE] = CODE
        machine.state.registers[t2] = patched
        machine.state.registers[t3] = 0
        if run == "reference":
            machine.run_reference()
        else:
            NativeExecutor(machine).run()
        assert machine.state.exited and machine.state.registers[t0] == 1 + 4 * 100, run


def test_long_loop_matches() -> None:
    t0, t1 = 8, 9
    words = [
        addiu(t1, 0, 1000),
        addiu(t0, t0, 3),
        addiu(t1, t1, -1),
        i_type(5, 0, t1, -3),
        NOP,
        addiu(V0, 0, 4246),
    ]
    words += [SYSCALL]
    reference = Machine.from_bytes(code(words), addr=CODE, pc=CODE)
    native = Machine.from_bytes(code(words), addr=CODE, pc=CODE)
    reference.run_reference()
    NativeExecutor(native).run()
    assert native.state.encode() == reference.state.encode() and native.state.exited


def test_machine_run_is_the_native_executor() -> None:
    """`Machine.run` (the obvious call) gives the reference stepper's final state, natively."""
    reference, native = random_machine(7), random_machine(7)
    reference.run_reference(3000)
    assert native.run(3000) == reference.state.step
    assert snapshot(native) == snapshot(reference)


def test_pages_written_from_outside_between_runs_are_seen() -> None:
    """Memory.write between two runs (a new page, as the golden image's input is laid out) reaches
    the native page table: the program loads from it."""
    t0 = 8
    words = [i_type(0x23, t0, DATA_BASE, 0), addiu(V0, 0, 4246), SYSCALL]
    machines = [Machine.from_bytes(code(words), addr=CODE, pc=CODE) for _ in range(2)]
    for machine in machines:
        machine.state.registers[DATA_BASE] = DATA
        machine.run(0)  # the page table is made here, before the data page exists
        machine.memory.write(DATA, (0x12345678).to_bytes(4, "big"))
    machines[0].run_reference()
    machines[1].run()
    assert machines[1].state.registers[t0] == 0x12345678
    assert snapshot(machines[1]) == snapshot(machines[0])


@pytest.mark.parametrize("model", ["mlp_int8", "lenet5_int8"])
def test_a_whole_guest_run_stopped_at_random_steps(model: str) -> None:
    """The guest on a trained model: native chunks of random length, each compared with the
    reference stepper's state (memory root included) at the same step, to the exit."""
    from prover.model.data import sample_digit
    from prover.task.golden import build_golden
    from prover.task.run import load_task

    path = Path(__file__).resolve().parent.parent / "models" / f"{model}.ggml"
    golden = build_golden(path.read_bytes(), load_task(path, sample_digit(0), "auto").data)
    rng = random.Random(model)
    reference, native = golden.machine.copy(), golden.machine.copy()
    executor = NativeExecutor(native)
    while not reference.state.exited:
        chunk = rng.choice((1, 7, rng.randint(1, 400_000)))
        assert executor.run(chunk) == reference.run_reference(chunk)
        assert native.state.encode() == reference.state.encode()
    assert native.stdout() == reference.stdout() and native.state.exit_code == 0


EDGE_VALUES = (
    0,
    1,
    2,
    31,
    32,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x7FFFFFFF,
    0x80000000,
    0x80000001,
    0xFFFFFFFE,
    0xFFFFFFFF,
)


@pytest.mark.parametrize("seed", range(8))
def test_every_instruction_word_on_edge_values(seed: int) -> None:
    """One step of random instruction words (any opcode, funct and fields, so invalid ones too)
    on registers holding edge values: the same state as the reference, trap or not, 1,000 per seed."""
    rng = random.Random(seed)
    for _ in range(1_000):
        words = [rng.getrandbits(32) if rng.random() < 0.3 else random_instruction(rng, 0), NOP]
        machines = [Machine.from_bytes(code(words), addr=CODE, pc=CODE) for _ in range(2)]
        values = [rng.choice(EDGE_VALUES) if rng.random() < 0.7 else rng.getrandbits(32) for _ in range(32)]
        for machine in machines:
            machine.memory.write(DATA - 64, bytes(range(128)))
            machine.state.registers[1:] = values[1:]
            machine.state.registers[DATA_BASE], machine.state.registers[ODD_BASE] = DATA, DATA + 1
            machine.state.lo, machine.state.hi = values[0], values[5]
        machines[0].run_reference(1)
        NativeExecutor(machines[1]).run(1)
        assert snapshot(machines[1]) == snapshot(machines[0]), hex(words[0])
