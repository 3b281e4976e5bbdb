"""A game as the chain reports it (its state, from the events of its moves, and
DisputeGame.gameView), the two sides that play it, and the defender's opening of a multi-phase
game's node (DisputeGame.openNode's argument)."""

from collections.abc import Mapping
from dataclasses import astuple, dataclass
from enum import Enum
from typing import Any

from eth_abi import abi
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from hexbytes import HexBytes


class Side(Enum):
    DEFENDER = "defender"
    CHALLENGER = "challenger"

    def other(self) -> "Side":
        return Side.CHALLENGER if self is Side.DEFENDER else Side.DEFENDER


GAME_STATE_FIELDS = (
    "claimId",
    "submitter",
    "challenger",
    "graphPhase",
    "node",
    "left",
    "right",
    "defenderClock",
    "challengerClock",
    "turnStart",
    "leftHash",
    "rightHash",
    "postedHash",
)
GAME_STATE_ABI = (
    "(uint64,address,address,bool,uint24,uint48,uint48,uint32,uint32,uint40,bytes32,bytes32,bytes32)"
)


@dataclass(frozen=True)
class GameState:
    """DisputeGame.GameState: a game's whole state, which the contract keeps as its hash and every
    move passes back (docs/contracts.md, "Gas"). `posted_hash` is keccak256 of this round's
    hashes, zero while the defender is to move."""

    claim_id: int
    submitter: str
    challenger: str
    graph_phase: bool
    node: int
    left: int
    right: int
    defender_clock: int
    challenger_clock: int
    turn_start: int
    left_hash: bytes
    right_hash: bytes
    posted_hash: bytes

    @classmethod
    def from_abi(cls, values: tuple | Mapping[str, Any]) -> "GameState":
        """From a decoded event argument (a mapping by the contract's field names) or a tuple."""
        if isinstance(values, Mapping):
            values = tuple(values[name] for name in GAME_STATE_FIELDS)
        fields = list(values)
        return cls(*fields[:10], *(bytes(HexBytes(value)) for value in fields[10:13]))

    @classmethod
    def unknown(cls) -> "GameState":
        """The state passed for a game that has none on the chain: the contract reports why."""
        return cls(
            0, "0x" + "00" * 20, "0x" + "00" * 20, False, 0, 0, 0, 0, 0, 0, bytes(32), bytes(32), bytes(32)
        )

    def as_abi(self) -> tuple:
        fields = astuple(self)
        return (
            fields[0],
            to_checksum_address(self.submitter),
            to_checksum_address(self.challenger),
            *fields[3:],
        )

    def hash(self) -> bytes:
        """keccak256(abi.encode(state)): what the contract stores while the game is open."""
        return keccak(abi.encode([GAME_STATE_ABI], [self.as_abi()]))


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
    state: GameState | None = None  # what a move passes back (None: the wrapper reads it again)


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
