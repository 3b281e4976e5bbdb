"""Whole games over a real MIPS trace (a small golden-image program run by vm/), played by
prover/game/agent.py's party logic on both sides: the honest side wins whichever side it is on, for
k = 2 and k = 16 at random disagreement points, also with several challengers at once; a run from
another start (a wrong S0) or a final state with an output the run did not produce loses; every
move emits its event, and each game pays exactly one side."""

import random

import pytest
from contract_fixtures import CHALLENGE_BOND, SUBMIT_BOND, WINDOW, Deployment, deploy, output_commitment
from contract_programs import ProgramRun, run_loop_program
from eth_hash.auto import keccak

from prover.chain.game_view import GameState, Side
from prover.errors import ProverError
from prover.game.agent import Bisect, FaultyTrace, Move, Select, Step, Trace, Wait, next_move, rounds_needed


@pytest.fixture(scope="module")
def honest() -> ProgramRun:
    return run_loop_program(iterations=40)


@pytest.fixture(scope="module")
def other_input() -> ProgramRun:
    return run_loop_program(iterations=41)


def play_move(d: Deployment, game_id: int, sender: str, trace: Trace, side: Side, k: int) -> Move | None:
    """`side`'s next move if it has one, sent as `sender`; checks that the move emitted its event
    and that the event agrees with the game before and after."""
    view = d.game.game(game_id)
    move = next_move(side, view, trace, k)
    if isinstance(move, Wait):
        return None
    if isinstance(move, Bisect):
        receipt = d.game.bisect(game_id, list(move.hashes), sender=sender)
        args = receipt.event("Bisected").args
        state = GameState.from_abi(args["state"])
        assert (state.left, state.right, tuple(args["hashes"])) == (view.left, view.right, move.hashes)
    elif isinstance(move, Select):
        receipt = d.game.select(game_id, move.index, sender=sender)
        after = d.game.game(game_id)
        args = receipt.event("Selected").args
        state = GameState.from_abi(args["state"])
        assert (args["index"], state.left, state.right) == (move.index, after.left, after.right)
    elif isinstance(move, Step):
        receipt = d.game.step(game_id, move.state_data, move.proof, sender=sender)
        assert receipt.event("Stepped").args["step"] == view.left
        assert not receipt.event("GameResolved").args["byTimeout"]
    else:
        receipt = d.game.claim_timeout(game_id, sender=sender)
        assert receipt.event("GameResolved").args["byTimeout"]
    assert all(event.args.get("gameId", game_id) == game_id for event in receipt.events)
    return move


def move_once(
    d: Deployment, game_id: int, defender: Trace, challenger: Trace, k: int, challenger_account: str = ""
) -> Move:
    """The next move of whichever side has one (there must be one while the game is open)."""
    parties = [
        (Side.DEFENDER, d.submitter, defender),
        (Side.CHALLENGER, challenger_account or d.challenger, challenger),
    ]
    for side, sender, trace in parties:
        if (move := play_move(d, game_id, sender, trace, side, k)) is not None:
            return move
    raise AssertionError(f"nobody can move in {d.game.game(game_id)}")


def play(d: Deployment, game_id: int, defender: Trace, challenger: Trace, k: int) -> tuple[str, int]:
    """Both parties move by prover.game.agent until the game ends; the status and the rounds played."""
    rounds = 0
    while not d.game.game(game_id).over:
        rounds += isinstance(move_once(d, game_id, defender, challenger, k), Bisect)
    return d.game.game_status(game_id), rounds


def assert_credited(d: Deployment, expected: dict[str, int], held: int) -> None:
    """Exactly these credits (everyone else none), and the contract holds them plus `held` wei
    not yet credited (a pending claim's bond)."""
    accounts = (d.submitter, d.challenger, d.other)
    assert {a: d.game.balance_of(a) for a in accounts} == {a: expected.get(a, 0) for a in accounts}
    assert d.balance(d.game.address) == sum(expected.values()) + held


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
    assert_credited(d, {d.challenger: SUBMIT_BOND + CHALLENGE_BOND}, held=0)
    # The end is final: no further move, no second resolution, no finalization of the claim.
    view = d.game.game(game)
    for call, args in [
        ("step", (game, *honest.witness_at(view.left))),
        ("claim_timeout", (game,)),
        ("bisect", (game, [])),
        ("select", (game, 0)),
    ]:
        with pytest.raises(ProverError, match="GameOver"):
            getattr(d.game, call)(*args, sender=d.challenger)
    d.chain.advance_time(WINDOW + 1)
    with pytest.raises(ProverError, match="ClaimNotPending"):
        d.game.finalize(claim, sender=d.submitter)
    assert_credited(d, {d.challenger: SUBMIT_BOND + CHALLENGE_BOND}, held=0)


