"""What a party does on the chain: deploy, submit, challenge, respond, step, status, dispute,
finalize and withdraw, each the body of the `prover` command of that name (prover/cli/game.py,
docs/cli.md).

Every command is idempotent and resumable: the chain is the record of every claim and game, so a
command re-reads it and does only what is still to do (a claim or a game already made is found
again through its events, a move already made shows as the other side's turn). What only the
party knows (where the contracts are, its trace, its fault injection) lives in its base directory,
in files written atomically. A move the contract would refuse is refused before it is sent.

Each reports through an Output: with --json one JSON object per line (`dispute`: one per move and
a last one with the game's status) instead of text.
"""

import time
from collections.abc import Iterator
from dataclasses import replace

from eth_hash.auto import keccak
from web3 import Web3
from web3.exceptions import Web3Exception

from prover.chain.connect import CONNECTION_LOST
from prover.chain.contracts import FINALIZE_GAS, DisputeGame, MipsVerifier
from prover.chain.game_view import GameView, Side
from prover.errors import ProverError
from prover.game.agent import (
    Bisect,
    Move,
    OpenNode,
    Select,
    Step,
    Trace,
    Wait,
    disagreement,
    next_move,
    phase_trace,
    with_opening,
)
from prover.game.party import Party, Run, graph_ops, is_graph_party, record_fault, task_file
from prover.game.records import (
    as_hex,
    claim_line,
    claim_log,
    claim_status,
    describe_move,
    event_logs,
    find_games,
    find_task,
    game_over,
    game_record,
    game_status,
    move_made,
    my_game,
    outcome,
    outcome_fields,
    side_in_game,
    status_line,
    transaction_fields,
)
from prover.output import Output, Record
from prover.task.basedir import read_json, write_json


def deploy(
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


def submit(party: Party, out: Output, fault_step: int | None) -> None:
    """Post the claim of BASEDIR/final.json with the submit bond (creating the task if needed)."""
    record_fault(party.basedir, fault_step, out.warn)
    game = party.dispute_game()
    run, trace = party.own_run(out.warn)
    graph = run.nodes_root is not None  # a graph run: a multi-phase claim on a graph task
    final_state = b"" if graph else trace.state_at(run.steps)
    final_hash = run.final_hash if graph else keccak(final_state)
    task_id = find_task(game, party, run.roots)
    task_created = task_id is None
    if task_id is None and graph:
        program_root, input_root, _ = run.roots
        task_id = game.create_graph_task(
            program_root, input_root, run.nodes_root, run.steps, sender=party.sender
        )
        out.note(f"created graph task {task_id}")
    elif task_id is None:
        task_id = game.create_task(*run.roots, sender=party.sender)
        out.note(f"created task {task_id}")
    bond = game.submit_bond
    log = claim_log(game, party, task_id, final_hash)
    already = log is not None
    if log is None and graph:
        claim_id = game.submit_graph(task_id, final_hash, run.output, run.output_proof, sender=party.sender)
        out.note(f"submitted multi-phase claim {claim_id} on task {task_id} with a bond of {bond} wei")
        log = claim_log(game, party, task_id, final_hash)
    elif log is None:
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
        "final_state": as_hex(final_hash),
        "steps": run.steps,
        "multiphase": graph,
        "class": run.predicted_class,
        "status": claim.status,
        "window_ends": claim.deadline,
        "bond": bond,
        "tx": as_hex(log.transactionHash),
        "gas": gas,
    }
    out.emit(
        Record(
            fields,
            f"claim {claim_id}: final state {as_hex(final_hash)} after {run.steps} "
            f"{'nodes (multi-phase)' if graph else 'steps'}, "
            f"class {run.predicted_class}; "
            f"{claim.status}, challenge window until block time {claim.deadline}",
        )
    )


