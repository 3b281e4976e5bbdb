"""DisputeGame.sol without a real trace: commitments (S0, output proofs), bonds and windows, turn
order, chess clocks, resolution, payouts and re-entrancy. Games decided by a `step` over a real
MIPS trace are in test_contract_game_play.py."""

import os

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
from hypothesis import given, settings
from hypothesis import strategies as st

from prover.chain.artifacts import load_artifact
from prover.errors import ProverError
from prover.task.golden import initial_state_hash, region_root

OUTPUT = (7).to_bytes(4, "big") + bytes(range(10))
STEPS = 1_000


@pytest.fixture
def d() -> Deployment:
    return deploy(k=4)


def open_claim(d: Deployment, output: bytes = OUTPUT, steps: int = STEPS) -> tuple[int, int]:
    task = d.game.create_task(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, sender=d.other)
    mem_root, siblings = output_commitment(output)
    claim = d.game.submit(task, final_state(mem_root, steps), output, siblings, sender=d.submitter)
    return task, claim


def open_game(d: Deployment, steps: int = STEPS) -> tuple[int, int]:
    _, claim = open_claim(d, steps=steps)
    return claim, d.game.challenge(claim, sender=d.challenger)


def fake_hashes(count: int, salt: int = 0) -> list[bytes]:
    return [keccak(f"{salt}:{i}".encode()) for i in range(count)]


# ---------------------------------------------------------------- commitments


def test_initial_state_is_computed_like_the_golden_image(d: Deployment) -> None:
    roots = [os.urandom(32) for _ in range(3)]
    assert d.game.initial_state_hash(*roots) == initial_state_hash(*roots)
    task = d.game.create_task(*roots, sender=d.other)
    assert d.game.contract.functions.tasks(task).call() == initial_state_hash(*roots)
    assert d.game.task_of(*roots) == task


@settings(max_examples=15, deadline=None)
@given(payload=st.binary(max_size=200))
def test_region_root_matches_the_golden_image(payload: bytes) -> None:
    assert _shared_deployment().game.region_root(payload) == region_root(payload)


_DEPLOYMENT: list[Deployment] = []


def _shared_deployment() -> Deployment:
    """One deployment for the property test (hypothesis examples must not rebuild the chain)."""
    if not _DEPLOYMENT:
        _DEPLOYMENT.append(deploy())
    return _DEPLOYMENT[0]


def test_submit_records_the_claim(d: Deployment) -> None:
    task, claim_id = open_claim(d)
    claim = d.game.claim(claim_id)
    mem_root, _ = output_commitment(OUTPUT)
    assert (claim.task_id, claim.submitter, claim.status) == (task, d.submitter, "pending")
    assert claim.steps == STEPS
    assert claim.final_state == keccak(final_state(mem_root, STEPS))
    assert claim.output_hash == keccak(OUTPUT)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("unknown task", "UnknownTask"),
        ("bond", "WrongBond"),
        ("short state", "BadStateLength"),
        ("not exited", "NotExitedCleanly"),
        ("exit code", "NotExitedCleanly"),
        ("zero steps", "NoSteps"),
        ("other output", "OutputNotProven"),
        ("wrong sibling", "OutputNotProven"),
        ("output in another slot", "OutputNotProven"),
    ],
)
def test_submit_refuses_unproven_results(d: Deployment, change: str, error: str) -> None:
    task = d.game.create_task(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, sender=d.other)
    mem_root, siblings = output_commitment(OUTPUT)
    state, output, value = final_state(mem_root, STEPS), OUTPUT, SUBMIT_BOND
    if change == "unknown task":
        task += 1
    elif change == "bond":
        value -= 1
    elif change == "short state":
        state = state[:-1]
    elif change == "not exited":
        state = final_state(mem_root, STEPS, exited=0)
    elif change == "exit code":
        state = final_state(mem_root, STEPS, exit_code=0xF1)
    elif change == "zero steps":
        state = final_state(mem_root, 0)
    elif change == "other output":
        output = OUTPUT[:-1] + b"\x00"
    elif change == "wrong sibling":
        siblings = [siblings[0], siblings[1], os.urandom(32), siblings[3]]
    elif change == "output in another slot":
        # The output's region root placed as slot 2 (the model) with slot 3 empty.
        mem_root, siblings = output_commitment(b"", other_slots={2: region_root(OUTPUT)})
        state = final_state(mem_root, STEPS)
    with pytest.raises(ProverError, match=error):
        d.game.transact("submit", task, state, output, siblings, sender=d.submitter, value=value)


