"""A game as the chain reports it (DisputeGame.gameView), the two sides that play it, and the
defender's opening of a multi-phase game's node (DisputeGame.openNode's argument)."""

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


@dataclass(frozen=True)
class NodeOpening:
    """DisputeGame.openNode's argument (docs/dispute-game.md, "Multi-phase games")."""

    node_root: bytes
    inputs: tuple[int, ...]  # tensor-tree positions of the node's activation inputs
    node_proof: tuple[bytes, ...]  # 20 siblings in the model's nodes tree
    input_roots: tuple[bytes, ...]
    input_proofs: tuple[tuple[bytes, ...], ...]  # 20 siblings each, in the agreed tensor tree
    output_root: bytes
    output_proof: tuple[bytes, ...]  # 20 siblings of the node's position
    final_state: bytes  # the node task's 226-byte final VM state
    final_output_proof: tuple[bytes, ...]  # slot 3's 4 top-tree siblings

    def as_abi(self) -> tuple:
        return (
            self.node_root,
            list(self.inputs),
            list(self.node_proof),
            list(self.input_roots),
            [list(proof) for proof in self.input_proofs],
            self.output_root,
            list(self.output_proof),
            self.final_state,
            list(self.final_output_proof),
        )
