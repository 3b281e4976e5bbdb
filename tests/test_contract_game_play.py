"""Whole games over a real MIPS trace (a small golden-image program run by vm/), played by
prover/agent.py's party logic on both sides: the honest side wins whichever side it is on, for
k = 2 and k = 16 at random disagreement points, and a run from another start (a wrong S0) loses."""

import random

import pytest
from contract_fixtures import CHALLENGE_BOND, SUBMIT_BOND, Deployment, deploy
from contract_programs import ProgramRun, run_loop_program

from prover.agent import (
    Bisect,
    ClaimTimeout,
    FaultyTrace,
    Select,
    Side,
    Step,
    Trace,
    Wait,
    next_move,
    rounds_needed,
)


@pytest.fixture(scope="module")
def honest() -> ProgramRun:
    return run_loop_program(iterations=40)


@pytest.fixture(scope="module")
def other_input() -> ProgramRun:
    return run_loop_program(iterations=41)


def play(d: Deployment, game_id: int, defender: Trace, challenger: Trace, k: int) -> tuple[str, int]:
    """Both parties move by prover.agent until the game ends; the status and the rounds played."""
    parties = {Side.DEFENDER: (d.submitter, defender), Side.CHALLENGER: (d.challenger, challenger)}
    rounds = 0
    while not (view := d.game.game(game_id)).over:
        moved = False
        for side, (sender, trace) in parties.items():
            move = next_move(side, view, trace, k)
            if isinstance(move, Wait):
                continue
            if isinstance(move, Bisect):
                d.game.bisect(game_id, list(move.hashes), sender=sender)
                rounds += 1
            elif isinstance(move, Select):
                d.game.select(game_id, move.index, sender=sender)
            elif isinstance(move, Step):
                d.game.step(game_id, move.state_data, move.proof, sender=sender)
            elif isinstance(move, ClaimTimeout):
                d.game.claim_timeout(game_id, sender=sender)
            moved = True
            break
        assert moved, f"nobody can move in {view}"
    return d.game.game_status(game_id), rounds


def start(d: Deployment, run: ProgramRun, claimed: Trace) -> tuple[int, int]:
    """A task for `run`'s image, a claim of `claimed`'s final state, and a challenge."""
    task = d.game.create_task(run.program_root, run.input_root, run.model_root, sender=d.other)
    final = claimed.state_at(run.steps)
    claim = d.game.submit(task, final, run.output, run.output_proof, sender=d.submitter)
    return claim, d.game.challenge(claim, sender=d.challenger)


def test_the_contract_s0_is_the_program_run_start(honest: ProgramRun) -> None:
    d = deploy()
    assert d.game.initial_state_hash(honest.program_root, honest.input_root, honest.model_root) == (
        honest.state_hash_at(0)
    )


@pytest.mark.parametrize("k", [2, 16])
@pytest.mark.parametrize("seed", [1, 2])
def test_honest_challenger_beats_a_lying_defender(honest: ProgramRun, k: int, seed: int) -> None:
    d = deploy(k=k)
    fault = random.Random(seed).randint(1, honest.steps)
    liar = FaultyTrace(honest, fault)
    claim, game = start(d, honest, liar)
    status, rounds = play(d, game, defender=liar, challenger=honest, k=k)
    assert status == "challenger won"
    assert rounds <= rounds_needed(honest.steps, k)
    assert d.game.claim(claim).status == "refuted"
    assert d.game.balance_of(d.challenger) == SUBMIT_BOND + CHALLENGE_BOND


@pytest.mark.parametrize("k", [2, 16])
@pytest.mark.parametrize("seed", [3, 4])
def test_honest_defender_beats_a_lying_challenger(honest: ProgramRun, k: int, seed: int) -> None:
    d = deploy(k=k)
    fault = random.Random(seed).randint(1, honest.steps)
    claim, game = start(d, honest, honest)
    status, _ = play(d, game, defender=honest, challenger=FaultyTrace(honest, fault), k=k)
    assert status == "defender won"
    assert d.game.claim(claim).status == "pending"
    assert d.game.balance_of(d.submitter) == CHALLENGE_BOND


def test_a_run_from_another_start_cannot_win(honest: ProgramRun, other_input: ProgramRun) -> None:
    """The defender ran the program on another input, so its trace starts from another S0 than
    the task's: the challenger proves step 0 from the contract's S0."""
    d = deploy(k=4)
    task = d.game.create_task(honest.program_root, honest.input_root, honest.model_root, sender=d.other)
    final = other_input.state_at(other_input.steps)
    claim = d.game.submit(task, final, other_input.output, other_input.output_proof, sender=d.submitter)
    game = d.game.challenge(claim, sender=d.challenger)
    status, _ = play(d, game, defender=other_input, challenger=honest, k=4)
    assert status == "challenger won"
    assert d.game.claim(claim).status == "refuted"