def open_challenge(
    party: Party,
    game: DisputeGame,
    claim_id: int | None,
    own: tuple[Run, Trace],
    other_task: bool = False,
) -> tuple[int | None, Record]:
    """The challenger's game against the claim (opened if needed), or None when this party's own
    run agrees with the claim; and what to say of it. A claim on another task than our run's is
    refused unless `other_task`: the game starts from that task's S0, which our trace does not,
    so it is lost. `own` is the party's run and trace (`Party.own_run`)."""
    run, trace = own
    task_id = find_task(game, party, run.roots)
    if claim_id is None:
        claims = [] if task_id is None else event_logs(game, "ClaimSubmitted", party, taskId=task_id)
        if not claims:
            raise ProverError(
                f"no claim on the chain for the task of {task_file(party.basedir)}; name one with --claim"
            )
        claim_id = claims[-1].args.claimId
    claim = game.claim(claim_id)
    if claim.task_id != task_id and not other_task:
        raise ProverError(
            f"claim {claim_id} is on task {claim.task_id}, not on the task of our run "
            f"({task_file(party.basedir)}): a game against it cannot be won (--other-task to insist)"
        )
    own_hash = trace.state_hash_at(run.steps)
    compared = {
        "claim": claim_id,
        "claim_final_state": as_hex(claim.final_state),
        "claim_steps": claim.steps,
        "our_final_state": as_hex(own_hash),
        "our_steps": run.steps,
    }
    if own_hash == claim.final_state and run.steps == claim.steps:
        return None, Record(
            {"agree": True, "game": None, **compared},
            f"agree with claim {claim_id}: our run also ends in {as_hex(own_hash)} after {run.steps} steps",
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
        f"the claim ends in {as_hex(claim.final_state)} after {claim.steps} steps, "
        f"our run in {as_hex(own_hash)} after {run.steps}",
    )


def challenge(
    party: Party, out: Output, claim_id: int | None, other_task: bool, fault_step: int | None
) -> None:
    """Compare our own run with a claim; open a game with the challenge bond when they differ."""
    record_fault(party.basedir, fault_step, out.warn)
    game = party.dispute_game()
    game_id, record = open_challenge(party, game, claim_id, party.own_run(out.warn), other_task)
    if game_id is not None:
        write_json(
            party.basedir / "game.json",
            {"game_id": game_id, "dispute_game": party.deployment()["dispute_game"]},
        )
    out.emit(record)


def checked_move(game_id: int, side: Side, view: GameView, trace: Trace, k: int) -> Move:
    """`next_move`, refused (a ProverError, before anything is sent) when our trace is not the
    run this side has played so far by the chain's record: the hashes already on chain are the
    ground truth for our later moves (prover/game/agent.py's `disagreement`)."""
    played = phase_trace(trace, view)  # the graph trace, or in the VM phase the node's run
    move = next_move(side, view, played, k)
    if isinstance(move, Bisect | Select | Step | OpenNode):
        problem = disagreement(side, view, played)
        if problem is not None:
            raise ProverError(
                f"game {game_id}: {problem}: our run is not the one this side has played; not moving"
            )
    return with_opening(move, trace)


def play_next_move(
    party: Party,
    game: DisputeGame,
    game_id: int,
    side: Side,
    trace: Trace,
    k: int,
    view: GameView,
    out: Output | None = None,
) -> Record | None:
    """Make this side's next move in the game as `view` shows it; what was done, or None when
    there is nothing to do for this side now. With `out`, a `sending` event is printed before the
    transaction goes out, so that a log shows every move that may have reached the chain even if
    the agent is killed before the receipt comes back."""
    move = checked_move(game_id, side, view, trace, k)
    if isinstance(move, Wait):
        return None
    if out is not None:
        fields, _ = describe_move(move, view, k)
        out.emit(
            Record(
                {"event": "sending", "game": game_id, "side": side.value, **fields},
                f"game {game_id}: sending {fields['kind']} on [{view.left}, {view.right}]",
            )
        )
    return move_made(game, party, game_id, side, move, view, k)


def play_one_move(
    party: Party, game: DisputeGame, game_id: int, side: Side, trace: Trace, k: int, view: GameView
) -> str | None:
    """`play_next_move`, as the line a person reads (tests/test_agent_on_chain.py plays with it)."""
    made = play_next_move(party, game, game_id, side, trace, k, view)
    return None if made is None else made.text


def our_open_game(
    party: Party, out: Output, game_id: int | None
) -> tuple[DisputeGame, int, Side, GameView | None]:
    """The game `game_id` (default: ours), our side in it and its view; the view is None when the
    game is over, whose result is then printed."""
    game = party.dispute_game()
    game_id, side = my_game(game, party, game_id)
    view = game.game(game_id)
    if view.over:
        out.emit(game_over(game, party, game_id))
        return game, game_id, side, None
    return game, game_id, side, view


