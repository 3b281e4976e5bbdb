"""A game as the chain reports it (DisputeGame.gameView), and the two sides that play it."""

from dataclasses import dataclass
from enum import Enum


class Side(Enum):
    DEFENDER = "defender"
    CHALLENGER = "challenger"

    def other(self) -> "Side":
        return Side.CHALLENGER if self is Side.DEFENDER else Side.DEFENDER


@dataclass(frozen=True)
class GameView:
    """One game as the chain reports it. `posted` holds the defender's hashes at the inner split
    points of [left, right] once it has bisected this round; it is empty while the defender is
    to move. A multi-phase game is in its graph phase (`graph_phase`: the interval is over node
    indices) until its node is opened; `node` is that node (0 before, and in single-phase games)."""

    left: int
    right: int
    left_hash: bytes
    right_hash: bytes
    posted: tuple[bytes, ...]
    turn: Side
    over: bool
    mover_seconds_left: int
    graph_phase: bool = False
    node: int = 0
