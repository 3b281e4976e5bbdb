"""The party logic of the dispute game: given this party's own trace and a game's state on chain,
the next move for one side (docs/dispute-game.md). Pure: no chain, no files; prover/game/play.py
reads the game, asks `next_move`, and sends the move.

The two sides play against the same interval [L, R]: both agree with the hash at L, and the
defender's hash at R is disputed. The defender splits the interval into n = min(k, R - L) pieces
and posts its hashes at the n - 1 inner points; the challenger names the first piece whose end it
disagrees with. Each party only ever compares the other side's hashes with its own trace, so an
honest trace always keeps the interval on a step where the liar's hash is wrong.
"""

from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from eth_hash.auto import keccak

from prover.chain.game_view import GameView, NodeOpening, Side


class Trace(Protocol):
    """A party's own execution trace, as the VM's checkpointed trace provides it. At a step past
    the end the machine has exited and no longer changes: the state is the final one."""

    def state_at(self, step: int) -> bytes:
        """The 226-byte state encoding (docs/machine.md) after `step` steps."""
        ...

    def state_hash_at(self, step: int) -> bytes: ...

    def witness_at(self, step: int) -> tuple[bytes, bytes]:
        """The pre-state encoding at `step` and the 1792-byte proof of instruction `step`."""
        ...


# Register $k0 (r26) in the state encoding: registers start at byte 98, 4 bytes each, big-endian.
FAULT_REGISTER = 26
FAULT_BYTE = 98 + 4 * FAULT_REGISTER + 3


def corrupt(state: bytes) -> bytes:
    """The state with the lowest bit of $k0 flipped."""
    return state[:FAULT_BYTE] + bytes([state[FAULT_BYTE] ^ 1]) + state[FAULT_BYTE + 1 :]


class FaultyTrace:
    """A dishonest party's trace: `honest` with register $k0 flipped from `fault_step` on.

    The guest program never reads or writes $k0 (a register reserved for a kernel), so this is
    exactly the run of a machine whose $k0 was corrupted by the transition into `fault_step`: every
    later instruction executes as in the honest run, memory and output are the same, and every
    state from `fault_step` on differs. The one wrong transition is step fault_step - 1."""

    def __init__(self, honest: Trace, fault_step: int) -> None:
        self.honest = honest
        self.fault_step = fault_step

    def state_at(self, step: int) -> bytes:
        state = self.honest.state_at(step)
        return corrupt(state) if step >= self.fault_step else state

    def state_hash_at(self, step: int) -> bytes:
        if step < self.fault_step:
            return self.honest.state_hash_at(step)
        return keccak(self.state_at(step))

    def witness_at(self, step: int) -> tuple[bytes, bytes]:
        state_data, proof = self.honest.witness_at(step)
        return (corrupt(state_data) if step >= self.fault_step else state_data), proof


@dataclass(frozen=True)
class Bisect:
    hashes: tuple[bytes, ...]


@dataclass(frozen=True)
class Select:
    index: int


@dataclass(frozen=True)
class Step:
    step: int
    state_data: bytes
    proof: bytes


@dataclass(frozen=True)
class OpenNode:
    """The defender's move at one node of a multi-phase game's graph phase: link node `node` to
    its VM run. The agent names the node; `opening` is DisputeGame.openNode's argument, built
    from the party's own run before the move is sent (prover/game/multiphase.py)."""

    node: int
    opening: NodeOpening | None = None


@dataclass(frozen=True)
class ClaimTimeout:
    """The side to move has used up its clock: the other side wins by saying so."""


@dataclass(frozen=True)
class Wait:
    """Nothing to do for this side now (the other side is to move, or the game is over)."""

    reason: str


Move = Bisect | Select | Step | OpenNode | ClaimTimeout | Wait


