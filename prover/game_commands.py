"""The chain commands of a party: `prover deploy`, `submit`, `challenge`, `respond`, `step`,
`status`, `dispute`, `finalize` and `withdraw` (docs/cli.md).

Every command is idempotent and resumable: the chain is the record of every claim and game, so a
command re-reads it and does only what is still to do (a claim or a game already made is found
again through its events, a move already made shows as the other side's turn). What only the
party knows (where the contracts are, its trace, its fault injection) lives in its base directory,
in files written atomically. A move the contract would refuse is refused before it is sent.

Every command takes --json (`chain_options`): it then prints its result as one JSON object on one
line (`prover dispute`: one per move and a last one with the game's status) instead of text.
"""

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, TimeExhausted, Web3RPCError
from web3.middleware import SignAndSendRawMiddlewareBuilder

from prover.agent import (
    Bisect,
    ClaimTimeout,
    FaultyTrace,
    GameView,
    Select,
    Side,
    Step,
    Trace,
    Wait,
    next_move,
    rounds_needed,
    split_points,
)
from prover.basedir import CHECKPOINTS, FINAL_JSON, GOLDEN_JSON, read_json, write_json
from prover.contracts import DisputeGame, MipsVerifier, Receipt
from prover.errors import ProverError
from prover.node import connect, reaching
from prover.output import Output, Record, json_option
from vm.errors import VmError
from vm.fast import FastExecutor
from vm.machine import Machine
from vm.trace import Trace as VmTrace

DEFAULT_RPC = "http://127.0.0.1:8545"
ETHER = 10**18
GAME_EVENTS = ("GameStarted", "Bisected", "Selected", "Stepped", "GameResolved")


@dataclass(frozen=True)
class Party:
    """One party's connection: its sender on the chain and its base directory."""

    w3: Web3
    rpc_url: str
    sender: str
    basedir: Path
    deployment_path: Path

    def deployment(self) -> dict[str, Any]:
        return read_json(self.deployment_path, "a deployment (run `prover deploy` first)")

    def dispute_game(self) -> DisputeGame:
        """The deployment's DisputeGame, checked to exist on this chain."""
        deployment = self.deployment()
        if not self.w3.eth.get_code(deployment["dispute_game"]):
            raise ProverError(
                f"{self.deployment_path}: no DisputeGame at {deployment['dispute_game']} on the chain at "
                f"{self.rpc_url} (a new chain? run `prover deploy` again)"
            )
        return DisputeGame(self.w3, deployment["dispute_game"])

    def trace(self) -> Trace:
        return load_trace(self.basedir)


def chain_options(command: Callable[..., None]) -> Callable[..., None]:
    """--rpc, --basedir, --account/--key and --deployment, turned into a connected Party; and
    --json, turned into the command's `out`."""

    @click.option(
        "--rpc", envvar="PROVER_RPC", default=DEFAULT_RPC, show_default=True, help="JSON-RPC endpoint."
    )
    @click.option(
        "--basedir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="This party's directory (golden.json, final.json, checkpoints, its state files).",
    )
    @click.option(
        "--account", type=click.IntRange(0), default=0, show_default=True, help="Node account index."
    )
    @click.option(
        "--key", envvar="PROVER_KEY", help="Private key (hex) to sign with instead of a node account."
    )
    @click.option(
        "--deployment",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="PROVER_DEPLOYMENT",
        help="deployment.json of `prover deploy` [default: BASEDIR/deployment.json].",
    )
    @functools.wraps(command)
    def wrapper(
        rpc: str, basedir: Path, account: int, key: str | None, deployment: Path | None, **kwargs: Any
    ):
        with reaching(rpc):
            party = connect_party(rpc, basedir, account, key, deployment)
            try:
                return command(party, **kwargs)
            except BadFunctionCallOutput:
                # The address holds a contract, but not one that answers as this version's
                # DisputeGame does (an older deployment on a long-lived node).
                raise ProverError(
                    f"{party.deployment_path}: the contract at {party.deployment()['dispute_game']} does "
                    "not answer as this version's DisputeGame; run `prover deploy` with a new --deployment"
                ) from None
            except TimeExhausted as exc:
                raise ProverError(f"the node at {rpc} did not mine a transaction: {exc}") from None
            except Web3RPCError as exc:
                # The node refused a request (a sender that cannot pay for gas, a nonce too low).
                error = (exc.rpc_response or {}).get("error", {})
                raise ProverError(f"the node at {rpc} refused: {error.get('message', exc)}") from None

    return json_option(wrapper)


