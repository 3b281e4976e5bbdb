"""DisputeGame's rules for deployments and results (issue 16): the constructor refuses parameters
no game can be played with; one task per computation and one final claim per task, whatever the
order claims are submitted, challenged and finalized in; no move after a game's end; clocks read
by block time to the second; and a game kept as the hash of its state (every move refuses a forged or replayed
state, a resolved game every state, a restarted party reads it back; zero hashes refused, the
48-bit step bound). Every test plays the attack the rule
stops."""

from dataclasses import replace

import pytest
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
from eth_hash.auto import keccak
from test_contract_game_rules import OUTPUT, STEPS, fake_hashes, open_game

from prover.chain.contracts import DisputeGame
from prover.chain.game_view import GameState, NodeOpening
from prover.errors import ProverError

ROOTS = (b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)
MIN_CLOCK = 2


@pytest.fixture
def d() -> Deployment:
    chain = deploy(k=4)
    # Far ahead of the wall clock: every block is then exactly one second after the last.
    chain.chain.advance_time(10**6)
    return chain


def claim_of(d: Deployment, task: int, output: bytes = OUTPUT, steps: int = STEPS, sender: str = "") -> int:
    mem_root, siblings = output_commitment(output)
    return d.game.submit(task, final_state(mem_root, steps), output, siblings, sender=sender or d.submitter)


def lie(d: Deployment, task: int) -> int:
    """A claim of another output on `task`, by the third account."""
    return claim_of(d, task, output=OUTPUT[:-1] + b"\xff", sender=d.other)


# ---------------------------------------------------------------- the constructor


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"submit_bond": 0}, r"ZeroBond\(\)"),
        ({"challenge_bond": 0}, r"ZeroBond\(\)"),
        ({"window": 0}, r"ZeroWindow\(\)"),
        ({"clock": 0}, r"ClockTooShort\(clockBudget=0, minimum=2\)"),
        ({"clock": 1}, r"ClockTooShort\(clockBudget=1, minimum=2\)"),
        ({"clock": 2**32}, r"InvalidParameters\(\)"),
        ({"window": 2**32}, r"InvalidParameters\(\)"),
    ],
)
def test_the_constructor_refuses_parameters_no_game_can_be_played_with(
    d: Deployment, changes: dict[str, int], error: str
) -> None:
    """Without bonds a claim or a game costs nothing (spam is free, a liar risks nothing); without
    a window nobody can challenge; with a clock under two seconds the side to move cannot move at
    all (its move lands a block, at least a second, after its turn began and must find time left)."""
    params = {"submit_bond": SUBMIT_BOND, "challenge_bond": CHALLENGE_BOND, "clock": CLOCK, "window": WINDOW}
    params |= changes
    with pytest.raises(ProverError, match=f"deploying DisputeGame reverted: {error}"):
        DisputeGame.deploy(
            d.chain.w3,
            d.mips.address,
            4,
            params["submit_bond"],
            params["challenge_bond"],
            params["clock"],
            params["window"],
        )


def test_the_shortest_clock_accepted_still_allows_a_move() -> None:
    d = deploy(k=4, clock=MIN_CLOCK)
    d.chain.advance_time(10**6)
    assert d.game.call("MIN_CLOCK_BUDGET") == MIN_CLOCK
    _, game = open_game(d)
    d.game.bisect(game, fake_hashes(3), sender=d.submitter)  # the next block: one second spent
    d.game.select(game, 1, sender=d.challenger)
    assert d.game.game(game).left == STEPS // 4


# ---------------------------------------------------------------- one task, one result


def test_a_computation_is_one_task(d: Deployment) -> None:
    """A second task of the same roots would let a second claim on 'the same task' become final
    beside the first: the roots name one task."""
    task = d.game.create_task(*ROOTS, sender=d.other)
    assert d.game.task_of(*ROOTS) == task
    with pytest.raises(ProverError, match=f"TaskExists\\(taskId={task}\\)"):
        d.game.create_task(*ROOTS, sender=d.challenger)
    assert d.game.task_of(ROOTS[0], ROOTS[1], b"\x04" * 32) == 0


