"""Step witnesses made by the Python VM (vm/) for the contract tests and the gas benchmark:

- random and adversarial single steps (random words, every opcode and funct, every syscall, traps,
  delay slots, unaligned and region-edge addresses),
- the trace of a small MIPS program laid out as a golden image (docs/memory-map.md), for games,
- steps of the real guest (prover/task/guest/guest.elf) running an int8 MLP on an MNIST-shaped input,
- steps of a compiled C workload (tests/programs/workload.c, built with the guest's zig flags).

Each witness is vm's StepWitness: (state_data, proof, post_hash by vm)."""

import hashlib
import os
import random
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from eth_hash.auto import keccak
from test_guest_models import images, int8_mlp

from prover.task.golden import (
    INPUT_BASE,
    OUTPUT_BASE,
    SLOT_LEVEL,
    build_golden,
    region_bytes,
    region_root,
    subtree_root,
    top_tree_siblings,
    verify_output_proof,
)
from prover.task.guest.build import COMPILE_FLAGS, GUEST_DIR, LINK_FLAGS, compiler_command
from vm import Machine, State, StepWitness
from vm.instructions import STORE_OPCODES, data_address

M32 = 0xFFFFFFFF
ENTRY = 0x00400000
SYSCALLS = (4246, 4090, 4045, 4120, 4004, 4003, 4055, 4001, 0)
OPCODES = (0, 1, 2, 3, *range(4, 16), 0x1C, *range(0x20, 0x27), 0x28, 0x29, 0x2A, 0x2B, 0x2E, 0x30, 0x38)
FUNCTS = (0, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 15, 16, 17, 18, 19, 24, 25, 26, 27, *range(32, 40), 42, 43)
# Values that break careless arithmetic, and addresses at page and region edges.
EDGE_VALUES = (0, 1, 2, 3, 4, 31, 32, 33, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, M32, M32 - 3)
EDGE_ADDRESSES = (
    0x00000000, 0x00000FFC, 0x00001000, 0x0FFFFFFC, 0x10000000, 0x1FFFFFFF, 0x20000000, 0x30000000,
    0x3FFFFFFC, 0x40000000, 0x5FFFF000, 0x7FFFCFFC, 0x7FFFD000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFC,
)  # fmt: skip


def r_type(funct: int, rs: int = 0, rt: int = 0, rd: int = 0, shamt: int = 0) -> int:
    return (rs << 21) | (rt << 16) | (rd << 11) | (shamt << 6) | funct


def i_type(opcode: int, rs: int, rt: int, imm: int) -> int:
    return (opcode << 26) | (rs << 21) | (rt << 16) | (imm & 0xFFFF)


def _random_word(rng: random.Random) -> int:
    """An instruction word: fully random, or a listed opcode / funct with random fields."""
    kind = rng.random()
    fields = rng.getrandbits(26)
    if kind < 0.15:
        return rng.getrandbits(32)
    if kind < 0.45:
        return (fields & ~0x3F) | rng.choice(FUNCTS)
    if kind < 0.5:
        return (0x1C << 26) | (fields & ~0x3F) | rng.choice((2, 0x20, 0x21, rng.getrandbits(6)))
    if kind < 0.6:
        return r_type(12)  # syscall
    return (rng.choice(OPCODES) << 26) | fields