def connect_party(rpc: str, basedir: Path, account: int, key: str | None, deployment: Path | None) -> Party:
    """The party the chain options describe, connected to its node."""
    w3 = connect(rpc)
    if key:
        try:
            signer = Account.from_key(key)
        except (ValueError, TypeError):
            raise ProverError("--key: not a 32-byte private key in hex") from None
        w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(signer), layer=0)
        sender = signer.address
    else:
        accounts = w3.eth.accounts
        if account >= len(accounts):
            raise ProverError(f"--account {account}: the node at {rpc} has {len(accounts)} accounts")
        sender = accounts[account]
    w3.eth.default_account = sender
    return Party(w3, rpc, to_checksum_address(sender), basedir, deployment or basedir / "deployment.json")


def fault_option(command: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--fault-step",
        type=click.IntRange(1),
        help="Dishonest party: corrupt register $k0 from this step on (recorded in BASEDIR/fault.json).",
    )(command)


def record_fault(basedir: Path, fault_step: int | None) -> None:
    """Make --fault-step part of the party: later commands read it from fault.json."""
    if fault_step is None:
        return
    steps = load_run(basedir).steps
    if fault_step > steps:
        raise ProverError(f"--fault-step {fault_step}: the run in {basedir} has only {steps} steps")
    path = basedir / "fault.json"
    if path.exists():
        recorded = read_json(path, "a fault injection")["step"]
        if recorded != fault_step:
            raise ProverError(f"{path}: this party already corrupts step {recorded}, not {fault_step}")
        return
    write_json(path, {"step": fault_step})


# ---------------------------------------------------------------- chain lookups


def _logs(game: DisputeGame, event: str, party: Party, **argument_filters: Any) -> list[Any]:
    return getattr(game.contract.events, event).get_logs(
        argument_filters=argument_filters, from_block=party.deployment()["block"]
    )


def find_task(game: DisputeGame, party: Party, roots: tuple[bytes, bytes, bytes]) -> int | None:
    for log in _logs(game, "TaskCreated", party):
        if (log.args.programRoot, log.args.inputRoot, log.args.modelRoot) == roots:
            return log.args.taskId
    return None


def claim_log(game: DisputeGame, party: Party, task_id: int, final_hash: bytes) -> Any | None:
    """The ClaimSubmitted event of this party's claim of `final_hash` on the task, if it made one."""
    for log in _logs(game, "ClaimSubmitted", party, taskId=task_id, submitter=party.sender):
        if log.args.finalState == final_hash:
            return log
    return None


def find_claim(game: DisputeGame, party: Party, task_id: int, final_hash: bytes) -> int | None:
    log = claim_log(game, party, task_id, final_hash)
    return None if log is None else log.args.claimId


def find_games(game: DisputeGame, party: Party, **argument_filters: Any) -> list[int]:
    return [log.args.gameId for log in _logs(game, "GameStarted", party, **argument_filters)]


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


def stored_game(game: DisputeGame, game_id: int) -> dict[str, Any]:
    """The contract's record of a game (its `games` getter) by field name."""
    values = game.call("games", game_id)
    if values[2] == 0:  # GameStatus.None: no such game
        raise ProverError(f"no game {game_id} on the dispute game at {game.address}")
    names = next(entry for entry in game.contract.abi if entry.get("name") == "games")["outputs"]
    return {output["name"]: value for output, value in zip(names, values, strict=True)}


