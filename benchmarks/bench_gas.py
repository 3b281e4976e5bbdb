"""Gas of the contracts on py-evm with Cancun rules (the in-process chain).

- `step` of the one-step verifier by instruction class (ALU, branch/jump, load, store, syscall):
  min / median / max execution gas (gasUsed minus the 21,000 base and the calldata gas). The steps
  come from the real guest running the trained int8 MNIST MLP (models/mlp_int8.ggml on an MNIST
  test image), in windows of consecutive steps across the run, plus random syscall steps (the guest
  makes only a few). Measured baseline: an exited machine's no-op step (the fixed cost of every
  step). Cannon's MIPS.sol median (about 23,500) is a documented figure, not measured here.
- Dissection moves (`bisect` with k - 1 hashes, `select`) for k = 2, 4, 8, 16 on a 1,000,000-step
  claim, and a whole 3,000,000-step dissection per k against k = 2 (plain bisection) as baseline.
- A whole dispute over the real MNIST inference: task, claim, challenge, every move and the
  deciding step (a lying defender against an honest challenger, both played by prover/game/agent.py)
  and the winner's withdrawal, for k = 16 and, as baseline, k = 2; at k = 16 also the longest
  dispute over the same run (a fault whose pieces take the most rounds); and the same dispute on the
  DisputeGame of the commits in BEFORE (before issue 16's rules and packed storage; the packed
  storage, before the game was kept as its state's hash), each deployed from that commit's artifact
  read with `git show` (the one-step verifier is unchanged) and played through StoredGame, a
  wrapper of their ABI: before / after.
- The bond economics: the defender's gas for a whole game, the MNIST one and the longest game the
  contract accepts (2^48 - 1 steps), in wei at GAS_PRICE_GWEI: the least challenge bond that pays
  for it (docs/contracts.md).

Run: .venv/bin/python benchmarks/bench_gas.py [--steps N] [--image I]
"""

import argparse
import json
import random
import statistics
import subprocess
import sys
from collections import defaultdict
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from contract_fixtures import (
    CHALLENGE_BOND,
    CLOCK,
    SUBMIT_BOND,
    WINDOW,
    Deployment,
    deploy,
    final_state,
    output_commitment,
)
from contract_programs import random_witnesses

from prover.chain.contracts import GAME_STATUS, DisputeGame, MipsVerifier, Receipt
from prover.chain.game_view import GameState, GameView, Side
from prover.chain.local import LocalChain
from prover.game.agent import Bisect, FaultyTrace, Select, Step, Trace, next_move, rounds_needed, split_points
from prover.model.data import mnist_test_digit
from prover.task.golden import OUTPUT_BASE, GoldenImage, build_golden, top_tree_siblings
from prover.task.run import output_payload
from vm import StepWitness
from vm.instructions import LOAD_OPCODES, STORE_OPCODES
from vm.trace import Trace as VmTrace

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "models" / "mlp_int8.ggml"
CANNON_STEP_MEDIAN = 23_500  # documented for cannon's MIPS.sol under the same rules; not measured here
TARGET_STEP_MEDIAN = 25_000
DISSECTION_STEPS = 1_000_000
LONG_TRACE = 3_000_000
TARGET_LONG_ROUNDS = 6
OUTPUT = (3).to_bytes(4, "big") + bytes(10)
CHECKPOINT_INTERVAL = 10_000
RARE_CLASS_MINIMUM = 20
# The "before" of the MNIST dispute: main before issue 16's rules and packed storage, and the
# packed storage (a game in five slots) before the game was kept as its state's hash.
BEFORE = {
    "9d22dba": "9d22dba2737f832b790b7b10d78806cf6318dd8c",
    "ae53435": "ae53435efdb4e32f9e93c1f1e3dd537dc3b6ce42",
}
TARGET_CHALLENGE_GAS = 100_000
TARGET_DISPUTE_GAS = 1_000_000
GAS_PRICE_GWEI = 50  # the gas price the bond economics are stated at
LONGEST_CLAIM = 2**48 - 1  # the most steps a claim may have


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
    if opcode in LOAD_OPCODES:
        return "load"
    if opcode in STORE_OPCODES:
        return "store"
    return "alu"