def _random_value(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(EDGE_VALUES)
    if roll < 0.6:
        return (rng.choice(EDGE_ADDRESSES) + rng.randint(-8, 8)) & M32
    return rng.getrandbits(32)


def random_machine(rng: random.Random) -> Machine:
    """A machine about to execute one random or adversarial instruction."""
    pc = rng.choice((ENTRY, *EDGE_ADDRESSES)) & ~3
    if rng.random() < 0.03:
        pc |= rng.randint(1, 3)  # an unaligned pc traps
    word = _random_word(rng)
    machine = Machine.from_bytes(word.to_bytes(4, "big"), addr=pc & ~3, pc=pc)
    state = machine.state
    state.next_pc = (pc + 4) & M32 if rng.random() < 0.7 else _random_value(rng) & ~3  # a delay slot
    state.lo, state.hi, state.heap = _random_value(rng), _random_value(rng), _random_value(rng) & ~0xFFF
    for index in range(1, 32):
        state.registers[index] = _random_value(rng)
    if word == r_type(12):
        state.registers[2] = rng.choice(SYSCALLS)
        state.registers[4] = rng.choice((0, 1, 2, 3, _random_value(rng)))
        state.registers[5] = rng.choice((3, 4, _random_value(rng)))
    rs, rt = (word >> 21) & 31, (word >> 16) & 31
    offset = ((word & 0xFFFF) ^ 0x8000) - 0x8000
    if data_address(word, state.registers) is not None and rs and rng.random() < 0.5:
        # Aim the access at a page or region edge: random bases rarely land there.
        target = rng.choice(EDGE_ADDRESSES) + rng.randint(-4, 4)
        state.registers[rs] = (target - offset) & M32
    if word >> 26 == 0 and word & 0x3F in (26, 27) and rt and rng.random() < 0.3:
        state.registers[rt] = 0  # division by zero
    # Something to load at the effective address (and around it), so loads see data.
    addr = (state.registers[rs] + offset) & M32
    if addr >> 5 != pc >> 5 and rng.random() < 0.8:  # otherwise a page nobody wrote yet
        machine.memory.write(addr & ~31, rng.randbytes(32))
    if rng.random() < 0.02:
        state.exited, state.exit_code = 1, rng.randint(0, 255)
    return machine


def random_steps(count: int, seed: int) -> Iterator[tuple[StepWitness, State]]:
    """Random or adversarial single steps: each witness and vm's post-state."""
    rng = random.Random(seed)
    for _ in range(count):
        machine = random_machine(rng)
        yield machine.step(), machine.state


def random_witnesses(count: int, seed: int) -> Iterator[StepWitness]:
    return (witness for witness, _ in random_steps(count, seed))


def _near_boundary(addr: int, size: int) -> bool:
    """Within a word of a `size`-aligned boundary (either side)."""
    offset = addr & (size - 1)
    return offset < 4 or offset >= size - 4


# What the differential test must exercise (docs/machine.md and issue 5's list).
REQUIRED_KINDS = frozenset(
    {"exited", "delay slot", "load", "store", "unaligned load", "unaligned store", "page edge", "region edge"}
    | {f"trap {code:#x}" for code in (0xF1, 0xF2, 0xF3, 0xF4)}
    | {f"syscall {number}" for number in SYSCALLS}
)


def step_kinds(witness: StepWitness, post: State) -> set[str]:
    """What one step exercises: an exited machine, a trap by code, a syscall by number, a delay
    slot, loads and stores (aligned or not) and data addresses at page or region edges."""
    pre = State.decode(witness.state_data)
    if pre.exited:
        return {"exited"}
    kinds = {f"trap {post.exit_code:#x}"} if post.exited and post.exit_code >= 0xF1 else set()
    if pre.next_pc != (pre.pc + 4) & M32:
        kinds.add("delay slot")
    if pre.pc & 3:
        return kinds
    insn = int.from_bytes(witness.proof[pre.pc & 28 : (pre.pc & 28) + 4], "big")
    if insn == r_type(12):
        kinds.add(f"syscall {pre.registers[2]}")
    addr = data_address(insn, pre.registers)
    if addr is not None:
        kind = "store" if insn >> 26 in STORE_OPCODES else "load"
        kinds.add(f"unaligned {kind}" if addr & 3 else kind)
        if _near_boundary(addr, 1 << 12):
            kinds.add("page edge")
        if _near_boundary(addr, 1 << 28):
            kinds.add("region edge")
    return kinds


# ---------------------------------------------------------------- a small golden-image program

T0, T1, T2, T3, T4, T5 = 8, 9, 10, 11, 12, 13
A0, V0 = 4, 2
LOOP_PROGRAM = [
    i_type(15, 0, T2, INPUT_BASE >> 16),  # lui t2, input region
    i_type(0x23, T2, T0, 32),  # lw t0, payload[0]: the loop count
    i_type(9, 0, T1, 1),  # addiu t1, zero, 1
    # loop: t1 = t1 * 3 + t0 (mixing), t0 -= 1
    r_type(0, 0, T1, T3, 1),  # sll t3, t1, 1
    r_type(33, T3, T1, T1),  # addu t1, t3, t1
    r_type(33, T1, T0, T1),  # addu t1, t1, t0
    i_type(9, T0, T0, -1),  # addiu t0, t0, -1
    i_type(5, T0, 0, -5),  # bne t0, zero, loop
    r_type(0),  # nop (delay slot)
    i_type(15, 0, T2, OUTPUT_BASE >> 16),  # lui t2, output region
    i_type(9, 0, T4, 4),  # addiu t4, zero, 4: the output length
    i_type(0x2B, T2, T4, 0),  # sw t4, header
    i_type(0x2B, T2, T1, 32),  # sw t1, payload
    i_type(9, 0, A0, 0),  # addiu a0, zero, 0
    i_type(9, 0, V0, 4246),  # addiu v0, zero, exit_group
    r_type(12),  # syscall
]


@dataclass
class ProgramRun:
    """A whole run of a golden image: every state, every witness, and the task's commitments."""

    states: list[bytes]
    witnesses: list[tuple[bytes, bytes]]
    program_root: bytes
    input_root: bytes
    model_root: bytes
    output: bytes
    output_proof: list[bytes]  # slot 3's four top-tree siblings in the final memory

    # prover.game.agent.Trace
    def state_at(self, step: int) -> bytes:
        return self.states[min(step, len(self.states) - 1)]

    def state_hash_at(self, step: int) -> bytes:
        return keccak(self.state_at(step))

    def witness_at(self, step: int) -> tuple[bytes, bytes]:
        return self.witnesses[min(step, len(self.witnesses) - 1)]

    @property
    def steps(self) -> int:
        return len(self.states) - 1


def run_loop_program(iterations: int) -> ProgramRun:
    """LOOP_PROGRAM on an input holding `iterations`: about 5 steps per iteration."""
    code = b"".join(word.to_bytes(4, "big") for word in LOOP_PROGRAM)
    payload = iterations.to_bytes(4, "big")
    machine = Machine.from_bytes(code, addr=ENTRY, pc=ENTRY)
    machine.state.registers[29] = 0x7FFFD000
    machine.state.heap = 0x40000000
    machine.memory.write(INPUT_BASE, region_bytes(payload))
    states, witnesses = [machine.state.encode()], []
    while not machine.state.exited:
        witness = machine.step()
        witnesses.append((witness.state_data, witness.proof))
        states.append(machine.state.encode())
    assert machine.state.exit_code == 0
    witness = machine.step()  # the exited machine's no-op step: a game may end on it
    witnesses.append((witness.state_data, witness.proof))
    output = machine.memory.read(OUTPUT_BASE + 32, 4)
    output_proof = top_tree_siblings(machine.memory.proof(OUTPUT_BASE))
    assert verify_output_proof(output, output_proof, machine.state.mem_root), (
        "not the output region's content"
    )
    return ProgramRun(
        states=states,
        witnesses=witnesses,
        program_root=subtree_root([(ENTRY, code)], SLOT_LEVEL),
        input_root=region_root(payload),
        model_root=region_root(b""),
        output=output,
        output_proof=output_proof,
    )


# ---------------------------------------------------------------- a compiled C workload

WORKLOAD_SOURCE = Path(__file__).resolve().parent / "programs" / "workload.c"
WORKLOAD_STEPS = 17_000  # about how long a run takes (it depends a little on the input)


def workload_elf() -> Path:
    """tests/programs/workload.c compiled like the guest (zig, mips32 big-endian, guest.ld), cached
    in the temp directory under a hash of the source and the flags."""
    command = [*COMPILE_FLAGS, *LINK_FLAGS, "-T", str(GUEST_DIR / "guest.ld"), str(WORKLOAD_SOURCE)]
    key = hashlib.sha256(WORKLOAD_SOURCE.read_bytes() + "\0".join(command).encode()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"opml-workload-{key}.elf"
    if not out.exists():
        partial = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        subprocess.run([*compiler_command(), *command, "-o", str(partial)], check=True, capture_output=True)
        os.replace(partial, out)
    return out


def workload_machine(payload: bytes) -> Machine:
    machine = Machine.from_elf(workload_elf())
    machine.state.registers[29] = 0x7FFFD000
    machine.state.heap = 0x40000000
    machine.memory.write(INPUT_BASE, region_bytes(payload))
    return machine


def workload_witnesses(count: int, seed: int) -> Iterator[StepWitness]:
    """`count` consecutive steps of the workload on a seeded input, from a seeded starting step."""
    rng = random.Random(seed)
    machine = workload_machine(rng.randbytes(rng.randint(1, 64)))
    machine.run(rng.randint(0, max(0, WORKLOAD_STEPS - count)))
    for _ in range(count):
        yield machine.step()


# ---------------------------------------------------------------- the real guest

GUEST_RUN_STEPS = 190_000  # the guest's int8 MLP inference (test_guest_models.int8_mlp) takes ~192k


def guest_witnesses(count: int, seed: int, window: int = 250) -> Iterator[StepWitness]:
    """`count` steps of the guest's inference, in windows of consecutive steps that start at
    seeded points of the run (the fast executor skips there); each window on its own image."""
    rng = random.Random(seed)
    model = int8_mlp()
    for first in range(0, count, window):
        image = images(1, seed=rng.randrange(1 << 30))[0]
        machine = build_golden(model, image).machine
        machine.run(rng.randint(0, GUEST_RUN_STEPS - window))
        for _ in range(min(window, count - first)):
            yield machine.step()
