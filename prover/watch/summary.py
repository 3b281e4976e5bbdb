"""What the watcher shows of itself, made once per look at the chain: the figures its metrics export
(prover/watch/metrics.py) and the rows of its status page (prover/watch/status.py)."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Summary:
    account: str
    dispute_game: str
    block: int
    claims_seen: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)  # claims by verdict ("agree", "missing", ...)
    games_open: int = 0  # of the games the watcher plays
    games_won: int = 0
    games_lost: int = 0
    bonds_at_stake: int = 0  # wei of the watcher's bonds not yet settled (pending claims, open games)
    tightest_clock: int | None = None  # seconds left to the side to move, least over the open games
    withdrawable: int = 0
    claims: list[dict[str, Any]] = field(default_factory=list)
    games: list[dict[str, Any]] = field(default_factory=list)