def respond(party: Party, out: Output, game_id: int | None) -> None:
    """Make the next dissection move for our side (an error when it is the other side's turn)."""
    game, game_id, side, view = our_open_game(party, out, game_id)
    if view is None:
        return
    k = game.k
    move = checked_move(game_id, side, view, party.own_run(out.warn)[1], k)
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


def step(party: Party, out: Output, game_id: int | None) -> None:
    """The one-step proof: the contract executes the last disputed instruction and decides."""
    game, game_id, side, view = our_open_game(party, out, game_id)
    if view is None:
        return
    if view.right - view.left != 1 or view.graph_phase:
        raise ProverError(
            f"game {game_id} is not down to one step: [{view.left}, {view.right}] is "
            f"{view.right - view.left} {'nodes' if view.graph_phase else 'steps'}; keep responding"
        )
    trace = phase_trace(party.own_run(out.warn)[1], view)
    problem = disagreement(side, view, trace)
    if problem is not None:
        raise ProverError(
            f"game {game_id}: {problem}: our run is not the one this side has played; not moving"
        )
    state_data, proof = trace.witness_at(view.left)
    if keccak(state_data) != view.left_hash:
        raise ProverError(
            f"game {game_id}: our state at step {view.left} is not the agreed one "
            f"({as_hex(view.left_hash)}); only the other side can prove this step"
        )
    made = move_made(game, party, game_id, side, Step(view.left, state_data, proof), view, game.k)
    record = game_record(game, party, game_id)
    out.emit(Record({**made.fields, **outcome_fields(record)}, f"{made.text}: {outcome(record)}"))


def status(party: Party, out: Output, game_id: int | None) -> None:
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
    node_ops = graph_ops(party.basedir, out.warn) if is_graph_party(party.basedir) else None
    games = [game_status(game, party, gid, k, node_ops) for gid in game_ids]
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
        f"{party.sender} (the account of this command) can withdraw {balance} wei; bonds are credited "
        "when a claim is made final (`prover finalize`, after its challenge window) or a game ends, "
        "and paid out by `prover withdraw`",
    ]
    out.emit(Record(report, "\n".join(lines)))


# A move whose connection closed before its reply may or may not have been mined: the agent
# reads the game again, this many times in a row at most (then the node is gone: one error line).
LOST_TRANSACTIONS = 5


def chain_time(w3: Web3) -> int:
    """The chain's time now: the pending block's timestamp (the embedded node stamps it with the
    current time, as hardhat, anvil and geth do), else the wall clock."""
    try:
        return int(w3.eth.get_block("pending")["timestamp"])
    except (ValueError, KeyError, TypeError, Web3Exception):
        return int(time.time())


def clocked_view(w3: Web3, game: DisputeGame, game_id: int) -> GameView:
    """The game's view with the mover's clock as it stands now rather than at the latest block: on
    a quiet chain the latest block may be long past, and the clock ran on since."""
    view = game.game(game_id)
    if view.over:
        return view
    since = chain_time(w3) - int(w3.eth.get_block("latest")["timestamp"])
    return replace(view, mover_seconds_left=max(0, view.mover_seconds_left - max(0, since)))


class Wakeups:
    """When an agent looks at the chain again: at each new block (the chain's block number, looked
    at every `poll` seconds), or once the wall clock reaches `due` (a clock or a window running out
    on a quiet chain, where no block comes to say so)."""

    def __init__(self, w3: Web3, poll: float) -> None:
        self.w3 = w3
        self.poll = poll
        self.due: float | None = None  # time.monotonic() of the next look without a block
        self.seen: int | None = None

    def wait_until_due_in(self, seconds: float | None) -> None:
        self.due = None if seconds is None else time.monotonic() + seconds

    def __iter__(self) -> Iterator[None]:
        while True:
            number = self.w3.eth.block_number
            if number == self.seen and (self.due is None or time.monotonic() < self.due):
                time.sleep(self.poll)
                continue
            self.seen, self.due = number, None
            yield