# ---------------------------------------------------------------- windows, finalization, money


def test_unchallenged_claim_finalizes_after_its_window(d: Deployment) -> None:
    _, claim = open_claim(d)
    with pytest.raises(ProverError, match="WindowOpen"):
        d.game.finalize(claim, sender=d.other)
    d.chain.advance_time(WINDOW + 1)
    with pytest.raises(ProverError, match="WindowClosed"):
        d.game.challenge(claim, sender=d.challenger)
    receipt = d.game.finalize(claim, sender=d.other)
    assert receipt.event("ClaimFinalized").args["claimId"] == claim
    assert d.game.claim(claim).status == "final"
    with pytest.raises(ProverError, match="ClaimNotPending"):
        d.game.finalize(claim, sender=d.other)
    before = d.balance(d.submitter)
    assert d.game.withdraw(sender=d.submitter) == SUBMIT_BOND
    assert d.game.balance_of(d.submitter) == 0
    assert d.balance(d.submitter) > before + SUBMIT_BOND - 10**16  # minus the gas of withdraw
    with pytest.raises(ProverError, match="NothingToWithdraw"):
        d.game.withdraw(sender=d.submitter)


def test_open_game_blocks_finalization_until_it_ends(d: Deployment) -> None:
    claim, game = open_game(d)
    d.game.bisect(game, fake_hashes(3), sender=d.submitter)
    d.chain.advance_time(WINDOW + 1)  # the challenger lets its clock run out, the window passes
    with pytest.raises(ProverError, match="GamesOpen"):
        d.game.finalize(claim, sender=d.other)
    receipt = d.game.claim_timeout(game, sender=d.other)
    assert receipt.event("GameResolved").args["winner"] == 0  # the defender
    d.game.finalize(claim, sender=d.other)
    assert d.game.balance_of(d.submitter) == SUBMIT_BOND + CHALLENGE_BOND


def test_a_final_claim_cannot_be_challenged(d: Deployment) -> None:
    _, claim = open_claim(d)
    d.chain.advance_time(WINDOW + 1)
    d.game.finalize(claim, sender=d.submitter)
    with pytest.raises(ProverError, match=r"ClaimNotPending\(claimId=1, status=3\)"):
        d.game.challenge(claim, sender=d.challenger)


def test_challenge_needs_the_bond(d: Deployment) -> None:
    _, claim = open_claim(d)
    with pytest.raises(ProverError, match="WrongBond"):
        d.game.transact("challenge", claim, sender=d.challenger, value=CHALLENGE_BOND + 1)
    with pytest.raises(ProverError, match="UnknownClaim"):
        d.game.challenge(claim + 1, sender=d.challenger)


def test_submitter_bond_goes_to_the_first_winning_challenger_only(d: Deployment) -> None:
    claim, first = open_game(d)
    second = d.game.challenge(claim, sender=d.other)
    d.chain.advance_time(CLOCK + 1)  # the defender answers neither game
    refuted = d.game.claim_timeout(first, sender=d.challenger)
    assert refuted.event("ClaimRefuted").args == {"claimId": claim, "gameId": first}
    assert d.game.claim(claim).status == "refuted"
    later = d.game.claim_timeout(second, sender=d.other)
    assert not [e for e in later.events if e.name == "ClaimRefuted"]
    assert d.game.balance_of(d.challenger) == CHALLENGE_BOND + SUBMIT_BOND
    assert d.game.balance_of(d.other) == CHALLENGE_BOND
    assert d.game.balance_of(d.submitter) == 0
    with pytest.raises(ProverError, match="ClaimNotPending"):
        d.game.challenge(claim, sender=d.other)
    d.chain.advance_time(WINDOW)
    with pytest.raises(ProverError, match="ClaimNotPending"):
        d.game.finalize(claim, sender=d.submitter)
    # Every wei that came in is credited exactly once.
    total = sum(d.game.balance_of(a) for a in (d.submitter, d.challenger, d.other))
    assert total == SUBMIT_BOND + 2 * CHALLENGE_BOND == d.balance(d.game.address)


# ---------------------------------------------------------------- turns