def test_the_first_claim_to_finalize_is_the_tasks_only_result(d: Deployment) -> None:
    """Two unchallenged claims with different outputs: the first to finalize is the result; the
    other, also past its window, is superseded (its bond comes back, it is no answer), and no
    claim on the task can be submitted any more."""
    task = d.game.create_task(*ROOTS, sender=d.other)
    honest, conflicting = claim_of(d, task), lie(d, task)
    d.chain.advance_time(WINDOW + 1)
    assert d.game.finalize(honest, sender=d.challenger).event("ClaimFinalized").args["claimId"] == honest
    superseded = d.game.finalize(conflicting, sender=d.challenger).event("ClaimSuperseded").args
    assert superseded == {"claimId": conflicting, "finalClaimId": honest}
    assert (d.game.claim(honest).status, d.game.claim(conflicting).status) == ("final", "superseded")
    assert d.game.final_claim_of(task) == honest
    with pytest.raises(ProverError, match="ClaimNotPending"):
        d.game.finalize(conflicting, sender=d.other)  # superseded is the end: never final later
    with pytest.raises(ProverError, match=f"TaskSettled\\(taskId={task}, finalClaimId={honest}\\)"):
        lie(d, task)
    # Both bonds are back with their submitters; nothing else is held.
    assert d.game.balance_of(d.submitter) == d.game.balance_of(d.other) == SUBMIT_BOND
    assert d.balance(d.game.address) == 2 * SUBMIT_BOND


def test_a_challenged_claim_that_wins_its_games_after_another_is_final_is_superseded(d: Deployment) -> None:
    """The order of finalization decides, not the order of submission: a claim held back by an
    open game finalizes after a later, unchallenged one and is superseded (it keeps the bond it
    won from its challenger and gets its own back)."""
    task = d.game.create_task(*ROOTS, sender=d.other)
    first = claim_of(d, task)
    game = d.game.challenge(first, sender=d.challenger)
    second = lie(d, task)
    d.game.bisect(game, fake_hashes(3), sender=d.submitter)
    d.chain.advance_time(WINDOW + 1)  # the challenger's clock runs out too
    with pytest.raises(ProverError, match="GamesOpen"):
        d.game.finalize(first, sender=d.other)
    d.game.finalize(second, sender=d.other)
    d.game.claim_timeout(game, sender=d.submitter)
    d.game.finalize(first, sender=d.other)
    assert (d.game.claim(first).status, d.game.claim(second).status) == ("superseded", "final")
    assert d.game.final_claim_of(task) == second
    assert d.game.balance_of(d.submitter) == SUBMIT_BOND + CHALLENGE_BOND


def test_a_conflicting_claim_that_is_refuted_leaves_the_result_alone(d: Deployment) -> None:
    """A lie on a task: refuted within its window, it never competes with the true claim."""
    task = d.game.create_task(*ROOTS, sender=d.other)
    honest, conflicting = claim_of(d, task), lie(d, task)
    game = d.game.challenge(conflicting, sender=d.challenger)
    d.chain.advance_time(CLOCK + 1)  # the liar does not defend
    d.game.claim_timeout(game, sender=d.challenger)
    d.chain.advance_time(WINDOW)
    d.game.finalize(honest, sender=d.other)
    with pytest.raises(ProverError, match="ClaimNotPending"):
        d.game.finalize(conflicting, sender=d.other)
    assert d.game.final_claim_of(task) == honest
    assert d.game.balance_of(d.challenger) == CHALLENGE_BOND + SUBMIT_BOND


def test_a_claim_on_a_settled_task_is_refused_however_it_is_sent(d: Deployment) -> None:
    task = d.game.create_task(*ROOTS, sender=d.other)
    claim = claim_of(d, task)
    d.chain.advance_time(WINDOW + 1)
    d.game.finalize(claim, sender=d.other)
    for sender in (d.submitter, d.challenger):  # the same result again, by anyone
        with pytest.raises(ProverError, match="TaskSettled"):
            claim_of(d, task, sender=sender)


# ---------------------------------------------------------------- the end of a game


def test_no_move_of_any_kind_after_a_game_ended(d: Deployment) -> None:
    claim, game = open_game(d)
    d.game.bisect(game, fake_hashes(3), sender=d.submitter)
    d.game.select(game, 3, sender=d.challenger)
    d.chain.advance_time(CLOCK + 1)
    d.game.claim_timeout(game, sender=d.challenger)
    opening = NodeOpening(bytes(32), (0,), (bytes(32),) * 20, (bytes(32),), ((bytes(32),) * 20,), bytes(32),
                          (bytes(32),) * 20, bytes(226), (bytes(32),) * 4)  # fmt: skip
    for call, args, sender in [
        ("bisect", (game, fake_hashes(3)), d.submitter),
        ("select", (game, 0), d.challenger),
        ("step", (game, bytes(226), bytes(1792)), d.other),
        ("open_node", (game, opening), d.submitter),
        ("claim_timeout", (game,), d.submitter),
    ]:
        with pytest.raises(ProverError, match=f"GameOver\\(gameId={game}\\)"):
            getattr(d.game, call)(*args, sender=sender)
    assert d.game.claim(claim).status == "refuted"
    assert d.game.balance_of(d.challenger) == CHALLENGE_BOND + SUBMIT_BOND