def split_points(left: int, right: int, k: int) -> list[int]:
    """All n + 1 points p_0 = left .. p_n = right of one round, n = min(k, right - left)."""
    pieces = min(k, right - left)
    return [left + (right - left) * i // pieces for i in range(pieces + 1)]


def bisect_hashes(trace: Trace, left: int, right: int, k: int) -> tuple[bytes, ...]:
    """The defender's move: its own hashes at the inner split points of [left, right]."""
    return tuple(trace.state_hash_at(point) for point in split_points(left, right, k)[1:-1])


def select_index(
    trace: Trace, left: int, right: int, k: int, posted: tuple[bytes, ...], right_hash: bytes
) -> int:
    """The challenger's move: the first piece [p_i, p_i+1] whose end the challenger disputes.

    The defender's hashes at p_1..p_n are `posted` plus `right_hash` at p_n = right. The
    challenger disputes right_hash (that is why the game exists), so some end always differs; if
    its own trace agrees even at `right`, the last piece is the one it can still dispute."""
    points = split_points(left, right, k)
    defender_hashes = (*posted, right_hash)
    if len(defender_hashes) != len(points) - 1:
        raise ValueError(f"expected {len(points) - 2} posted hashes for [{left}, {right}], got {len(posted)}")
    for index, (point, theirs) in enumerate(zip(points[1:], defender_hashes, strict=True)):
        if trace.state_hash_at(point) != theirs:
            return index
    return len(points) - 2


def next_move(side: Side, game: GameView, trace: Trace, k: int) -> Move:
    """What `side` should do now in `game`, judged by its own `trace` (in a multi-phase game's
    graph phase, its graph trace: only `state_hash_at` is used, over node indices)."""
    if game.over:
        return Wait("the game is over")
    if side is not game.turn and game.mover_seconds_left <= 0:
        return ClaimTimeout()
    if game.graph_phase and game.right - game.left == 1:
        if side is Side.DEFENDER:
            return OpenNode(game.right)
        return Wait(f"the defender is to open node {game.right}")
    if game.right - game.left == 1:
        # One instruction is left. Its pre-state hash is agreed, so either side can prove it from
        # its own trace (the contract lets anyone): the honest side does not wait for the liar.
        state_data, proof = trace.witness_at(game.left)
        if keccak(state_data) != game.left_hash:
            # A party whose own run started elsewhere (another input or model) cannot prove it.
            return Wait(f"our state at step {game.left} is not the agreed one; the other side proves it")
        return Step(game.left, state_data, proof)
    if side is not game.turn:
        return Wait(f"the {game.turn.value} is to move on [{game.left}, {game.right}]")
    if side is Side.DEFENDER:
        return Bisect(bisect_hashes(trace, game.left, game.right, k))
    return Select(select_index(trace, game.left, game.right, k, game.posted, game.right_hash))


def disagreement(side: Side, game: GameView, trace: Trace) -> str | None:
    """Why `trace` is not the run this side has played so far, judged by what the chain records
    (None when it is). Both sides agree with the hash at L (S0, or a hash the challenger accepted);
    the hash at R is the defender's own (SN, or one it posted), and the one the challenger disputed.
    A move from a trace that disagrees could post a hash that contradicts the side's own earlier
    ones, so the party refuses to move (prover/game/play.py)."""
    ours = trace.state_hash_at(game.left)
    if ours != game.left_hash:
        agreed = game.left_hash.hex()
        return f"our state hash at step {game.left} is 0x{ours.hex()}, the agreed one is 0x{agreed}"
    ours = trace.state_hash_at(game.right)
    if side is Side.DEFENDER and ours != game.right_hash:
        return f"our state hash at step {game.right} is 0x{ours.hex()}, we posted 0x{game.right_hash.hex()}"
    if side is Side.CHALLENGER and ours == game.right_hash:
        return f"our state hash at step {game.right} is the defender's 0x{ours.hex()}, which we disputed"
    return None


def rounds_needed(steps: int, k: int) -> int:
    """How many bisect/select rounds narrow [0, steps] down to one step (the longest piece of an
    interval of length d split into min(k, d) pieces has ceil(d / k) steps)."""
    rounds, length = 0, steps
    while length > 1:
        length, rounds = -(-length // k), rounds + 1
    return rounds


@runtime_checkable
class PhasedTrace(Protocol):
    """A multi-phase party's traces (prover/game/multiphase.py's GraphParty): its graph trace or
    the VM run of the game's node, by phase, and the opening of a node."""

    def trace_for(self, game: GameView) -> Trace: ...

    def opening(self, node: int) -> NodeOpening: ...


def phase_trace(trace: Trace | PhasedTrace, game: GameView) -> Trace:
    """The trace to judge `game` by: a multi-phase party's trace for the game's phase, else `trace`."""
    return trace.trace_for(game) if isinstance(trace, PhasedTrace) else trace


def with_opening(move: Move, trace: Trace | PhasedTrace) -> Move:
    """An OpenNode move with its opening built from the party's own run; other moves unchanged."""
    if isinstance(move, OpenNode) and isinstance(trace, PhasedTrace):
        return replace(move, opening=trace.opening(move.node))
    return move