def parties_of(game: DisputeGame, game_id: int) -> tuple[int, str, str]:
    """A game's claim, defender (the claim's submitter) and challenger."""
    stored = stored_game(game, game_id)
    return stored["claimId"], game.claim(stored["claimId"]).submitter, stored["challenger"]


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
        {"address": game.address, "fromBlock": party.deployment()["block"], "topics": topics}
    )
    gas = {Side.DEFENDER: 0, Side.CHALLENGER: 0}
    for tx_hash in dict.fromkeys(log["transactionHash"] for log in logs):
        receipt = party.w3.eth.get_transaction_receipt(tx_hash)
        gas[Side.DEFENDER if receipt["from"] == defender else Side.CHALLENGER] += receipt["gasUsed"]
    rounds = len(_logs(game, "Selected", party, gameId=game_id))
    resolved = _logs(game, "GameResolved", party, gameId=game_id)
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
    for log in _logs(game, "ClaimSubmitted", party, submitter=party.sender):
        candidates += [(gid, Side.DEFENDER) for gid in find_games(game, party, claimId=log.args.claimId)]
    if not candidates:
        raise ProverError(f"account {party.sender} has no game on the dispute game at {game.address}")
    candidates.sort()
    views = {gid: game.game(gid) for gid, _ in candidates}
    open_games = [(gid, side) for gid, side in candidates if not views[gid].over]
    my_turn = [(gid, side) for gid, side in open_games if views[gid].turn is side]
    return (my_turn or open_games or candidates)[-1]


# ---------------------------------------------------------------- moves


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def transaction_fields(receipt: Receipt) -> dict[str, Any]:
    return {"tx": _hex(receipt.tx_hash), "gas": receipt.gas_used}


def make_move(
    game: DisputeGame,
    party: Party,
    game_id: int,
    move: Step | Bisect | Select | ClaimTimeout,
    view: GameView,
) -> Receipt:
    """Send `move`, decided on `view` (whose posted hashes a select passes back to the contract)."""
    if isinstance(move, Bisect):
        return game.bisect(game_id, list(move.hashes), party.sender)
    if isinstance(move, Select):
        return game.select(game_id, move.index, party.sender, posted=view.posted)
    if isinstance(move, Step):
        return game.step(game_id, move.state_data, move.proof, party.sender)
    return game.claim_timeout(game_id, party.sender)