def dispute(
    party: Party,
    out: Output,
    side: str,
    game_id: int | None,
    claim_id: int | None,
    poll: float,
    fault_step: int | None,
) -> None:
    """Play every move for one side until the game ends (--json: one object per line, each with
    its "event": waiting, challenge, playing, sending, move; the last one the result).

    A restarted agent reconciles with the chain first: a game that ended while it was down is
    reported with what the account can withdraw; a defender with no game left to play settles its
    claims (finalizes and withdraws what is owed) and waits only for what can still happen."""
    record_fault(party.basedir, fault_step, out.warn)
    game = party.dispute_game()
    playing = Side(side)
    own = None  # the run and trace, loaded (and checked) once there is something to play
    if game_id is None and playing is Side.CHALLENGER:
        own = party.own_run(out.warn)
        game_id, challenged = open_challenge(party, game, claim_id, own)
        # A challenger whose run agrees with the claim has nothing to play: that is the result.
        out.emit(challenged.as_event("result" if game_id is None else "challenge"))
        if game_id is None:
            return
    if game_id is None:
        game_id = wait_for_defence(party, game, poll, out)
        if game_id is None:
            return
    elif side_in_game(game, party, game_id) is not playing:
        raise ProverError(f"game {game_id}: account {party.sender} is not its {side}")
    out.emit(
        Record({"event": "playing", "game": game_id, "side": side}, f"playing game {game_id} as the {side}")
    )
    trace = (own or party.own_run(out.warn))[1]
    play_game(party, out, game, game_id, playing, trace, poll)
    status = game_status(game, party, game_id, game.k)
    out.emit(withdrawable_record(party, game, status, status_line(status)).as_event("result"))


def withdrawable_record(party: Party, game: DisputeGame, fields: dict, text: str) -> Record:
    """A result with what the account can withdraw now (`prover withdraw`)."""
    balance = game.balance_of(party.sender)
    return Record(
        {**fields, "account": party.sender, "withdrawable": balance},
        f"{text}; {party.sender} can withdraw {balance} wei",
    )


def play_game(
    party: Party, out: Output, game: DisputeGame, game_id: int, side: Side, trace: Trace, poll: float
) -> None:
    """Every move of `side` until the game is over. The other side's clock is watched by the wall
    clock: once it has run out, this side claims the win itself (no block need come first)."""
    k = game.k
    wakeups = Wakeups(party.w3, poll)
    lost = 0  # transactions in a row whose connection was lost
    for _ in wakeups:
        view = clocked_view(party.w3, game, game_id)
        if view.over:
            return
        try:
            made = play_next_move(party, game, game_id, side, trace, k, view, out)
        except CONNECTION_LOST:
            # The transaction may or may not have reached the chain: read the game again.
            if lost == LOST_TRANSACTIONS:
                raise
            lost += 1
            out.warn(f"game {game_id}: the connection closed while sending a move; reading the game again")
            time.sleep(poll)
            wakeups.wait_until_due_in(0)
            continue
        except ProverError as exc:
            # Both sides may prove the last step; whoever comes second finds the game over.
            if game.game(game_id).over:
                return
            if view.turn is side or view.mover_seconds_left > 0:
                raise
            # A timeout claim that lost a race with the other side's move: look again shortly.
            out.warn(f"game {game_id}: the timeout claim failed ({exc}); looking again")
            wakeups.wait_until_due_in(1.0)
            continue
        lost = 0
        if made is not None:
            out.emit(made.as_event("move"))
        elif view.turn is not side:
            wakeups.wait_until_due_in(view.mover_seconds_left)


