"""What the chain says about claims and games, read from the DisputeGame's storage and events:
lookups by task, claim and party, a game's history and outcome, the moves' records, and the lines
and fields `prover status` prints."""

from dataclasses import dataclass
from typing import Any

from eth_utils import event_abi_to_log_topic

from prover.chain.contracts import DisputeGame, Receipt
from prover.chain.game_view import GameState, GameView, Side
from prover.errors import ProverError
from prover.game.agent import Bisect, Move, OpenNode, Select, Step, rounds_needed, split_points
from prover.game.party import Party
from prover.output import Record

ETHER = 10**18
GAME_EVENTS = ("GameStarted", "Bisected", "Selected", "NodeOpened", "Stepped", "GameResolved")


# ---------------------------------------------------------------- chain lookups


def event_logs(game: DisputeGame, event: str, party: Party, **argument_filters: Any) -> list[Any]:
    return getattr(game.contract.events, event).get_logs(
        argument_filters=argument_filters, from_block=party.verified_deployment["block"]
    )


def find_task(game: DisputeGame, party: Party, roots: tuple[bytes, bytes, bytes]) -> int | None:
    for log in event_logs(game, "TaskCreated", party):
        if (log.args.programRoot, log.args.inputRoot, log.args.modelRoot) == roots:
            return log.args.taskId
    return None


def claim_log(game: DisputeGame, party: Party, task_id: int, final_hash: bytes) -> Any | None:
    """The ClaimSubmitted event of this party's claim of `final_hash` on the task, if it made one."""
    for log in event_logs(game, "ClaimSubmitted", party, taskId=task_id, submitter=party.sender):
        if log.args.finalState == final_hash:
            return log
    return None


def find_claim(game: DisputeGame, party: Party, task_id: int, final_hash: bytes) -> int | None:
    log = claim_log(game, party, task_id, final_hash)
    return None if log is None else log.args.claimId


def find_games(game: DisputeGame, party: Party, **argument_filters: Any) -> list[int]:
    return [log.args.gameId for log in event_logs(game, "GameStarted", party, **argument_filters)]


@dataclass(frozen=True)
class GameRecord:
    """A game's fixed facts and its history from the chain's events."""

    game_id: int
    claim_id: int
    defender: str
    challenger: str
    rounds: int
    gas: dict[Side, int]
    winner: Side | None
    by_timeout: bool


def stored_game(game: DisputeGame, game_id: int) -> GameState:
    """A game's state (the last one once it is over), read from the events of its moves."""
    known = game.game_state(game_id)
    if known is None:
        raise ProverError(f"no game {game_id} on the dispute game at {game.address}")
    return known.state


def parties_of(game: DisputeGame, game_id: int) -> tuple[int, str, str]:
    """A game's claim, defender (the claim's submitter) and challenger."""
    state = stored_game(game, game_id)
    return state.claim_id, state.submitter, state.challenger


def game_record(game: DisputeGame, party: Party, game_id: int) -> GameRecord:
    claim_id, defender, challenger = parties_of(game, game_id)
    topics = [
        [
            event_abi_to_log_topic(entry)
            for entry in game.contract.abi
            if entry["type"] == "event" and entry["name"] in GAME_EVENTS
        ],
        game_id.to_bytes(32, "big"),
    ]
    logs = party.w3.eth.get_logs(
        {"address": game.address, "fromBlock": party.verified_deployment["block"], "topics": topics}
    )
    gas = {Side.DEFENDER: 0, Side.CHALLENGER: 0}
    for tx_hash in dict.fromkeys(log["transactionHash"] for log in logs):
        receipt = party.w3.eth.get_transaction_receipt(tx_hash)
        gas[Side.DEFENDER if receipt["from"] == defender else Side.CHALLENGER] += receipt["gasUsed"]
    rounds = len(event_logs(game, "Selected", party, gameId=game_id))
    resolved = event_logs(game, "GameResolved", party, gameId=game_id)
    winner = (Side.DEFENDER if resolved[0].args.winner == 0 else Side.CHALLENGER) if resolved else None
    by_timeout = bool(resolved and resolved[0].args.byTimeout)
    return GameRecord(game_id, claim_id, defender, challenger, rounds, gas, winner, by_timeout)