# ---------------------------------------------------------------- the real MNIST inference


class MnistRun:
    """The guest's run of the trained int8 MLP on one MNIST test image, with checkpoints."""

    def __init__(self, image_index: int) -> None:
        pixels, self.label = mnist_test_digit(image_index)
        self.image: GoldenImage = build_golden(MODEL.read_bytes(), pixels.tobytes())
        self.trace = VmTrace.record(self.image.machine, interval=CHECKPOINT_INTERVAL)
        final = self.trace.machine_at(self.trace.steps)
        self.output = output_payload(final)
        self.output_proof = top_tree_siblings(final.memory.proof(OUTPUT_BASE))
        self.predicted = int.from_bytes(self.output[:4], "big")

    def witnesses(self, count: int, window: int, seed: int) -> list[StepWitness]:
        """`count` steps, `window` consecutive ones from each of count / window seeded points."""
        rng = random.Random(seed)
        witnesses = []
        for first in range(0, count, window):
            machine = self.trace.machine_at(rng.randrange(self.trace.steps - window))
            witnesses += [machine.step() for _ in range(min(window, count - first))]
        return witnesses

    def witnesses_of(self, kind: str, count: int, seed: int, window: int = 2_000) -> list[StepWitness]:
        """`count` steps of one instruction class (the windowed sample may hold none of a rare
        class: the inference stores little), from windows starting at seeded points."""
        rng = random.Random(seed)
        found: list[StepWitness] = []
        while len(found) < count:
            machine = self.trace.machine_at(rng.randrange(self.trace.steps - window))
            steps = (machine.step() for _ in range(window))
            found += [w for w in steps if instruction_class(w) == kind][: count - len(found)]
        return found