def wait_for_defence(party: Party, game: DisputeGame, poll: float, out: Output) -> int | None:
    """The defender's game to play: the first open game on one of its claims, once a challenger
    opens one. None when there is none to play and none can come: a game on its claims has ended
    (reported here), or every claim is past its window; its claims are then settled."""
    announced = False
    wakeups = Wakeups(party.w3, poll)
    for _ in wakeups:
        claims = [
            log.args.claimId for log in event_logs(game, "ClaimSubmitted", party, submitter=party.sender)
        ]
        games = [game_id for claim_id in claims for game_id in find_games(game, party, claimId=claim_id)]
        for game_id in games:
            if not game.game(game_id).over:
                return game_id
        now = chain_time(party.w3)
        windows = [game.claim(claim_id).deadline for claim_id in claims]
        if games or (claims and all(deadline <= now for deadline in windows)):
            settle_claims(party, game, claims, out)
            if games:
                status = game_status(game, party, games[-1], game.k)
                out.emit(withdrawable_record(party, game, status, status_line(status)).as_event("result"))
            else:
                summary = [claim_status(game, claim_id, now) for claim_id in claims]
                text = "; ".join(claim_line(claim) for claim in summary)
                out.emit(withdrawable_record(party, game, {"claims": summary}, text).as_event("result"))
            return None
        if not announced:
            out.emit(
                Record({"event": "waiting", "account": party.sender}, "waiting for a challenge of our claims")
            )
            announced = True
        open_windows = [deadline - now for deadline in windows if deadline > now]
        wakeups.wait_until_due_in(min(open_windows) if open_windows else None)
    raise AssertionError("Wakeups never ends")


def settle_claims(party: Party, game: DisputeGame, claims: list[int], out: Output) -> None:
    """Finalize each of `claims` that can be (pending, window over by the chain's time, no open
    game); once one of them is final, withdraw what the account is owed. (Winnings of a game
    whose claim is still in its window stay credited: `prover withdraw` takes them.)"""
    now = chain_time(party.w3)
    final = False
    for claim_id in claims:
        claim = game.claim(claim_id)
        if claim.status == "pending" and not claim.open_games and claim.deadline <= now:
            game.finalize(claim_id, party.sender, gas=FINALIZE_GAS)
            # Superseded: another claim on the task finalized first (one result per task).
            status = game.claim(claim_id).status
            out.note(f"claim {claim_id} is {status}: its bond of {game.submit_bond} wei is credited back")
            final = True
        final = final or claim.status == "final"
    if final and game.balance_of(party.sender):
        amount = game.withdraw(party.sender)
        out.note(f"withdrew {amount} wei to {party.sender}")


def my_claim(party: Party, game: DisputeGame, claim_id: int | None, out: Output) -> int:
    """--claim, else the claim of BASEDIR/claim.json (if made on this deployment and, on chain, a
    claim of this sender), else the sender's latest claim."""
    if claim_id is not None:
        return claim_id
    path = party.basedir / "claim.json"
    submitted = read_json(path, "the claim of `prover submit`") if path.exists() else {}
    if isinstance(submitted, dict) and submitted.get("dispute_game") == game.address:
        recorded = submitted.get("claim_id")
        valid = isinstance(recorded, int) and 0 < recorded < 2**64
        if valid and game.claim(recorded).submitter == party.sender:
            return recorded
        out.warn(f"{path}: claim {recorded!r} is not {party.sender}'s on chain; using the chain's record")
    claims = event_logs(game, "ClaimSubmitted", party, submitter=party.sender)
    if not claims:
        raise ProverError(f"account {party.sender} has no claim on the dispute game at {game.address}")
    return claims[-1].args.claimId


def finalize(party: Party, out: Output, claim_id: int | None) -> None:
    """Make an unrefuted claim final after its challenge window (its bond is credited back)."""
    game = party.dispute_game()
    claim_id = my_claim(party, game, claim_id, out)
    claim = game.claim(claim_id)
    final = {"claim": claim_id, "status": claim.status, "submitter": claim.submitter}
    if claim.status in ("final", "superseded"):
        out.emit(Record({**final, "already": True}, f"claim {claim_id} is already {claim.status}"))
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
    # Superseded when another claim on the task became final first (one result per task).
    status = game.claim(claim_id).status
    out.emit(
        Record(
            {**final, "status": status, "already": False, "credited": bond, **transaction_fields(receipt)},
            f"claim {claim_id} is {status}: the submitter {claim.submitter} is credited its bond of "
            f"{bond} wei (`prover withdraw`)",
        )
    )


def withdraw(party: Party, out: Output) -> None:
    """Withdraw everything the dispute game credits to the sender (bonds back, won bonds)."""
    game = party.dispute_game()
    if game.balance_of(party.sender) == 0:
        out.emit(Record({"account": party.sender, "amount": 0}, f"nothing to withdraw for {party.sender}"))
        return
    amount = game.withdraw(party.sender)
    out.emit(Record({"account": party.sender, "amount": amount}, f"withdrew {amount} wei to {party.sender}"))