@pytest.mark.parametrize("k", [2, 16])
@pytest.mark.parametrize("seed", [3, 4])
def test_honest_defender_beats_a_lying_challenger(honest: ProgramRun, k: int, seed: int) -> None:
    d = deploy(k=k)
    fault = random.Random(seed).randint(1, honest.steps)
    claim, game = start(d, honest, honest)
    status, _ = play(d, game, defender=honest, challenger=FaultyTrace(honest, fault), k=k)
    assert status == "defender won"
    assert d.game.claim(claim).status == "pending"
    assert_credited(d, {d.submitter: CHALLENGE_BOND}, held=SUBMIT_BOND)
    d.chain.advance_time(WINDOW + 1)
    d.game.finalize(claim, sender=d.other)
    assert_credited(d, {d.submitter: CHALLENGE_BOND + SUBMIT_BOND}, held=0)


@pytest.mark.parametrize(("k", "honest_defender"), [(2, True), (16, False)])
def test_several_challengers_at_once_each_in_its_own_game(
    honest: ProgramRun, k: int, honest_defender: bool
) -> None:
    """Two challengers dispute one claim at the same time; the games are played move by move in
    turn. Against a lying defender both win, and only the first win takes the submitter's bond;
    against an honest one both lose, and the claim finalizes once both games are over."""
    d = deploy(k=k)
    faults = random.Random(k).sample(range(1, honest.steps + 1), 3)
    defender = honest if honest_defender else FaultyTrace(honest, faults[0])
    claim, first = start(d, honest, defender)
    second = d.game.challenge(claim, sender=d.other)
    games = [
        (first, d.challenger, honest if not honest_defender else FaultyTrace(honest, faults[1])),
        (second, d.other, honest if not honest_defender else FaultyTrace(honest, faults[2])),
    ]
    while open_games := [g for g in games if not d.game.game(g[0]).over]:
        for game, account, challenger in open_games:
            move_once(d, game, defender, challenger, k, challenger_account=account)
    winners = {d.game.game_status(game) for game, _, _ in games}
    if honest_defender:
        assert winners == {"defender won"}
        with pytest.raises(ProverError, match="WindowOpen"):
            d.game.finalize(claim, sender=d.submitter)
        d.chain.advance_time(WINDOW + 1)
        d.game.finalize(claim, sender=d.submitter)
        assert_credited(d, {d.submitter: SUBMIT_BOND + 2 * CHALLENGE_BOND}, held=0)
    else:
        assert winners == {"challenger won"}
        refuted_by = d.game.contract.events.ClaimRefuted().get_logs(from_block=0)
        assert [log["args"]["gameId"] for log in refuted_by] in ([first], [second])
        first_winner = d.challenger if refuted_by[0]["args"]["gameId"] == first else d.other
        second_winner = d.other if first_winner == d.challenger else d.challenger
        expected = {first_winner: SUBMIT_BOND + CHALLENGE_BOND, second_winner: CHALLENGE_BOND}
        assert_credited(d, expected, held=0)


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


def test_a_challenger_from_another_start_cannot_win(honest: ProgramRun, other_input: ProgramRun) -> None:
    """A challenger whose run started from another input disputes everything down to step 0; it
    cannot prove that step from the task's S0, and the honest defender does."""
    d = deploy(k=4)
    claim, game = start(d, honest, honest)
    status, _ = play(d, game, defender=honest, challenger=other_input, k=4)
    assert status == "defender won"
    assert (d.game.game(game).left, d.game.game(game).right) == (0, 1)
    assert d.game.claim(claim).status == "pending"


class ForgedOutput:
    """A defender's trace that is the honest run up to its last step and then claims a final state
    whose memory holds another output (with a valid output proof against that forged memory)."""

    def __init__(self, run: ProgramRun, output: bytes) -> None:
        self.run = run
        mem_root, self.output_proof = output_commitment(
            output, other_slots={0: run.program_root, 1: run.input_root, 2: run.model_root}
        )
        self.final = mem_root + run.state_at(run.steps)[32:]

    def state_at(self, step: int) -> bytes:
        return self.final if step >= self.run.steps else self.run.state_at(step)

    def state_hash_at(self, step: int) -> bytes:
        return keccak(self.state_at(step))

    def witness_at(self, step: int) -> tuple[bytes, bytes]:
        return self.run.witness_at(step)


def test_an_output_the_run_did_not_produce_cannot_win(honest: ProgramRun) -> None:
    d = deploy(k=16)
    forged_output = (int.from_bytes(honest.output, "big") ^ 1).to_bytes(4, "big")
    liar = ForgedOutput(honest, forged_output)
    assert liar.state_hash_at(0) == honest.state_hash_at(0)
    task = d.game.create_task(honest.program_root, honest.input_root, honest.model_root, sender=d.other)
    claim = d.game.submit(task, liar.final, forged_output, liar.output_proof, sender=d.submitter)
    game = d.game.challenge(claim, sender=d.challenger)
    status, _ = play(d, game, defender=liar, challenger=honest, k=16)
    assert status == "challenger won"
    assert (d.game.game(game).left, d.game.game(game).right) == (honest.steps - 1, honest.steps)
    assert d.game.claim(claim).status == "refuted"