# ---------------------------------------------------------------- clocks by block time


@pytest.mark.parametrize("seconds_left", [1, 0])
def test_a_move_in_the_last_second_counts_and_one_a_second_later_does_not(
    d: Deployment, seconds_left: int
) -> None:
    """The block's timestamp decides: a move mined with one second left is taken; mined when the
    clock reads zero it reverts, and the other side wins by timeout instead."""
    claim, game = open_game(d)
    # The view reads the latest block; the move is mined in the next one, a second later (and
    # advance_time's block lands a second before the time it is given).
    d.chain.advance_time(d.game.game(game).mover_seconds_left - seconds_left)
    assert d.game.game(game).mover_seconds_left == seconds_left + 1
    if seconds_left:
        d.game.bisect(game, fake_hashes(3), sender=d.submitter)
        with pytest.raises(ProverError, match="ClockNotExpired"):
            d.game.claim_timeout(game, sender=d.challenger)
        assert d.game.game(game).turn.value == "challenger"
    else:
        with pytest.raises(ProverError, match=f"ClockExpired\\(gameId={game}, side=0\\)"):
            d.game.bisect(game, fake_hashes(3), sender=d.submitter)
        d.game.claim_timeout(game, sender=d.challenger)
        assert d.game.claim(claim).status == "refuted"


# ---------------------------------------------------------------- a game kept as its state's hash


def test_a_game_is_stored_as_the_hash_of_its_state(d: Deployment) -> None:
    """`challenge` stores keccak256(abi.encode(state)) of the state in GameStarted (S0 and SN as
    its ends); every move stores the hash of the state its event carries; a resolved game stores
    its status."""
    claim, game = open_game(d)
    started = d.game.game_state(game)
    assert bytes(d.game.call("games", game)) == started.state.hash()
    assert started.state.left_hash == d.game.call("tasks", d.game.claim(claim).task_id)
    assert started.state.right_hash == d.game.claim(claim).final_state
    assert (started.state.left, started.state.right, started.state.posted_hash) == (0, STEPS, bytes(32))
    hashes = fake_hashes(3)
    bisected = GameState.from_abi(
        d.game.bisect(game, hashes, sender=d.submitter).event("Bisected").args["state"]
    )
    assert bisected.posted_hash == keccak(b"".join(hashes))
    assert bytes(d.game.call("games", game)) == bisected.hash()
    selected = GameState.from_abi(d.game.select(game, 0, sender=d.challenger).event("Selected").args["state"])
    assert (selected.left, selected.right, selected.left_hash, selected.right_hash) == (
        0,
        STEPS // 4,
        started.state.left_hash,
        hashes[0],
    )
    assert bytes(d.game.call("games", game)) == selected.hash()
    d.chain.advance_time(CLOCK + 1)
    d.game.claim_timeout(game, sender=d.challenger)
    assert d.game.call("games", game) == (3).to_bytes(32, "big")  # GameStatus.ChallengerWon
    assert d.game.game(game).over and d.game.game_state(game).state == selected


FORGERIES = {
    # the defender's: more time on its clock; the challenger's: another agreed state, another
    # interval; anyone's: itself as a party, an earlier round's posted hashes
    "defender_clock": lambda state: replace(state, defender_clock=state.defender_clock + 100),
    "left_hash": lambda state: replace(state, left_hash=keccak(b"forged")),
    "right": lambda state: replace(state, right=state.right - 1),
    "submitter": lambda state: replace(state, submitter=ACCOUNT),
    "posted_hash": lambda state: replace(state, posted_hash=keccak(b"forged")),
    "turn_start": lambda state: replace(state, turn_start=0),
}
ACCOUNT = "0x" + "ab" * 20