class CachedTrace:
    """A trace whose state hashes are computed once: both parties ask for the same points."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.state_at = trace.state_at
        self.witness_at = trace.witness_at
        self.state_hash_at = cache(trace.state_hash_at)


# ---------------------------------------------------------------- step gas


def step_gas(mips: MipsVerifier, witnesses: list[StepWitness]) -> dict[str, list[int]]:
    by_class: dict[str, list[int]] = defaultdict(list)
    for witness in witnesses:
        by_class[instruction_class(witness)].append(
            mips.step_execution_gas(witness.state_data, witness.proof)
        )
    return by_class


def report_steps(run: MnistRun, count: int) -> None:
    mips = deploy().mips
    guest = step_gas(mips, run.witnesses(count, window=50, seed=11))
    guest_median = int(statistics.median(g for gas in guest.values() for g in gas))
    syscalls = [w for w in random_witnesses(2_000, seed=7) if instruction_class(w) == "syscall"][:40]
    by_class = step_gas(mips, syscalls)
    for name, gas in guest.items():
        by_class[name] += gas
    for kind in ("branch", "store"):
        if len(by_class[kind]) < RARE_CLASS_MINIMUM:
            extra = run.witnesses_of(kind, RARE_CLASS_MINIMUM - len(by_class[kind]), seed=13)
            by_class[kind] += step_gas(mips, extra)[kind]
    exited = final_state(bytes(32), 1)
    floor = mips.step_execution_gas(exited, bytes(1792))

    print(
        f"step execution gas by instruction class ({count} guest steps in windows of 50, branches and"
        f" stores topped up to {RARE_CLASS_MINIMUM} from the guest, {len(syscalls)} random syscall steps;"
        " excluding the 21,000 base and the calldata gas)"
    )
    print(f"  {'class':<10}{'count':>7}{'min':>9}{'median':>9}{'max':>9}{'x no-op':>9}")
    for name in sorted(by_class):
        gas = by_class[name]
        median = int(statistics.median(gas))
        print(f"  {name:<10}{len(gas):>7,}{min(gas):>9,}{median:>9,}{max(gas):>9,}{median / floor:>9.2f}")
    verdict = "met" if guest_median <= TARGET_STEP_MEDIAN else "MISSED"
    print(f"  baseline measured here: an exited machine's no-op step (checks, state copy, hash) {floor:,}")
    print(
        f"  median over the guest's steps: {guest_median:,} (target <= {TARGET_STEP_MEDIAN:,}: {verdict});"
        f" {guest_median / CANNON_STEP_MEDIAN:.2f} x cannon's MIPS.sol ~{CANNON_STEP_MEDIAN:,}"
        " (a documented figure, not measured in this run)"
    )


# ---------------------------------------------------------------- dissection moves


def dissection(k: int, steps: int, d: Deployment | None = None) -> tuple[list[int], list[int]]:
    """Dissects a `steps`-long claim down to one step with fake hashes (the challenger always takes
    the last piece, the longest); the gasUsed of every bisect and every select."""
    d = d or deploy(k=k)
    task = d.game.create_task(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, sender=d.other)
    mem_root, siblings = output_commitment(OUTPUT)
    claim = d.game.submit(task, final_state(mem_root, steps), OUTPUT, siblings, sender=d.submitter)
    game = d.game.challenge(claim, sender=d.challenger)
    bisects, selects = [], []
    while (view := d.game.game(game)).right - view.left > 1:
        points = split_points(view.left, view.right, k)
        hashes = tuple(keccak(p.to_bytes(8, "big")) for p in points[1:-1])
        bisects.append(d.game.bisect(game, list(hashes), sender=d.submitter).gas_used)
        selects.append(d.game.select(game, len(points) - 2, sender=d.challenger, posted=hashes).gas_used)
    assert len(bisects) == rounds_needed(steps, k)
    return bisects, selects


def report_dissection() -> None:
    print(
        f"\ndissection moves (transaction gasUsed, everything included), a {DISSECTION_STEPS:,}-step claim;"
    )
    print(f"and the whole dissection of a {LONG_TRACE:,}-step claim against k = 2 (plain bisection)")
    print(f"  {'k':>3}{'rounds':>8}{'bisect first':>14}{'bisect later':>14}{'select':>9}{'3M rounds':>11}"
          f"{'3M moves':>12}{'x k=2':>7}")  # fmt: skip
    baseline = None
    for k in (2, 4, 8, 16):
        bisects, selects = dissection(k, DISSECTION_STEPS)
        long_bisects, long_selects = dissection(k, LONG_TRACE)
        total = sum(long_bisects) + sum(long_selects)
        baseline = baseline or total
        later, select = int(statistics.median(bisects[1:])), int(statistics.median(selects))
        print(
            f"  {k:>3}{len(bisects):>8}{bisects[0]:>14,}{later:>14,}{select:>9,}"
            f"{len(long_bisects):>11}{total:>12,}{total / baseline:>7.2f}"
        )
    rounds = rounds_needed(LONG_TRACE, 16)
    verdict = "met" if rounds <= TARGET_LONG_ROUNDS else "MISSED"
    print(
        f"  rounds for {LONG_TRACE:,} steps at k = 16: {rounds} (target <= {TARGET_LONG_ROUNDS}: {verdict})"
    )


# ---------------------------------------------------------------- a whole MNIST dispute


class StoredGame(DisputeGame):
    """A DisputeGame of a BEFORE commit, whose games were kept in storage: moves take no state,
    gameView(gameId) reads the game, and the posted hashes are in the Bisected event of block
    postedBlock."""

    def game(self, game_id: int) -> GameView:
        left, right, left_hash, right_hash, count, block, posted_hash, turn, over, seconds = self.call(
            "gameView", game_id
        )
        phase, node = self.call("gamePhase", game_id)
        posted: tuple[bytes, ...] = ()
        if count:
            logs = self.contract.events.Bisected().get_logs(
                argument_filters={"gameId": game_id}, from_block=block, to_block=block
            )
            posted = next(
                hashes
                for log in reversed(logs)
                if keccak(b"".join(hashes := tuple(bytes(h) for h in log["args"]["hashes"]))) == posted_hash
            )
        turn_side = Side.DEFENDER if turn == 0 else Side.CHALLENGER
        return GameView(
            left,
            right,
            bytes(left_hash),
            bytes(right_hash),
            posted,
            turn_side,
            over,
            seconds,
            phase == 1,
            node,
        )

    def _move(
        self, function: str, game_id: int, state: GameState | None, *args: Any, **options: Any
    ) -> Receipt:
        return self.transact(function, game_id, *args, **options)

    def game_status(self, game_id: int) -> str:
        return GAME_STATUS[self.call("games", game_id)[2]]


def deploy_before(commit: str, k: int) -> Deployment:
    """The DisputeGame of `commit`, from that commit's committed artifact."""
    shown = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:contracts/artifacts/DisputeGame.json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode != 0:
        sys.exit(f"error: cannot read the DisputeGame artifact of {commit} with git: {shown.stderr.strip()}")
    artifact = json.loads(shown.stdout)
    chain = LocalChain()
    mips = MipsVerifier.deploy(chain.w3)
    factory = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = factory.constructor(mips.address, k, SUBMIT_BOND, CHALLENGE_BOND, CLOCK, WINDOW).transact(
        {"from": chain.accounts[0]}
    )
    address = chain.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    game = StoredGame(chain.w3, address, abi=artifact["abi"])
    return Deployment(chain, mips, game, *chain.accounts[1:4])