def side_in_game(game: DisputeGame, party: Party, game_id: int) -> Side:
    _, defender, challenger = parties_of(game, game_id)
    if party.sender == challenger:
        return Side.CHALLENGER
    if party.sender == defender:
        return Side.DEFENDER
    raise ProverError(f"game {game_id}: account {party.sender} is neither its defender nor its challenger")


def my_game(game: DisputeGame, party: Party, game_id: int | None) -> tuple[int, Side]:
    """The game to play: --game, else this party's open game (as challenger, or as defender of one
    of its claims) where it is to move, else its latest game."""
    if game_id is not None:
        return game_id, side_in_game(game, party, game_id)
    candidates = [(gid, Side.CHALLENGER) for gid in find_games(game, party, challenger=party.sender)]
    for log in event_logs(game, "ClaimSubmitted", party, submitter=party.sender):
        candidates += [(gid, Side.DEFENDER) for gid in find_games(game, party, claimId=log.args.claimId)]
    if not candidates:
        raise ProverError(f"account {party.sender} has no game on the dispute game at {game.address}")
    candidates.sort()
    views = {gid: game.game(gid) for gid, _ in candidates}
    open_games = [(gid, side) for gid, side in candidates if not views[gid].over]
    my_turn = [(gid, side) for gid, side in open_games if views[gid].turn is side]
    return (my_turn or open_games or candidates)[-1]


# ---------------------------------------------------------------- moves


def as_hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def transaction_fields(receipt: Receipt) -> dict[str, Any]:
    return {"tx": as_hex(receipt.tx_hash), "gas": receipt.gas_used}


def make_move(
    game: DisputeGame,
    party: Party,
    game_id: int,
    move: Move,
    view: GameView,
) -> Receipt:
    """Send `move`, decided on `view` (whose posted hashes a select passes back to the contract)."""
    if isinstance(move, Bisect):
        return game.bisect(game_id, list(move.hashes), party.sender, state=view.state)
    if isinstance(move, Select):
        return game.select(game_id, move.index, party.sender, posted=view.posted, state=view.state)
    if isinstance(move, Step):
        return game.step(game_id, move.state_data, move.proof, party.sender, state=view.state)
    if isinstance(move, OpenNode):
        if move.opening is None:
            raise ProverError(f"game {game_id}: opening node {move.node} needs the party's opening")
        return game.open_node(game_id, move.opening, party.sender, state=view.state)
    return game.claim_timeout(game_id, party.sender, state=view.state)


def describe_move(move: Move, view: GameView, k: int) -> tuple[dict[str, Any], str]:
    """A move made on `view`: its fields (its kind, the phase and interval it was made on, and
    what it names) and what a person reads."""
    fields, text = _move_fields(move, view, k)
    return {**fields, "phase": phase_of(view)}, text


def phase_of(view: GameView) -> str:
    return "graph" if view.graph_phase else "vm"


def _move_fields(move: Move, view: GameView, k: int) -> tuple[dict[str, Any], str]:
    interval = [view.left, view.right]
    if isinstance(move, Bisect):
        count = len(move.hashes)
        return (
            {"kind": "bisect", "interval": interval, "hashes": [as_hex(h) for h in move.hashes]},
            f"posted {count} hash{'' if count == 1 else 'es'} splitting [{view.left}, {view.right}]",
        )
    if isinstance(move, Select):
        points = split_points(view.left, view.right, k)
        piece = [points[move.index], points[move.index + 1]]
        return (
            {"kind": "select", "interval": interval, "index": move.index, "piece": piece},
            f"selected piece {move.index}: [{piece[0]}, {piece[1]}]",
        )
    if isinstance(move, Step):
        return {"kind": "step", "interval": interval, "step": move.step}, f"proved step {move.step} on chain"
    if isinstance(move, OpenNode):
        steps = int.from_bytes(move.opening.final_state[90:98], "big") if move.opening else None
        return (
            {"kind": "open_node", "interval": interval, "node": move.node, "vm_steps": steps},
            f"opened node {move.node}: the VM game on it is [0, {steps}]",
        )
    return {"kind": "timeout", "interval": interval}, "claimed the win: the other side's clock ran out"


def move_made(
    game: DisputeGame,
    party: Party,
    game_id: int,
    side: Side,
    move: Move,
    view: GameView,
    k: int,
) -> Record:
    """Send `move` for `side`; what was done, with the transaction and its gas."""
    receipt = make_move(game, party, game_id, move, view)
    fields, text = describe_move(move, view, k)
    return Record(
        {"game": game_id, "side": side.value, "state": "moved", **fields, **transaction_fields(receipt)},
        f"game {game_id}: {text} (gas {receipt.gas_used})",
    )