@pytest.mark.parametrize("field", sorted(FORGERIES))
def test_every_move_refuses_a_forged_state(d: Deployment, field: str) -> None:
    """A state in calldata that is not the stored one (any field changed) is refused by every
    move with GameStateMismatch, whoever sends it and whatever the move."""
    _, game = open_game(d)
    d.game.bisect(game, fake_hashes(3), sender=d.submitter)
    state = d.game.game_state(game).state
    forged = FORGERIES[field](state)
    expected = (
        f"GameStateMismatch\\(gameId={game}, expected=0x{state.hash().hex()}, got=0x{forged.hash().hex()}\\)"
    )
    posted = tuple(fake_hashes(3))
    moves = [
        lambda: d.game.select(game, 1, sender=d.challenger, posted=posted, state=forged),
        lambda: d.game.bisect(game, fake_hashes(3), sender=d.submitter, state=forged),
        lambda: d.game.step(game, bytes(226), bytes(1792), sender=d.challenger, state=forged),
        lambda: d.game.claim_timeout(game, sender=d.other, state=forged),
    ]
    for move in moves:
        with pytest.raises(ProverError, match=expected):
            move()
    with pytest.raises(ProverError, match="GameStateMismatch"):
        d.game.call("gameView", game, forged.as_abi())
    assert d.game.game_state(game).state == state  # nothing moved
    d.game.select(game, 1, sender=d.challenger, posted=posted, state=state)


def test_a_replayed_earlier_state_is_refused(d: Deployment) -> None:
    """A move cannot be made on a state the game has left: the state before the last move (a
    defender bisecting the same round again, a challenger selecting again) is not stored."""
    _, game = open_game(d)
    started = d.game.game_state(game).state
    d.game.bisect(game, fake_hashes(3), sender=d.submitter)
    bisected = d.game.game_state(game).state
    with pytest.raises(ProverError, match="GameStateMismatch"):
        d.game.bisect(game, fake_hashes(3, salt=1), sender=d.submitter, state=started)
    d.game.select(game, 2, sender=d.challenger)
    with pytest.raises(ProverError, match="GameStateMismatch"):
        d.game.select(game, 1, sender=d.challenger, posted=tuple(fake_hashes(3)), state=bisected)


def test_a_resolved_game_refuses_moves_whatever_state_is_passed(d: Deployment) -> None:
    """Once resolved, the stored status (not a state hash) answers every move: GameOver, for the
    game's last state as for any other."""
    _, game = open_game(d)
    last = d.game.game_state(game).state
    d.chain.advance_time(CLOCK + 1)
    d.game.claim_timeout(game, sender=d.challenger)
    for state in (last, replace(last, defender_clock=CLOCK)):
        with pytest.raises(ProverError, match=f"GameOver\\(gameId={game}\\)"):
            d.game.bisect(game, fake_hashes(3), sender=d.submitter, state=state)
        with pytest.raises(ProverError, match=f"GameOver\\(gameId={game}\\)"):
            d.game.claim_timeout(game, sender=d.submitter, state=state)


def test_a_restarted_party_reads_the_state_from_the_chain(d: Deployment) -> None:
    """A fresh wrapper (a party restarted mid-game) has no state in memory: it reads it from the
    events of the game's moves and checks it against the stored hash."""
    _, game = open_game(d)
    d.game.bisect(game, fake_hashes(3), sender=d.submitter)
    d.game.select(game, 3, sender=d.challenger)
    d.game.bisect(game, fake_hashes(3, salt=2), sender=d.submitter)
    fresh = DisputeGame(d.chain.w3, d.game.address)
    view = fresh.game(game)
    assert view.state == d.game.game_state(game).state
    assert view.posted == tuple(fake_hashes(3, salt=2))
    assert view.state.hash() == bytes(d.game.call("games", game))
    fresh.select(game, 0, sender=d.challenger)
    assert DisputeGame(d.chain.w3, d.game.address).game(game).posted == ()


def test_a_zero_hash_cannot_be_posted(d: Deployment) -> None:
    """No state hashes to zero: a defender posting zero posts no state."""
    _, game = open_game(d)
    with pytest.raises(ProverError, match=r"ZeroHash\(index=1\)"):
        d.game.bisect(game, [keccak(b"a"), bytes(32), keccak(b"b")], sender=d.submitter)


def test_a_claim_of_2_to_the_48_steps_or_more_is_refused(d: Deployment) -> None:
    """Intervals are kept in 48 bits (2.8e14 steps, months of the fast VM)."""
    task = d.game.create_task(*ROOTS, sender=d.other)
    with pytest.raises(ProverError, match=f"TooManySteps\\(steps={2**48}\\)"):
        claim_of(d, task, steps=2**48)
    claim = claim_of(d, task, steps=2**48 - 1)
    game = d.game.challenge(claim, sender=d.challenger)
    assert d.game.game(game).right == 2**48 - 1