def mnist_dispute(
    run: MnistRun, k: int, fault_step: int, d: Deployment | None = None
) -> tuple[int, dict[str, int]]:
    """A lying defender (wrong from `fault_step` on) against an honest challenger over the real
    run, both moved by prover.game.agent; the rounds and the gasUsed of everything by kind."""
    d = d or deploy(k=k)
    honest = CachedTrace(run.trace)
    liar = CachedTrace(FaultyTrace(honest, fault_step))
    image = run.image
    gas: dict[str, int] = defaultdict(int)
    receipt = d.game.transact(
        "createTask", image.program_root, image.input_root, image.model_root, sender=d.other
    )
    gas["createTask"] += receipt.gas_used
    task = receipt.event("TaskCreated").args["taskId"]
    claimed = liar.state_at(run.trace.steps)
    receipt = d.game.transact(
        "submit", task, claimed, run.output, run.output_proof, sender=d.submitter, value=d.game.submit_bond
    )
    gas["submit"] += receipt.gas_used
    claim = receipt.event("ClaimSubmitted").args["claimId"]
    receipt = d.game.transact("challenge", claim, sender=d.challenger, value=d.game.challenge_bond)
    gas["challenge"] += receipt.gas_used
    game = receipt.event("GameStarted").args["gameId"]
    rounds = 0
    while not (view := d.game.game(game)).over:
        defender_move = next_move(Side.DEFENDER, view, liar, k)
        if isinstance(defender_move, Bisect):
            receipt = d.game.bisect(game, list(defender_move.hashes), sender=d.submitter, state=view.state)
            gas["bisect"] += receipt.gas_used
            rounds += 1
            continue
        move = next_move(Side.CHALLENGER, view, honest, k)
        if isinstance(move, Select):
            receipt = d.game.select(
                game, move.index, sender=d.challenger, posted=view.posted, state=view.state
            )
            gas["select"] += receipt.gas_used
        elif isinstance(move, Step):
            receipt = d.game.step(game, move.state_data, move.proof, sender=d.challenger, state=view.state)
            gas["step"] += receipt.gas_used
        else:
            raise AssertionError(f"unexpected move {move} in {view}")
    assert d.game.game_status(game) == "challenger won"
    gas["withdraw"] += d.game.transact("withdraw", sender=d.challenger).gas_used
    return rounds, gas