def outcome(record: GameRecord) -> str:
    if record.winner is None:
        return "open"
    how = " (by timeout)" if record.by_timeout else ""
    return f"the {record.winner.value} won{how}"


def outcome_fields(record: GameRecord) -> dict[str, Any]:
    return {"winner": record.winner.value if record.winner else None, "by_timeout": record.by_timeout}


def game_over(game: DisputeGame, party: Party, game_id: int) -> Record:
    """What `respond` and `step` say of a game that has ended."""
    record = game_record(game, party, game_id)
    return Record(
        {"game": game_id, "state": "over", **outcome_fields(record)},
        f"game {game_id} is over: {outcome(record)}",
    )


def game_status(
    game: DisputeGame, party: Party, game_id: int, k: int, node_ops: list[str] | None = None
) -> dict[str, Any]:
    """One game as `prover status` shows it (and prints with --json). A multi-phase game also
    shows its phase and, once opened, its node (and the node's op when `node_ops`, the party's
    model's ops by node, are known)."""
    record = game_record(game, party, game_id)
    view = game.game(game_id)
    stored = view.state or stored_game(game, game_id)
    clocks = {Side.DEFENDER: stored.defender_clock, Side.CHALLENGER: stored.challenger_clock}
    if not view.over:
        clocks[view.turn] = view.mover_seconds_left
    claim = game.claim(record.claim_id)
    return {
        "game": game_id,
        "claim": record.claim_id,
        "defender": record.defender,
        "challenger": record.challenger,
        "interval": [view.left, view.right],
        "steps_claimed": claim.steps,
        # Rounds are bisect + select pairs: one is under way unless the game is at its last step.
        "round": record.rounds + (0 if view.over or view.right - view.left == 1 else 1),
        "rounds_at_most": rounds_needed(claim.steps, k),
        "turn": None if view.over else view.turn.value,
        "clocks": {side.value: seconds for side, seconds in clocks.items()},
        "winner": record.winner.value if record.winner else None,
        "by_timeout": record.by_timeout,
        "gas": {side.value: gas for side, gas in record.gas.items()},
        "phase": phase_of(view),
        "node": view.node or None,
        "op": node_ops[view.node - 1] if node_ops and view.node else None,
    }


def status_line(status: dict[str, Any]) -> str:
    left, right = status["interval"]
    head = f"game {status['game']} on claim {status['claim']}: "
    gas = f"gas defender {status['gas']['defender']}, challenger {status['gas']['challenger']}"
    if status["winner"]:
        how = " by timeout" if status["by_timeout"] else ""
        return head + f"the {status['winner']} won{how} after {status['round']} rounds; {gas}"
    clocks = status["clocks"]
    if status["phase"] == "graph":
        head += f"graph phase over nodes [{left}, {right}]; "
    elif status["node"]:
        head += f"VM phase on node {status['node']}" + (f" ({status['op']})" if status["op"] else "") + ": "
    return head + (
        f"[{left}, {right}] ({right - left} steps), round {status['round']} "
        f"of at most {status['rounds_at_most']}, {status['turn']} to move; "
        f"clocks defender {clocks['defender']} s, challenger {clocks['challenger']} s; {gas}"
    )


def claim_status(game: DisputeGame, claim_id: int, now: int) -> dict[str, Any]:
    """One claim as `prover status` shows it."""
    claim = game.claim(claim_id)
    return {
        "claim": claim_id,
        "task": claim.task_id,
        "submitter": claim.submitter,
        "status": claim.status,
        "steps": claim.steps,
        "open_games": claim.open_games,
        "window_ends": claim.deadline,
        "window_seconds_left": max(0, claim.deadline - now),
    }


def claim_line(status: dict[str, Any]) -> str:
    head = f"claim {status['claim']} on task {status['task']} by {status['submitter']}: {status['status']}"
    if status["status"] != "pending":
        return head
    if status["window_seconds_left"]:
        window = f"challenge window open for {status['window_seconds_left']} s more"
    else:
        window = "challenge window closed"
    return head + f", {window}, {status['open_games']} open game(s)"
