"""The party logic without a chain: a referee that follows docs/dispute-game.md plays whole games
between an honest trace and a faulty one; the honest side must win, whichever side it is on."""

from dataclasses import dataclass

import pytest
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from prover.chain.game_view import GameView, Side
from prover.game.agent import (
    Bisect,
    ClaimTimeout,
    FaultyTrace,
    Select,
    Step,
    Trace,
    Wait,
    bisect_hashes,
    next_move,
    rounds_needed,
    select_index,
    split_points,
)

STATE_SIZE = 226


def fake_state(label: bytes, step: int) -> bytes:
    """A 226-byte stand-in for a state encoding, different for every label and step."""
    return (keccak(label + b" %d" % step) * 8)[:STATE_SIZE]


@dataclass(frozen=True)
class ListTrace:
    """A trace as a list of state encodings, one per step 0..N; past the end the final one."""

    states: tuple[bytes, ...]

    @property
    def steps(self) -> int:
        return len(self.states) - 1

    def state_at(self, step: int) -> bytes:
        return self.states[min(step, self.steps)]

    def state_hash_at(self, step: int) -> bytes:
        return keccak(self.state_at(step))

    def witness_at(self, step: int) -> tuple[bytes, bytes]:
        return self.state_at(step), b"proof of %d" % step


def honest_trace(steps: int) -> ListTrace:
    return ListTrace(tuple(fake_state(b"honest", i) for i in range(steps + 1)))


def liar_trace(honest: ListTrace, fault_step: int, steps: int) -> ListTrace:
    """Agrees with `honest` before fault_step, differs from there on, and may end elsewhere."""
    return ListTrace(
        tuple(honest.state_at(i) if i < fault_step else fake_state(b"liar", i) for i in range(steps + 1))
    )


def play(defender: Trace, challenger: Trace, truth: ListTrace, k: int, steps: int) -> tuple[Side, int]:
    """A whole game on [0, steps] (the defender's claim); returns the winner and the rounds. `truth`
    plays the verifier contract: executing step L from the agreed state gives truth's state L + 1."""
    left, right = 0, steps
    left_hash, right_hash = truth.state_hash_at(0), defender.state_hash_at(right)
    posted: tuple[bytes, ...] = ()
    turn, rounds = Side.DEFENDER, 0
    while True:
        game = GameView(left, right, left_hash, right_hash, posted, turn, over=False, mover_seconds_left=60)
        trace = defender if turn is Side.DEFENDER else challenger
        move = next_move(turn, game, trace, k)
        if isinstance(move, Step):
            assert move.step == left and keccak(move.state_data) == left_hash == truth.state_hash_at(left)
            return (Side.DEFENDER if truth.state_hash_at(left + 1) == right_hash else Side.CHALLENGER), rounds
        if isinstance(move, Bisect):
            assert len(move.hashes) == min(k, right - left) - 1
            posted, turn = move.hashes, Side.CHALLENGER
        else:
            assert isinstance(move, Select)
            points = split_points(left, right, k)
            ends = (left_hash, *posted, right_hash)
            left, right = points[move.index], points[move.index + 1]
            left_hash, right_hash = ends[move.index], ends[move.index + 1]
            posted, turn, rounds = (), Side.DEFENDER, rounds + 1


@given(
    steps=st.integers(min_value=1, max_value=5000),
    k=st.integers(min_value=2, max_value=64),
    fault=st.floats(min_value=0, max_value=1),
    length_change=st.integers(min_value=-3, max_value=3),
)
def test_the_honest_side_wins_in_both_directions(steps, k, fault, length_change):
    truth = honest_trace(steps)
    fault_step = 1 + round(fault * (steps - 1))
    liars = [
        FaultyTrace(truth, fault_step),
        liar_trace(truth, fault_step, max(fault_step, steps + length_change)),
    ]
    for liar in liars:
        liar_steps = liar.steps if isinstance(liar, ListTrace) else steps
        winner, rounds = play(defender=truth, challenger=liar, truth=truth, k=k, steps=steps)
        assert winner is Side.DEFENDER and rounds <= rounds_needed(steps, k)
        winner, rounds = play(defender=liar, challenger=truth, truth=truth, k=k, steps=liar_steps)
        assert winner is Side.CHALLENGER and rounds <= rounds_needed(liar_steps, k)


def test_a_fault_flips_one_register_from_its_step_on():
    truth = honest_trace(20)
    liar = FaultyTrace(truth, 7)
    assert [liar.state_hash_at(i) == truth.state_hash_at(i) for i in range(21)] == [True] * 7 + [False] * 14
    differing = [
        i for i, (a, b) in enumerate(zip(liar.state_at(9), truth.state_at(9), strict=True)) if a != b
    ]
    assert differing == [98 + 4 * 26 + 3]  # the lowest byte of $k0
    assert liar.witness_at(9) == (liar.state_at(9), truth.witness_at(9)[1])
    assert liar.witness_at(6) == truth.witness_at(6)


def test_split_points_follow_the_spec():
    assert split_points(0, 10, 4) == [0, 2, 5, 7, 10]
    assert split_points(5, 7, 16) == [5, 6, 7]
    assert split_points(0, 100, 2) == [0, 50, 100]


def test_bisect_posts_hashes_at_the_inner_points():
    trace = honest_trace(10)
    assert bisect_hashes(trace, 0, 10, 4) == tuple(trace.state_hash_at(i) for i in (2, 5, 7))


def test_select_names_the_first_disputed_piece():
    truth = honest_trace(10)
    liar = liar_trace(truth, 6, 10)
    posted = bisect_hashes(liar, 0, 10, 4)
    assert select_index(truth, 0, 10, 4, posted, liar.state_hash_at(10)) == 2  # [5, 7]: 7 is wrong
    with pytest.raises(ValueError, match="expected 3 posted hashes"):
        select_index(truth, 0, 10, 4, posted[:2], liar.state_hash_at(10))


def test_rounds_needed():
    assert rounds_needed(1, 2) == 0
    assert rounds_needed(8, 2) == 3
    assert rounds_needed(9, 2) == 4
    assert rounds_needed(1_000_000, 16) == 5
    assert rounds_needed(16**5 + 1, 16) == 6


def test_waiting_and_timeouts():
    trace = honest_trace(100)
    game = GameView(0, 100, trace.state_hash_at(0), trace.state_hash_at(100), (), Side.DEFENDER, False, 30)
    assert isinstance(next_move(Side.CHALLENGER, game, trace, 2), Wait)
    assert isinstance(next_move(Side.DEFENDER, game, trace, 2), Bisect)
    out_of_time = GameView(
        0, 100, trace.state_hash_at(0), trace.state_hash_at(100), (), Side.DEFENDER, False, 0
    )
    assert isinstance(next_move(Side.CHALLENGER, out_of_time, trace, 2), ClaimTimeout)
    over = GameView(0, 100, trace.state_hash_at(0), trace.state_hash_at(100), (), Side.DEFENDER, True, 0)
    assert next_move(Side.CHALLENGER, over, trace, 2) == Wait("the game is over")


def test_only_a_party_holding_the_agreed_state_proves_the_last_step():
    truth = honest_trace(10)
    elsewhere = liar_trace(truth, 0, 10)  # a run from another input: differs from step 0
    game = GameView(4, 5, truth.state_hash_at(4), truth.state_hash_at(5), (), Side.CHALLENGER, False, 30)
    assert next_move(Side.DEFENDER, game, truth, 2) == Step(4, *truth.witness_at(4))
    assert isinstance(next_move(Side.CHALLENGER, game, elsewhere, 2), Wait)
