"""The watcher's state on disk, BASEDIR/watch.json, written atomically after every change: how far
it has read the chain's events, the tasks, claims and games found there, and its verdict on each
claim. Killed at any point, a watcher finds either the old file or the new one: events past the
saved block are read again, and everything else (whose turn it is, a claim's status, what a game
has reached) is read from the chain, which is the record of every move. Nothing here decides a
move: a lost file costs a rescan from --from-block, not a move."""

from dataclasses import asdict, dataclass, field
from pathlib import Path

from prover.errors import ProverError
from prover.task.basedir import read_json, write_json

STATE_JSON = "watch.json"
FORMAT = "prover-watch-1"


@dataclass
class ClaimEntry:
    task: int
    submitter: str
    final_state: str  # 0x hex, as claimed
    steps: int
    # "agree" / "disagree" with our own run; "missing" (the store lacks the task's data),
    # "unjudged" (seen after its window and in no game of ours); None until judged.
    verdict: str | None = None
    note: str = ""


@dataclass
class GameEntry:
    claim: int
    challenger: str


@dataclass
class WatchState:
    dispute_game: str
    cursor: int  # the last block whose events are in this state
    tasks: dict[int, list[str]] = field(default_factory=dict)  # task id: its three roots, 0x hex
    graph_tasks: list[int] = field(default_factory=list)  # the multi-phase ones among them
    claims: dict[int, ClaimEntry] = field(default_factory=dict)
    games: dict[int, GameEntry] = field(default_factory=dict)

    def save(self, basedir: Path) -> None:
        data = asdict(self)
        write_json(basedir / STATE_JSON, {"format": FORMAT, **data})

    @classmethod
    def load(cls, basedir: Path, dispute_game: str, from_block: int) -> "WatchState":
        """The saved state of a watcher of `dispute_game`, or a new one reading from `from_block`."""
        path = basedir / STATE_JSON
        if not path.exists():
            return cls(dispute_game, from_block - 1)
        data = read_json(path, "the watcher's state")
        if data.get("format") != FORMAT:
            raise ProverError(f"{path}: not a watcher's state ({FORMAT}); move it away to start afresh")
        if data["dispute_game"] != dispute_game:
            raise ProverError(
                f"{path}: the state of a watcher of the DisputeGame at {data['dispute_game']}, not "
                f"{dispute_game}; use another --basedir"
            )
        return cls(
            dispute_game,
            data["cursor"],
            {int(task): roots for task, roots in data["tasks"].items()},
            data["graph_tasks"],
            {int(claim): ClaimEntry(**entry) for claim, entry in data["claims"].items()},
            {int(game): GameEntry(**entry) for game, entry in data["games"].items()},
        )