def report_mnist_dispute(run: MnistRun) -> dict[str, int]:
    """Prints the dispute for k = 2 and 16, now and before; returns the k = 16 gas by kind."""
    steps = run.trace.steps
    fault = random.Random(5).randint(1, steps)
    print(
        f"\na whole dispute over the trained int8 MLP's inference ({MODEL.name}, MNIST test image, label"
        f" {run.label}, predicted {run.predicted}): {steps:,} steps; the defender lies from step {fault:,}"
    )
    baseline = None
    totals = {}
    for k in (2, 16):
        rounds, gas = mnist_dispute(run, k, fault)
        total = sum(gas.values())
        baseline = baseline or total
        totals[k] = (total, gas)
        parts = ", ".join(f"{name} {value:,}" for name, value in gas.items())
        print(f"  k = {k:>2}: {rounds} rounds, total {total:,} gas ({total / baseline:.2f} x k = 2): {parts}")
    for name, commit in BEFORE.items():
        print(f"  before (DisputeGame of {name}, same dispute, same agents) / now:")
        for k in (2, 16):
            _, before = mnist_dispute(run, k, fault, deploy_before(commit, k))
            total, now = totals[k]
            parts = ", ".join(f"{part} {before[part]:,} -> {now[part]:,}" for part in now)
            was = sum(before.values())
            print(f"  k = {k:>2}: total {was:,} -> {total:,} ({total / was:.2f}): {parts}")
    total, now = totals[16]
    challenge = "met" if now["challenge"] < TARGET_CHALLENGE_GAS else "MISSED"
    dispute = "met" if total < TARGET_DISPUTE_GAS else "MISSED"
    print(
        f"  challenge {now['challenge']:,} gas (target < {TARGET_CHALLENGE_GAS:,}: {challenge});"
        f" the k = 16 dispute {total:,} gas (target < {TARGET_DISPUTE_GAS:,}: {dispute})"
    )
    longest = longest_dispute_fault(steps, 16)
    rounds, gas = mnist_dispute(run, 16, longest)
    total = sum(gas.values())
    parts = ", ".join(f"{name} {value:,}" for name, value in gas.items())
    dispute = "met" if total < TARGET_DISPUTE_GAS else "MISSED"
    print(
        f"  the longest k = 16 dispute over this run ({rounds} rounds: the defender lies from step"
        f" {longest:,}): total {total:,} gas (target < {TARGET_DISPUTE_GAS:,}: {dispute}): {parts}"
    )
    return now


def longest_dispute_fault(steps: int, k: int) -> int:
    """The first (seeded) fault step whose dispute takes the most rounds a `steps`-long claim can:
    the honest challenger disputes the piece holding the first wrong state."""
    rng = random.Random(5)
    while True:
        fault, left, right, rounds = rng.randint(1, steps), 0, steps, 0
        while right - left > 1:
            points = split_points(left, right, k)
            left, right = next((a, b) for a, b in pairwise(points) if a < fault <= b)
            rounds += 1
        if rounds == rounds_needed(steps, k):
            return fault


# ---------------------------------------------------------------- bond economics


def defender_game_gas(k: int, steps: int) -> int:
    """The defender's gas for a whole game over a `steps`-long claim in which the challenger
    walks away at the last step: every bisect, the timeout it claims, its withdrawal."""
    d = deploy(k=k)
    bisects, _ = dissection(k, steps, d)
    d.chain.advance_time(CLOCK + 1)
    game = d.game.call("gameCount")
    timeout = d.game.claim_timeout(game, sender=d.submitter).gas_used
    withdraw = d.game.transact("withdraw", sender=d.submitter).gas_used
    return sum(bisects) + timeout + withdraw


def report_bonds(mnist: dict[str, int]) -> None:
    wei = GAS_PRICE_GWEI * 10**9
    print(
        f"\nbond economics: the defender's gas for a whole game, in ether at {GAS_PRICE_GWEI} gwei"
        " (a challenge bond below it makes opening games cheaper than answering them)"
    )
    mnist_defender = mnist["bisect"]
    ether = mnist_defender * wei / 1e18
    print(f"  the MNIST game above (k = 16, its bisects): {mnist_defender:,} gas = {ether:.4f} ETH")
    for k in (2, 16):
        gas = defender_game_gas(k, LONGEST_CLAIM)
        print(
            f"  the longest claim accepted ({LONGEST_CLAIM:,} steps), k = {k:>2}: bisects, timeout and"
            f" withdrawal {gas:,} gas = {gas * wei / 1e18:.4f} ETH"
        )
    print(f"  the test deployments' challenge bond: {CHALLENGE_BOND / 1e18:.2f} ETH")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="guest steps to measure (default 400)")
    parser.add_argument("--image", type=int, default=0, help="MNIST test image index (default 0)")
    args = parser.parse_args()
    run = MnistRun(args.image)
    report_steps(run, args.steps)
    report_dissection()
    report_bonds(report_mnist_dispute(run))


if __name__ == "__main__":
    main()