def test_moves_out_of_turn_or_by_others_revert(d: Deployment) -> None:
    _, game = open_game(d)
    view = d.game.game(game)
    assert (view.left, view.right, view.turn.value, view.over) == (0, STEPS, "defender", False)
    with pytest.raises(ProverError, match="NotYourTurn"):
        d.game.select(game, 0, sender=d.challenger)
    with pytest.raises(ProverError, match="NotDefender"):
        d.game.bisect(game, fake_hashes(3), sender=d.challenger)
    with pytest.raises(ProverError, match=r"WrongHashCount\(expected=3, got=2\)"):
        d.game.bisect(game, fake_hashes(2), sender=d.submitter)
    with pytest.raises(ProverError, match="NotOneStep"):
        d.game.step(game, bytes(226), bytes(1792), sender=d.challenger)
    receipt = d.game.bisect(game, fake_hashes(3), sender=d.submitter)
    assert receipt.event("Bisected").args["hashes"] == fake_hashes(3)
    with pytest.raises(ProverError, match="NotYourTurn"):
        d.game.bisect(game, fake_hashes(3, salt=1), sender=d.submitter)  # a repeated move
    with pytest.raises(ProverError, match="NotChallenger"):
        d.game.select(game, 0, sender=d.submitter)
    with pytest.raises(ProverError, match="IndexOutOfRange"):
        d.game.select(game, 4, sender=d.challenger)
    d.game.select(game, 2, sender=d.challenger)
    view = d.game.game(game)
    assert (view.left, view.right) == (500, 750)
    assert (view.left_hash, view.right_hash) == (fake_hashes(3)[1], fake_hashes(3)[2])
    with pytest.raises(ProverError, match="NotYourTurn"):
        d.game.select(game, 2, sender=d.challenger)  # a repeated move


def test_select_must_repeat_exactly_the_posted_hashes(d: Deployment) -> None:
    """The contract stores only the hash of a round's hashes; the challenger passes them back and
    cannot move the interval onto hashes the defender did not post."""
    _, game = open_game(d)
    posted = fake_hashes(3)
    receipt = d.game.bisect(game, posted, sender=d.submitter)
    assert d.game.game(game).posted == tuple(posted)  # read back from the Bisected event
    for forged in ([posted[0], fake_hashes(1, salt=9)[0], posted[2]], posted[:2], [*posted, posted[0]], []):
        with pytest.raises(ProverError, match="PostedHashesMismatch"):
            d.game.select(game, 1, sender=d.challenger, posted=tuple(forged))
    d.game.select(game, 1, sender=d.challenger, posted=tuple(posted))
    view = d.game.game(game)
    assert (view.left, view.right, view.left_hash, view.right_hash) == (250, 500, posted[0], posted[1])
    assert view.posted == ()
    assert receipt.event("Bisected").args["hashes"] == posted


def test_the_last_piece_keeps_the_claimed_final_hash(d: Deployment) -> None:
    claim, game = open_game(d)
    d.game.bisect(game, fake_hashes(3), sender=d.submitter)
    d.game.select(game, 3, sender=d.challenger)
    view = d.game.game(game)
    assert (view.left, view.right, view.left_hash) == (750, STEPS, fake_hashes(3)[2])
    assert view.right_hash == d.game.claim(claim).final_state


def test_dissection_narrows_to_one_step_and_then_only_step_is_allowed(d: Deployment) -> None:
    _, game = open_game(d, steps=10)
    rounds = 0
    while (view := d.game.game(game)).right - view.left > 1:
        pieces = min(4, view.right - view.left)
        d.game.bisect(game, fake_hashes(pieces - 1, salt=rounds), sender=d.submitter)
        d.game.select(game, 0, sender=d.challenger)
        rounds += 1
    assert (view.left, view.right, rounds) == (0, 1, 2)  # 10 -> 2 (pieces of 2 or 3) -> 1
    assert view.turn.value == "challenger"
    with pytest.raises(ProverError, match="StepRequired"):
        d.game.bisect(game, [], sender=d.submitter)
    with pytest.raises(ProverError, match="StepRequired"):
        d.game.select(game, 0, sender=d.challenger)
    # The witness must be the agreed pre-state (S0 here): a forged start is refused.
    with pytest.raises(ProverError, match="StateHashMismatch"):
        d.game.step(game, final_state(bytes(32), 0, exited=0), bytes(1792), sender=d.challenger)


# ---------------------------------------------------------------- chess clocks


def test_defender_timeout_refutes_the_claim(d: Deployment) -> None:
    claim, game = open_game(d)
    with pytest.raises(ProverError, match="ClockNotExpired"):
        d.game.claim_timeout(game, sender=d.challenger)
    d.chain.advance_time(CLOCK + 1)
    with pytest.raises(ProverError, match="ClockExpired"):
        d.game.bisect(game, fake_hashes(3), sender=d.submitter)
    receipt = d.game.claim_timeout(game, sender=d.challenger)
    resolved = receipt.event("GameResolved").args
    assert (resolved["winner"], resolved["byTimeout"], resolved["payee"]) == (1, True, d.challenger)
    assert resolved["amount"] == CHALLENGE_BOND + SUBMIT_BOND
    assert d.game.claim(claim).status == "refuted"
    assert d.game.game(game).over


