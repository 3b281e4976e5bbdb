"""Gas of the contracts on py-evm with Cancun rules (the in-process chain).

- `step` of the one-step verifier, by instruction class (ALU, branch/jump, load, store, syscall):
  min / median / max execution gas (gasUsed minus the 21,000 base and the calldata gas), and the
  overall median against cannon's MIPS.sol reference figure (about 23,500 under the same rules).
  The steps come from the real guest's inference (an int8 MLP on MNIST-shaped inputs, windows of
  consecutive steps across the run), plus random syscall steps (the guest makes only a few).
- Dissection moves (`bisect` with k - 1 hashes, `select`) for k = 2, 4, 8, 16.
- Whole disputes at k = 16 over the guest's MNIST inference (~190,000 steps) and over a
  3,000,000-step trace: rounds (target <= 6 for 3M) and total gas.

Run: .venv/bin/python benchmarks/bench_gas.py [--steps N]
"""

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from eth_hash.auto import keccak

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from contract_fixtures import Deployment, deploy, final_state, output_commitment
from contract_programs import GUEST_RUN_STEPS, guest_witnesses, random_witnesses, run_loop_program

from prover.agent import FaultyTrace, rounds_needed, split_points
from vm import StepWitness

CANNON_STEP_MEDIAN = 23_500
TARGET_STEP_MEDIAN = 25_000
LONG_TRACE = 3_000_000
OUTPUT = (3).to_bytes(4, "big") + bytes(10)


def instruction_class(witness: StepWitness) -> str:
    """ALU, branch (branches and jumps), load, store, syscall, or trap (unaligned pc, exited)."""
    state = witness.state_data
    pc = int.from_bytes(state[68:72], "big")
    if state[89] or pc & 3:
        return "trap"
    insn = int.from_bytes(witness.proof[pc & 28 : (pc & 28) + 4], "big")
    opcode, funct = insn >> 26, insn & 0x3F
    if opcode == 0 and funct == 12:
        return "syscall"
    if opcode in (1, 2, 3, 4, 5, 6, 7) or (opcode == 0 and funct in (8, 9)):
        return "branch"
    if opcode in (0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x30):
        return "load"
    if opcode in (0x28, 0x29, 0x2A, 0x2B, 0x2E, 0x38):
        return "store"
    return "alu"


def guest_sample(count: int) -> list[StepWitness]:
    """`count` steps of the guest's inference, 50 consecutive steps at each of count / 50 points."""
    return list(guest_witnesses(count, seed=11, window=50))


def syscall_sample(count: int) -> list[StepWitness]:
    """Syscall steps (the guest makes only a few): every syscall of docs/machine.md."""
    return [w for w in random_witnesses(count * 40, seed=7) if instruction_class(w) == "syscall"][:count]


def step_gas(d: Deployment, witnesses: list[StepWitness]) -> dict[str, list[int]]:
    by_class: dict[str, list[int]] = defaultdict(list)
    for witness in witnesses:
        gas = d.mips.step_execution_gas(witness.state_data, witness.proof)
        by_class[instruction_class(witness)].append(gas)
    return by_class


def report_steps(by_class: dict[str, list[int]], guest_median: int) -> None:
    print("step execution gas by instruction class (excluding 21,000 base and calldata)")
    print(f"  {'class':<10}{'count':>7}{'min':>9}{'median':>9}{'max':>9}")
    for name in sorted(by_class):
        gas = by_class[name]
        print(f"  {name:<10}{len(gas):>7}{min(gas):>9}{int(statistics.median(gas)):>9}{max(gas):>9}")
    median = guest_median
    verdict = "met" if median <= TARGET_STEP_MEDIAN else "MISSED"
    print(
        f"  median over the guest's steps: {median} = {median / CANNON_STEP_MEDIAN:.2f} x cannon's"
        f" ~{CANNON_STEP_MEDIAN} (target <= {TARGET_STEP_MEDIAN}: {verdict})"
    )


def fake_hash(point: int) -> bytes:
    return keccak(point.to_bytes(8, "big"))