def describe_move(
    move: Step | Bisect | Select | ClaimTimeout, view: GameView, k: int
) -> tuple[dict[str, Any], str]:
    """A move made on `view`: its fields (its kind, the interval it was made on and what it names)
    and what a person reads."""
    interval = [view.left, view.right]
    if isinstance(move, Bisect):
        count = len(move.hashes)
        return (
            {"kind": "bisect", "interval": interval, "hashes": [_hex(h) for h in move.hashes]},
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
    return {"kind": "timeout", "interval": interval}, "claimed the win: the other side's clock ran out"


def move_made(
    game: DisputeGame,
    party: Party,
    game_id: int,
    side: Side,
    move: Step | Bisect | Select | ClaimTimeout,
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


# ---------------------------------------------------------------- commands


@click.command("deploy")
@chain_options
@click.option(
    "--k", "arity", type=click.IntRange(2, 64), default=16, show_default=True, help="Dissection arity."
)
@click.option("--submit-bond", type=click.IntRange(0), default=ETHER, show_default=True, help="Wei.")
@click.option("--challenge-bond", type=click.IntRange(0), default=ETHER, show_default=True, help="Wei.")
@click.option("--clock", type=click.IntRange(1), default=3600, show_default=True, help="Seconds per side.")
@click.option(
    "--window", type=click.IntRange(0), default=3600, show_default=True, help="Challenge window (s)."
)
def deploy_command(
    party: Party, out: Output, arity: int, submit_bond: int, challenge_bond: int, clock: int, window: int
) -> None:
    """Deploy the MIPS verifier and the DisputeGame; write deployment.json."""
    parameters = {
        "k": arity,
        "submit_bond": submit_bond,
        "challenge_bond": challenge_bond,
        "clock_budget": clock,
        "challenge_window": window,
    }
    path = party.deployment_path
    if path.exists():
        existing = party.deployment()
        if party.w3.eth.get_code(existing["dispute_game"]):
            different = {name for name, value in parameters.items() if existing[name] != value}
            if different:
                shown = ", ".join(f"{name}={existing[name]}" for name in sorted(different))
                raise ProverError(f"{path}: the deployment there has {shown}; use another --deployment")
            out.emit(
                Record(
                    {"already": True, "deployment": str(path), **existing},
                    f"already deployed: DisputeGame at {existing['dispute_game']} (k={arity})",
                )
            )
            return
        out.note(f"{path} names contracts that this chain does not have: deploying anew")
    mips = MipsVerifier.deploy(party.w3, sender=party.sender)
    game = DisputeGame.deploy(
        party.w3, mips.address, arity, submit_bond, challenge_bond, clock, window, sender=party.sender
    )
    deployment = {
        "chain_id": party.w3.eth.chain_id,
        "mips": mips.address,
        "dispute_game": game.address,
        "block": party.w3.eth.block_number,
        **parameters,
    }
    write_json(path, deployment)
    out.emit(
        Record(
            {"already": False, "deployment": str(path), **deployment},
            f"deployed: MIPS verifier at {mips.address}, DisputeGame at {game.address} (k={arity}, "
            f"bonds {submit_bond} / {challenge_bond} wei, clock {clock} s, window {window} s)\n"
            f"wrote {path}",
        )
    )


@click.command("submit")
@chain_options
@fault_option
def submit_command(party: Party, out: Output, fault_step: int | None) -> None:
    """Post the claim of BASEDIR/final.json with the submit bond (creating the task if needed)."""
    record_fault(party.basedir, fault_step)
    game = party.dispute_game()
    run = load_run(party.basedir)
    final_state = party.trace().state_at(run.steps)
    final_hash = keccak(final_state)
    task_id = find_task(game, party, run.roots)
    task_created = task_id is None
    if task_id is None:
        task_id = game.create_task(*run.roots, sender=party.sender)
        out.note(f"created task {task_id}")
    bond = game.submit_bond
    log = claim_log(game, party, task_id, final_hash)
    already = log is not None
    if log is None:
        claim_id = game.submit(task_id, final_state, run.output, run.output_proof, sender=party.sender)
        out.note(f"submitted claim {claim_id} on task {task_id} with a bond of {bond} wei")
        # The claim's event names its transaction, found or just sent alike.
        log = claim_log(game, party, task_id, final_hash)
    else:
        out.note(f"already submitted: claim {log.args.claimId} on task {task_id}")
    claim_id = log.args.claimId
    write_json(
        party.basedir / "claim.json", {"claim_id": claim_id, "task_id": task_id, "dispute_game": game.address}
    )
    claim = game.claim(claim_id)
    gas = party.w3.eth.get_transaction_receipt(log.transactionHash)["gasUsed"]
    fields = {
        "claim": claim_id,
        "task": task_id,
        "task_created": task_created,
        "already": already,
        "dispute_game": game.address,
        "submitter": party.sender,
        "final_state": _hex(final_hash),
        "steps": run.steps,
        "class": run.predicted_class,
        "status": claim.status,
        "window_ends": claim.deadline,
        "bond": bond,
        "tx": _hex(log.transactionHash),
        "gas": gas,
    }
    out.emit(
        Record(
            fields,
            f"claim {claim_id}: final state {_hex(final_hash)} after {run.steps} steps, "
            f"class {run.predicted_class}; "
            f"{claim.status}, challenge window until block time {claim.deadline}",
        )
    )


def open_challenge(
    party: Party, game: DisputeGame, claim_id: int | None, other_task: bool = False
) -> tuple[int | None, Record]:
    """The challenger's game against the claim (opened if needed), or None when this party's own
    run agrees with the claim; and what to say of it. A claim on another task than our run's is
    refused unless `other_task`: the game starts from that task's S0, which our trace does not,
    so it is lost."""
    run = load_run(party.basedir)
    task_id = find_task(game, party, run.roots)
    if claim_id is None:
        claims = [] if task_id is None else _logs(game, "ClaimSubmitted", party, taskId=task_id)
        if not claims:
            raise ProverError(
                f"no claim on the chain for the task of {party.basedir / 'golden.json'}; "
                "name one with --claim"
            )
        claim_id = claims[-1].args.claimId
    claim = game.claim(claim_id)
    if claim.task_id != task_id and not other_task:
        raise ProverError(
            f"claim {claim_id} is on task {claim.task_id}, not on the task of our run "
            f"({party.basedir / 'golden.json'}): a game against it cannot be won (--other-task to insist)"
        )
    own_hash = party.trace().state_hash_at(run.steps)
    compared = {
        "claim": claim_id,
        "claim_final_state": _hex(claim.final_state),
        "claim_steps": claim.steps,
        "our_final_state": _hex(own_hash),
        "our_steps": run.steps,
    }
    if own_hash == claim.final_state and run.steps == claim.steps:
        return None, Record(
            {"agree": True, "game": None, **compared},
            f"agree with claim {claim_id}: our run also ends in {_hex(own_hash)} after {run.steps} steps",
        )
    existing = find_games(game, party, claimId=claim_id, challenger=party.sender)
    if existing:
        return existing[-1], Record(
            {"agree": False, "game": existing[-1], "already": True, **compared},
            f"already challenging: game {existing[-1]} against claim {claim_id}",
        )
    bond = game.challenge_bond
    game_id = game.challenge(claim_id, sender=party.sender)
    return game_id, Record(
        {"agree": False, "game": game_id, "already": False, "bond": bond, **compared},
        f"opened game {game_id} against claim {claim_id} with a bond of {bond} wei: "
        f"the claim ends in {_hex(claim.final_state)} after {claim.steps} steps, "
        f"our run in {_hex(own_hash)} after {run.steps}",
    )


@click.command("challenge")
@chain_options
@click.option(
    "--claim", "claim_id", type=click.IntRange(1), help="Claim id [default: the latest on our task]."
)
@click.option(
    "--other-task",
    is_flag=True,
    help="Challenge a claim on another task than our run's (a game we lose: fault injection only).",
)
@fault_option
def challenge_command(
    party: Party, out: Output, claim_id: int | None, other_task: bool, fault_step: int | None
) -> None:
    """Compare our own run with a claim; open a game with the challenge bond when they differ."""
    record_fault(party.basedir, fault_step)
    game_id, record = open_challenge(party, party.dispute_game(), claim_id, other_task)
    if game_id is not None:
        write_json(
            party.basedir / "game.json",
            {"game_id": game_id, "dispute_game": party.deployment()["dispute_game"]},
        )
    out.emit(record)


def play_next_move(
    party: Party, game: DisputeGame, game_id: int, side: Side, trace: Trace, k: int, view: GameView
) -> Record | None:
    """Make this side's next move in the game as `view` shows it; what was done, or None when
    there is nothing to do for this side now."""
    move = next_move(side, view, trace, k)
    if isinstance(move, Wait):
        return None
    return move_made(game, party, game_id, side, move, view, k)


def play_one_move(
    party: Party, game: DisputeGame, game_id: int, side: Side, trace: Trace, k: int, view: GameView
) -> str | None:
    """`play_next_move`, as the line a person reads (tests/test_agent_on_chain.py plays with it)."""
    made = play_next_move(party, game, game_id, side, trace, k, view)
    return None if made is None else made.text


@click.command("respond")
@chain_options
@click.option(
    "--game", "game_id", type=click.IntRange(1), help="Game id [default: ours where it is our turn]."
)
def respond_command(party: Party, out: Output, game_id: int | None) -> None:
    """Make the next dissection move for our side (an error when it is the other side's turn)."""
    game = party.dispute_game()
    game_id, side = my_game(game, party, game_id)
    view = game.game(game_id)
    if view.over:
        out.emit(game_over(game, party, game_id))
        return
    k = game.k
    move = next_move(side, view, party.trace(), k)
    if isinstance(move, Wait):
        raise ProverError(f"game {game_id}: nothing to do for the {side.value}: {move.reason}")
    if isinstance(move, Step):
        out.emit(
            Record(
                {
                    "game": game_id,
                    "side": side.value,
                    "state": "one_step_left",
                    "interval": [view.left, view.right],
                    "step": move.step,
                },
                f"game {game_id}: one step is left ({move.step}): run `prover step`",
            )
        )
        return
    out.emit(move_made(game, party, game_id, side, move, view, k))


@click.command("step")
@chain_options
@click.option("--game", "game_id", type=click.IntRange(1), help="Game id [default: ours].")
def step_command(party: Party, out: Output, game_id: int | None) -> None:
    """The one-step proof: the contract executes the last disputed instruction and decides."""
    game = party.dispute_game()
    game_id, side = my_game(game, party, game_id)
    view = game.game(game_id)
    if view.over:
        out.emit(game_over(game, party, game_id))
        return
    if view.right - view.left != 1:
        raise ProverError(
            f"game {game_id} is not down to one step: [{view.left}, {view.right}] is "
            f"{view.right - view.left} steps; keep responding"
        )
    state_data, proof = party.trace().witness_at(view.left)
    if keccak(state_data) != view.left_hash:
        raise ProverError(
            f"game {game_id}: our state at step {view.left} is not the agreed one "
            f"({_hex(view.left_hash)}); only the other side can prove this step"
        )
    made = move_made(game, party, game_id, side, Step(view.left, state_data, proof), view, game.k)
    record = game_record(game, party, game_id)
    out.emit(Record({**made.fields, **outcome_fields(record)}, f"{made.text}: {outcome(record)}"))


def game_status(game: DisputeGame, party: Party, game_id: int, k: int) -> dict[str, Any]:
    """One game as `prover status` shows it (and prints with --json)."""
    record = game_record(game, party, game_id)
    view = game.game(game_id)
    stored = stored_game(game, game_id)
    clocks = {Side.DEFENDER: stored["defenderClock"], Side.CHALLENGER: stored["challengerClock"]}
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
    }


def status_line(status: dict[str, Any]) -> str:
    left, right = status["interval"]
    head = f"game {status['game']} on claim {status['claim']}: "
    gas = f"gas defender {status['gas']['defender']}, challenger {status['gas']['challenger']}"
    if status["winner"]:
        how = " by timeout" if status["by_timeout"] else ""
        return head + f"the {status['winner']} won{how} after {status['round']} rounds; {gas}"
    clocks = status["clocks"]
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


@click.command("status")
@chain_options
@click.option("--game", "game_id", type=click.IntRange(1), help="Only this game (and no claims).")
def status_command(party: Party, out: Output, game_id: int | None) -> None:
    """Claims and games of the deployment: interval, round, whose turn, clocks, winner, gas; and
    what the sender can withdraw."""
    game = party.dispute_game()
    k = game.k
    now = int(party.w3.eth.get_block("latest")["timestamp"])
    if game_id is None:
        game_ids = list(range(1, game.call("gameCount") + 1))
        claims = [claim_status(game, cid, now) for cid in range(1, game.call("claimCount") + 1)]
    else:
        game_ids, claims = [game_id], []
    games = [game_status(game, party, gid, k) for gid in game_ids]
    balance = game.balance_of(party.sender)
    report = {
        "dispute_game": game.address,
        "k": k,
        "block_time": now,
        "account": party.sender,
        "withdrawable": balance,
        "claims": claims,
        "games": games,
    }
    lines = [
        f"DisputeGame at {game.address} (k={k}): {len(claims)} claim(s), {len(games)} game(s)",
        *(claim_line(claim) for claim in claims),
        *(status_line(status) for status in games),
        f"{party.sender} can withdraw {balance} wei",
    ]
    out.emit(Record(report, "\n".join(lines)))


def new_blocks(w3: Web3, poll: float) -> Iterator[int]:
    """The chain's block number, each time it changes (the first at once), looking every `poll`
    seconds. A game's view (its interval, whose turn, the clocks at the latest block) can only
    change with a new block, so an agent reads the game once per block, not once per look."""
    seen = None
    while True:
        number = w3.eth.block_number
        if number == seen:
            time.sleep(poll)
            continue
        seen = number
        yield number


@click.command("dispute")
@chain_options
@click.option(
    "--side", type=click.Choice([side.value for side in Side]), required=True, help="The side to play."
)
@click.option("--game", "game_id", type=click.IntRange(1), help="Game id [default: ours].")
@click.option("--claim", "claim_id", type=click.IntRange(1), help="Challenger: the claim to dispute.")
@click.option(
    "--poll", type=click.FloatRange(0.01), default=0.1, show_default=True, help="Seconds between looks."
)
@fault_option
def dispute_command(
    party: Party,
    out: Output,
    side: str,
    game_id: int | None,
    claim_id: int | None,
    poll: float,
    fault_step: int | None,
) -> None:
    """Play every move for one side until the game ends (--json: one object per line, each with
    its "event": waiting, challenge, playing, move; the last one the result)."""
    record_fault(party.basedir, fault_step)
    game = party.dispute_game()
    playing = Side(side)
    if game_id is None and playing is Side.CHALLENGER:
        game_id, challenged = open_challenge(party, game, claim_id)
        # A challenger whose run agrees with the claim has nothing to play: that is the result.
        out.emit(challenged.as_event("result" if game_id is None else "challenge"))
        if game_id is None:
            return
    if game_id is None:
        game_id = wait_for_defence(party, game, poll, out)
    elif side_in_game(game, party, game_id) is not playing:
        raise ProverError(f"game {game_id}: account {party.sender} is not its {side}")
    trace = party.trace()
    k = game.k
    out.emit(
        Record({"event": "playing", "game": game_id, "side": side}, f"playing game {game_id} as the {side}")
    )
    for _ in new_blocks(party.w3, poll):
        view = game.game(game_id)
        if view.over:
            break
        try:
            made = play_next_move(party, game, game_id, playing, trace, k, view)
        except ProverError:
            # Both sides may prove the last step; whoever comes second finds the game over.
            if game.game(game_id).over:
                break
            raise
        if made is not None:
            out.emit(made.as_event("move"))
    status = game_status(game, party, game_id, k)
    out.emit(Record(status, status_line(status)).as_event("result"))


def wait_for_defence(party: Party, game: DisputeGame, poll: float, out: Output) -> int:
    """The defender's game: the first open game on one of its claims, once a challenger opens one."""
    announced = False
    for _ in new_blocks(party.w3, poll):
        for log in _logs(game, "ClaimSubmitted", party, submitter=party.sender):
            for game_id in find_games(game, party, claimId=log.args.claimId):
                if not game.game(game_id).over:
                    return game_id
        if not announced:
            out.emit(
                Record({"event": "waiting", "account": party.sender}, "waiting for a challenge of our claims")
            )
            announced = True
    raise AssertionError("new_blocks never ends")


def my_claim(party: Party, game: DisputeGame, claim_id: int | None) -> int:
    """--claim, else the claim of BASEDIR/claim.json (if made on this deployment), else the
    sender's latest claim."""
    if claim_id is not None:
        return claim_id
    path = party.basedir / "claim.json"
    if path.exists():
        submitted = read_json(path, "the claim of `prover submit`")
        if submitted["dispute_game"] == game.address:
            return submitted["claim_id"]
    claims = _logs(game, "ClaimSubmitted", party, submitter=party.sender)
    if not claims:
        raise ProverError(f"account {party.sender} has no claim on the dispute game at {game.address}")
    return claims[-1].args.claimId


@click.command("finalize")
@chain_options
@click.option("--claim", "claim_id", type=click.IntRange(1), help="Claim id [default: BASEDIR/claim.json's].")
def finalize_command(party: Party, out: Output, claim_id: int | None) -> None:
    """Make an unrefuted claim final after its challenge window (its bond is credited back)."""
    game = party.dispute_game()
    claim_id = my_claim(party, game, claim_id)
    claim = game.claim(claim_id)
    final = {"claim": claim_id, "status": "final", "submitter": claim.submitter}
    if claim.status == "final":
        out.emit(Record({**final, "already": True}, f"claim {claim_id} is already final"))
        return
    if claim.status == "refuted":
        raise ProverError(
            f"claim {claim_id} was refuted: it cannot become final (its bond went to a challenger)"
        )
    if claim.open_games:
        raise ProverError(f"claim {claim_id} has {claim.open_games} open game(s): finalize after they end")
    try:
        receipt = game.finalize(claim_id, party.sender)
    except ProverError as exc:
        # The window is the contract's to judge: the next block's time, not the latest block's
        # (which on a quiet local chain may be long past), decides.
        if "WindowOpen" not in str(exc):
            raise
        latest = int(party.w3.eth.get_block("latest")["timestamp"])
        raise ProverError(
            f"claim {claim_id}: its challenge window is open until block time {claim.deadline} "
            f"({claim.deadline - latest} s after the latest block)"
        ) from None
    bond = game.submit_bond
    out.emit(
        Record(
            {**final, "already": False, "credited": bond, **transaction_fields(receipt)},
            f"claim {claim_id} is final: the submitter {claim.submitter} is credited its bond of "
            f"{bond} wei (`prover withdraw`)",
        )
    )


@click.command("withdraw")
@chain_options
def withdraw_command(party: Party, out: Output) -> None:
    """Withdraw everything the dispute game credits to the sender (bonds back, won bonds)."""
    game = party.dispute_game()
    if game.balance_of(party.sender) == 0:
        out.emit(Record({"account": party.sender, "amount": 0}, f"nothing to withdraw for {party.sender}"))
        return
    amount = game.withdraw(party.sender)
    out.emit(Record({"account": party.sender, "amount": amount}, f"withdrew {amount} wei to {party.sender}"))


# ---------------------------------------------------------------- the party's own run


@dataclass(frozen=True)
class Run:
    """What a party's golden image and finished run say (golden.json, final.json)."""

    roots: tuple[bytes, bytes, bytes]  # program, input, model: the task on chain
    steps: int
    output: bytes
    output_proof: list[bytes]
    predicted_class: int


def load_run(basedir: Path) -> Run:
    golden = read_json(basedir / GOLDEN_JSON, "a golden image (run `prover golden` first)")
    final = read_json(basedir / FINAL_JSON, "a finished run (run `prover run` first)")
    return Run(
        roots=tuple(bytes.fromhex(golden[name][2:]) for name in ("program_root", "input_root", "model_root")),
        steps=final["steps"],
        output=bytes.fromhex(final["output"][2:]),
        output_proof=[bytes.fromhex(h[2:]) for h in final["output_proof"]],
        predicted_class=final["class"],
    )


class SharedBlocksRunner:
    """The Trace runner of a party's queries: one fast executor whose compiled blocks serve every
    machine restored from the run's checkpoints. Compiling a run's blocks costs about as much as
    running a round's queries, and every round restores a machine.

    Why the sharing is sound: an executor drops the blocks of a page when a store hits it, so
    between runs its blocks are exactly those compiled from the current bytes of its machine's
    code pages (`code_pages`). A block is a function of those bytes only, so it is valid for any
    machine whose code pages hold the same bytes; for a machine where one differs, a fresh executor
    is made."""

    def __init__(self) -> None:
        self.executor: FastExecutor | None = None

    def __call__(self, machine: Machine, steps: int) -> int:
        executor = self.executor
        if executor is None or not _same_code(executor, machine):
            executor = self.executor = FastExecutor(machine)
        executor.machine = machine
        return executor.run(steps)


def _same_code(executor: FastExecutor, machine: Machine) -> bool:
    if executor.machine is machine:
        return True
    ours, theirs = executor.machine.memory.pages, machine.memory.pages
    return all(ours.get(page) == theirs.get(page) for page in executor.code_pages)


class ForwardTrace:
    """The VM's checkpointed trace, keeping one machine between queries. Within a round the agent
    asks for increasing steps (the split points; the challenger's comparisons): the next one is
    reached by running on from the previous one or by replaying from its checkpoint, whichever
    runs fewer steps."""

    def __init__(self, trace: VmTrace) -> None:
        self.trace = trace
        self.machine: Machine | None = None
        self.machine_step = 0

    def state_at(self, step: int) -> bytes:
        if self.trace.exited and step >= self.trace.steps:
            return self.trace.final_state
        ahead = step - self.machine_step
        replay = step % self.trace.interval  # steps from the checkpoint at or before `step`
        if self.machine is None or not 0 <= ahead <= replay:
            self.machine, self.machine_step = self.trace.machine_at(step), step
        elif ahead:
            if self.trace.runner(self.machine, ahead) != ahead:
                raise ProverError(f"the run ended before step {step}: the checkpoints do not match it")
            self.machine_step = step
        return self.machine.state.encode()

    def state_hash_at(self, step: int) -> bytes:
        return keccak(self.state_at(step))

    def witness_at(self, step: int) -> tuple[bytes, bytes]:
        return self.trace.witness_at(step)


def load_trace(basedir: Path) -> Trace:
    """The party's trace from its checkpoints, with its recorded fault injection if it has one."""
    try:
        honest = ForwardTrace(VmTrace.load(basedir / CHECKPOINTS, runner=SharedBlocksRunner()))
    except VmError as exc:
        raise ProverError(f"{exc}; run `prover run --basedir {basedir}` first") from None
    fault_path = basedir / "fault.json"
    if not fault_path.exists():
        return honest
    return FaultyTrace(honest, read_json(fault_path, "a fault injection")["step"])
