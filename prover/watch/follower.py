"""Following the DisputeGame's events: every event the watcher acts on, in chain order, from the
block after the last one read up to the latest block, a bounded range of blocks per request."""

from dataclasses import dataclass
from typing import Any

from eth_utils import event_abi_to_log_topic
from web3 import Web3

from prover.chain.contracts import DisputeGame

FOLLOWED = (
    "TaskCreated",
    "GraphTaskCreated",
    "ClaimSubmitted",
    "GameStarted",
    "GameResolved",
    "ClaimRefuted",
    "ClaimFinalized",
)
BLOCKS_PER_REQUEST = 2_000  # nodes cap the range of one eth_getLogs


@dataclass(frozen=True)
class ChainEvent:
    name: str
    args: dict[str, Any]
    block: int


class EventFollower:
    def __init__(self, w3: Web3, game: DisputeGame) -> None:
        self.w3 = w3
        self.game = game
        self.topics = {
            event_abi_to_log_topic(entry): entry["name"]
            for entry in game.contract.abi
            if entry["type"] == "event" and entry["name"] in FOLLOWED
        }

    def events_after(self, cursor: int) -> tuple[list[ChainEvent], int]:
        """The followed events of blocks cursor + 1 .. latest, and the latest block (the new cursor)."""
        latest = self.w3.eth.block_number
        events = []
        for start in range(cursor + 1, latest + 1, BLOCKS_PER_REQUEST):
            logs = self.w3.eth.get_logs(
                {
                    "address": self.game.address,
                    "fromBlock": start,
                    "toBlock": min(latest, start + BLOCKS_PER_REQUEST - 1),
                    "topics": [list(self.topics)],
                }
            )
            for log in logs:
                name = self.topics[bytes(log["topics"][0])]
                decoded = getattr(self.game.contract.events, name)().process_log(log)
                events.append(ChainEvent(name, dict(decoded["args"]), log["blockNumber"]))
        return events, max(cursor, latest)