def test_clocks_only_run_on_their_own_turn(d: Deployment) -> None:
    _, game = open_game(d)
    d.chain.advance_time(CLOCK // 2)
    d.game.bisect(game, fake_hashes(3), sender=d.submitter)  # the defender spent about half
    d.chain.advance_time(CLOCK - 50)  # the challenger's clock, not the defender's
    d.game.select(game, 1, sender=d.challenger)
    assert 0 < d.game.game(game).mover_seconds_left <= CLOCK // 2
    d.chain.advance_time(CLOCK // 2 - 100)
    with pytest.raises(ProverError, match="ClockNotExpired"):
        d.game.claim_timeout(game, sender=d.challenger)
    d.chain.advance_time(200)
    assert d.game.game(game).mover_seconds_left == 0
    d.game.claim_timeout(game, sender=d.challenger)
    assert d.game.game_status(game) == "challenger won"


def test_challenger_timeout_defends_the_claim(d: Deployment) -> None:
    claim, game = open_game(d)
    d.game.bisect(game, fake_hashes(3), sender=d.submitter)
    d.chain.advance_time(CLOCK + 1)
    with pytest.raises(ProverError, match="ClockExpired"):
        d.game.select(game, 0, sender=d.challenger)
    d.game.claim_timeout(game, sender=d.submitter)
    assert d.game.game_status(game) == "defender won"
    assert d.game.balance_of(d.submitter) == CHALLENGE_BOND
    assert d.game.claim(claim).status == "pending"


def test_no_move_after_the_end_and_no_second_resolution(d: Deployment) -> None:
    _, game = open_game(d)
    d.chain.advance_time(CLOCK + 1)
    d.game.claim_timeout(game, sender=d.challenger)
    for call, args, sender in [
        ("claim_timeout", (game,), d.submitter),
        ("bisect", (game, fake_hashes(3)), d.submitter),
        ("select", (game, 0), d.challenger),
        ("step", (game, bytes(226), bytes(1792)), d.challenger),
    ]:
        with pytest.raises(ProverError, match="GameOver"):
            getattr(d.game, call)(*args, sender=sender)
    assert d.game.balance_of(d.challenger) == CHALLENGE_BOND + SUBMIT_BOND


# ---------------------------------------------------------------- re-entrancy


@pytest.mark.parametrize("reentry", ["withdraw", "claimTimeout"])
def test_payout_to_a_reentering_contract(d: Deployment, reentry: str) -> None:
    artifact = load_artifact("ReentrantPayee")
    factory = d.chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = d.chain.w3.eth.wait_for_transaction_receipt(
        factory.constructor(d.game.address).transact({"from": d.challenger})
    )
    payee = d.chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    claim, other_game = open_game(d)

    def encode(function: str, *args: object) -> bytes:
        return bytes.fromhex(d.game.contract.encode_abi(function, list(args))[2:])

    def state_of(game_id: int) -> tuple:
        return d.game.game_state(game_id).state.as_abi()

    payee.functions.forward(encode("challenge", claim)).transact(
        {"from": d.challenger, "value": CHALLENGE_BOND}
    )
    game = other_game + 1
    d.chain.advance_time(CLOCK + 1)
    payee.functions.forward(encode("claimTimeout", game, state_of(game))).transact({"from": d.challenger})
    reentry_call = {
        "withdraw": encode("withdraw"),
        "claimTimeout": encode("claimTimeout", other_game, state_of(other_game)),
    }[reentry]
    payee.functions.setReentryCall(reentry_call).transact({"from": d.challenger})
    credited = d.game.balance_of(payee.address)
    assert credited == CHALLENGE_BOND + SUBMIT_BOND
    game_before = d.balance(d.game.address)
    payee.functions.forward(encode("withdraw")).transact({"from": d.challenger})
    assert payee.functions.reentryAttempts().call() == 1
    assert payee.functions.reentrySuccesses().call() == 0
    assert d.balance(payee.address) == credited
    assert d.balance(d.game.address) == game_before - credited
    assert d.game.balance_of(payee.address) == 0
    assert d.game.game_status(other_game) == "open"  # the re-entered timeout did not happen