def dissection(k: int, steps: int) -> tuple[int, list[int], list[int], dict[str, int]]:
    """Plays the dissection of a `steps`-long claim down to one step (the challenger always takes
    the last piece, the longest) and returns rounds, bisect gas, select gas and the other moves."""
    d = deploy(k=k)
    other: dict[str, int] = {}
    task_receipt = d.game.transact("createTask", b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, sender=d.other)
    other["createTask"] = task_receipt.gas_used
    mem_root, siblings = output_commitment(OUTPUT)
    state = final_state(mem_root, steps)
    submit = d.game.transact(
        "submit", 1, state, OUTPUT, siblings, sender=d.submitter, value=d.game.submit_bond
    )
    other["submit"] = submit.gas_used
    challenge = d.game.transact("challenge", 1, sender=d.challenger, value=d.game.challenge_bond)
    other["challenge"] = challenge.gas_used
    bisects, selects = [], []
    while (view := d.game.game(1)).right - view.left > 1:
        points = split_points(view.left, view.right, k)
        bisects.append(d.game.bisect(1, [fake_hash(p) for p in points[1:-1]], sender=d.submitter).gas_used)
        selects.append(d.game.select(1, len(points) - 2, sender=d.challenger).gas_used)
    assert len(bisects) == rounds_needed(steps, k)
    return len(bisects), bisects, selects, other


def final_step_gas() -> int:
    """gasUsed of the deciding DisputeGame.step transaction (witness checks, the verifier's
    STATICCALL, resolution): a lying defender of the golden-image loop program, dissected to its
    last step by a challenger that always takes the last piece."""
    d = deploy(k=16)
    run = run_loop_program(iterations=20)
    liar = FaultyTrace(run, run.steps)
    task = d.game.create_task(run.program_root, run.input_root, run.model_root, sender=d.other)
    claim = d.game.submit(task, liar.state_at(run.steps), run.output, run.output_proof, sender=d.submitter)
    game = d.game.challenge(claim, sender=d.challenger)
    while (view := d.game.game(game)).right - view.left > 1:
        points = split_points(view.left, view.right, 16)
        d.game.bisect(game, [liar.state_hash_at(p) for p in points[1:-1]], sender=d.submitter)
        d.game.select(game, len(points) - 2, sender=d.challenger)
    receipt = d.game.step(game, *run.witness_at(view.left), sender=d.challenger)
    assert receipt.event("GameResolved").args["winner"] == 1
    return receipt.gas_used


def report_dissection() -> None:
    print("dissection moves (transaction gasUsed, all included)")
    print(f"  {'k':>3}{'rounds(1e6)':>13}{'bisect first':>14}{'bisect later':>14}{'select':>9}")
    for k in (2, 4, 8, 16):
        rounds, bisects, selects, _ = dissection(k, 1_000_000)
        later = int(statistics.median(bisects[1:]))
        print(f"  {k:>3}{rounds:>13}{bisects[0]:>14}{later:>14}{int(statistics.median(selects)):>9}")
    step = final_step_gas()
    for name, steps in (("the guest's MNIST MLP inference", GUEST_RUN_STEPS), ("a long trace", LONG_TRACE)):
        rounds, bisects, selects, other = dissection(16, steps)
        moves = sum(bisects) + sum(selects)
        total = sum(other.values()) + moves + step
        verdict = "met" if rounds <= 6 else "MISSED"
        print(
            f"a dispute over {name} ({steps:,} steps) at k = 16: {rounds} rounds (target for 3M steps"
            f" <= 6: {verdict}); total gas about {total:,} (task {other['createTask']:,}, submit"
            f" {other['submit']:,}, challenge {other['challenge']:,}, moves {moves:,}, final step {step:,})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="guest steps to measure")
    args = parser.parse_args()
    d = deploy()
    guest = step_gas(d, guest_sample(args.steps))
    guest_median = int(statistics.median(g for gas in guest.values() for g in gas))
    by_class = step_gas(d, syscall_sample(40))
    for name, gas in guest.items():
        by_class[name] += gas
    report_steps(by_class, guest_median)
    report_dissection()


if __name__ == "__main__":
    main()
