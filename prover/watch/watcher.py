"""`prover watch`: a service that follows every claim on a DisputeGame, like an op-challenger.

At each look at the chain (a new block, or a clock or a window running out on a quiet chain) the
watcher, on one thread:
  1. reads the DisputeGame's events since the last look (prover/watch/follower.py) into its state
     (prover/watch/state.py, saved atomically);
  2. judges each claim still in its window, or its own, or in a game of its own, by re-executing
     its task from the store (prover/watch/pool.py: the runs go on in worker processes or Ray
     actors meanwhile, so one long run holds up nothing else);
  3. challenges each claim its run disagrees with;
  4. makes its next move in every open game it is a side of, its own claims' games as defender
     and its challenges as challenger, with the dispute agent's logic (prover/game/play.py's
     `play_next_move`: the move, a timeout claim when the other side's clock ran out, or nothing);
  5. finalizes its claims once their window is over and withdraws what it is credited;
  6. publishes a Summary for its metrics and status page.

Resuming after a kill at any point loses no move and makes none twice, because nothing is decided
from a saved file: the chain says whose turn it is, what the game has reached, whether a claim is
already challenged by us. The one gap, a transaction sent but not yet mined when the watcher died
(a node with interval mining), is closed on start: the watcher waits until the account has no
transaction pending before it looks at anything.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from prover.chain.connect import CONNECTION_LOST
from prover.chain.contracts import FINALIZE_GAS, ClaimInfo
from prover.chain.game_view import GameView, Side
from prover.errors import ProverError
from prover.game.party import Party
from prover.game.play import Wakeups, chain_time, clocked_view, play_next_move
from prover.watch.follower import ChainEvent, EventFollower
from prover.watch.log import EventLog
from prover.watch.pool import Pool
from prover.watch.reexec import Roots, task_key
from prover.watch.state import ClaimEntry, GameEntry, WatchState
from prover.watch.store import MissingData
from prover.watch.summary import Summary

RETRY_MISSING_S = 10.0  # how often a claim whose data the store lacks is looked up again
PENDING_POLL_S = 0.5  # while a run goes on, the watcher looks this often without a new block
MAX_BACKOFF_S = 10.0  # a node that does not answer is asked again after poll, 2 poll, ... up to this
# What a node that went away (stopped, restarted, a network cut) raises through web3's HTTP provider.
NODE_GONE = (*CONNECTION_LOST, requests.exceptions.Timeout)


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


class Watcher:
    def __init__(
        self,
        party: Party,
        pool: Pool,
        log: EventLog,
        from_block: int | None = None,
        poll: float = 0.2,
        publish: Callable[[Summary], None] | None = None,
    ) -> None:
        self.party = party
        self.w3 = party.w3
        self.me = party.sender
        self.game = party.dispute_game()
        self.k = self.game.k
        self.submit_bond = self.game.submit_bond
        self.challenge_bond = self.game.challenge_bond
        self.pool = pool
        self.log = log
        self.poll = poll
        self.publish = publish or (lambda _: None)
        start = party.deployment()["block"] if from_block is None else from_block
        self.state = WatchState.load(party.basedir, self.game.address, start)
        self.follower = EventFollower(self.w3, self.game)
        self.claim_info: dict[int, ClaimInfo] = {}  # as read at this look; settled claims kept
        self.views: dict[int, GameView] = {}  # the games we play, as read at this look
        self.results: dict[int, str] = {}  # games over: "defender won" / "challenger won"
        self.started: dict[str, Roots] = {}  # runs started in the pool, by task key
        self.retry_at: dict[int, float] = {}  # claims with missing data: when to look again
        self.said: set[str] = set()  # problems already reported (each is said once)

    # ------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event | None = None) -> None:
        """Watch until `stop` is set (forever without one). A node that stops answering (at any
        point of a look, a transaction's sending included) is asked again with a growing pause
        (poll, 2 poll, ... MAX_BACKOFF_S): one warning line when it goes, one `reconnected` event
        when it answers again; the look it interrupted is made again from the chain's record."""
        self.log.event(
            "watching",
            f"watching the DisputeGame at {self.game.address} as {self.me} "
            f"from block {self.state.cursor + 1}",
            dispute_game=self.game.address,
            account=self.me,
            from_block=self.state.cursor + 1,
        )
        wakeups = Wakeups(self.w3, self.poll)
        waits = iter(wakeups)
        gone_since: float | None = None
        pause = self.poll
        started = False
        while stop is None or not stop.is_set():
            try:
                if not started:
                    self._wait_for_pending_transactions(stop)
                    started = True
                next(waits)
                if stop is not None and stop.is_set():
                    return
                due = self.look()
            except NODE_GONE as exc:
                if gone_since is None:
                    gone_since = time.monotonic()
                    self.log.warn(
                        f"the node at {self.party.rpc_url} does not answer ({type(exc).__name__}); "
                        f"asking again every {self.poll:g} s to {MAX_BACKOFF_S:g} s"
                    )
                time.sleep(pause)
                pause = min(2 * pause, MAX_BACKOFF_S)
                waits = iter(wakeups)  # a generator ends with the exception raised in it
                wakeups.wait_until_due_in(0)
                continue
            if gone_since is not None:
                down = time.monotonic() - gone_since
                self.log.event(
                    "reconnected",
                    f"the node at {self.party.rpc_url} answers again after {down:.0f} s",
                    rpc=self.party.rpc_url,
                    seconds=round(down, 1),
                )
                gone_since, pause = None, self.poll
            wakeups.wait_until_due_in(due)

    def _wait_for_pending_transactions(self, stop: threading.Event | None) -> None:
        """Until every transaction this account sent is mined (one sent just before a kill)."""
        while stop is None or not stop.is_set():
            pending = self.w3.eth.get_transaction_count(self.me, "pending")
            mined = self.w3.eth.get_transaction_count(self.me, "latest")
            if pending <= mined:
                return
            self._say_once(
                "pending", f"{pending - mined} transaction(s) of {self.me} pending: waiting for them"
            )
            time.sleep(self.poll)

    def look(self) -> float | None:
        """One look at the chain (steps 1 to 6 above); the seconds until the next look is due
        without a new block (None: at the next block)."""
        self._read_events()
        now = chain_time(self.w3)
        self._read_claims()
        running = any(self._judge(claim_id, entry, now) for claim_id, entry in self.state.claims.items())
        for claim_id, entry in self.state.claims.items():
            self._challenge_if_wrong(claim_id, entry, now)
        for game_id, entry in self.state.games.items():
            self._play(game_id, entry)
        self._settle(now)
        self._release_settled()
        summary = self._summary(now)
        self.publish(summary)
        return PENDING_POLL_S if running else self._next_deadline(now)

    # ------------------------------------------------------------------ 1. events

    def _read_events(self) -> None:
        events, cursor = self.follower.events_after(self.state.cursor)
        for event in events:
            self._record(event)
        if cursor != self.state.cursor:
            self.state.cursor = cursor
            self.state.save(self.party.basedir)

    def _record(self, event: ChainEvent) -> None:
        args = event.args
        if event.name == "TaskCreated":
            roots = [_hex(args[name]) for name in ("programRoot", "inputRoot", "modelRoot")]
            self.state.tasks[args["taskId"]] = roots
            self.log.event("task", f"task {args['taskId']} created", task=args["taskId"], block=event.block)
        elif event.name == "GraphTaskCreated" and args["taskId"] not in self.state.graph_tasks:
            self.state.graph_tasks.append(args["taskId"])
        elif event.name == "ClaimSubmitted":
            entry = ClaimEntry(args["taskId"], args["submitter"], _hex(args["finalState"]), args["steps"])
            self.state.claims[args["claimId"]] = entry
            ours = " (ours)" if entry.submitter == self.me else ""
            self.log.event(
                "claim",
                f"claim {args['claimId']} on task {entry.task} by {entry.submitter}{ours}: "
                f"{entry.final_state} after {entry.steps} steps",
                claim=args["claimId"],
                task=entry.task,
                submitter=entry.submitter,
                final_state=entry.final_state,
                steps=entry.steps,
                block=event.block,
            )
        elif event.name == "GameStarted":
            self.state.games[args["gameId"]] = GameEntry(args["claimId"], args["challenger"])
            self.log.event(
                "game",
                f"game {args['gameId']} on claim {args['claimId']} opened by {args['challenger']}",
                game=args["gameId"],
                claim=args["claimId"],
                challenger=args["challenger"],
                block=event.block,
            )
        elif event.name == "GameResolved":
            winner = "defender" if args["winner"] == 0 else "challenger"
            how = " by timeout" if args["byTimeout"] else ""
            self.log.event(
                "resolved",
                f"game {args['gameId']}: the {winner} won{how}",
                game=args["gameId"],
                winner=winner,
                by_timeout=args["byTimeout"],
                block=event.block,
            )
        elif event.name == "ClaimRefuted":
            self.log.event(
                "refuted", f"claim {args['claimId']} refuted", claim=args["claimId"], block=event.block
            )
        elif event.name == "ClaimFinalized":
            self.log.event(
                "final", f"claim {args['claimId']} final", claim=args["claimId"], block=event.block
            )

    # ------------------------------------------------------------------ 2. judging claims

    def _read_claims(self) -> None:
        for claim_id in self.state.claims:
            known = self.claim_info.get(claim_id)
            if known is None or known.status == "pending":
                self.claim_info[claim_id] = self.game.claim(claim_id)

    def _our_games(self, claim_id: int) -> list[int]:
        ours = self.state.claims[claim_id].submitter == self.me
        return [
            game_id
            for game_id, entry in self.state.games.items()
            if entry.claim == claim_id and (ours or entry.challenger == self.me)
        ]

    def _roots(self, entry: ClaimEntry) -> Roots:
        return tuple(bytes.fromhex(root[2:]) for root in self.state.tasks[entry.task])

    def _judge(self, claim_id: int, entry: ClaimEntry, now: int) -> bool:
        """Judge the claim if it concerns us and is not judged yet; whether its run is under way."""
        if entry.verdict in ("agree", "disagree", "unjudged"):
            return False
        info = self.claim_info[claim_id]
        concerns_us = entry.submitter == self.me or self._our_games(claim_id)
        if not concerns_us and (info.status != "pending" or info.deadline <= now):
            self._set_verdict(claim_id, "unjudged", "seen after its window, in no game of ours")
            return False
        if time.monotonic() < self.retry_at.get(claim_id, 0.0):
            return False
        roots = self._roots(entry)
        try:
            self.pool.start(roots)
            self.started[task_key(roots)] = roots
            execution = self.pool.result(roots)
        except MissingData as exc:
            self.retry_at[claim_id] = time.monotonic() + RETRY_MISSING_S
            self._set_verdict(claim_id, "missing", str(exc))
            return False
        except ProverError as exc:
            self.retry_at[claim_id] = time.monotonic() + RETRY_MISSING_S
            self._say_once(f"run {claim_id} {exc}", f"claim {claim_id}: cannot re-execute its task: {exc}")
            return False
        if execution is None:
            return True
        self.retry_at.pop(claim_id, None)
        agree = _hex(execution.final_hash) == entry.final_state and execution.steps == entry.steps
        # A multi-phase claim's final state is G_n, the tensor tree after the graph's n nodes.
        unit = "nodes" if entry.task in self.state.graph_tasks else "steps"
        note = f"our run ends in {_hex(execution.final_hash)} after {execution.steps} {unit}"
        self._set_verdict(claim_id, "agree" if agree else "disagree", note)
        return False

    def _set_verdict(self, claim_id: int, verdict: str, note: str) -> None:
        entry = self.state.claims[claim_id]
        if (entry.verdict, entry.note) == (verdict, note):
            return
        entry.verdict, entry.note = verdict, note
        self.state.save(self.party.basedir)
        if verdict == "missing":
            self.log.warn(f"claim {claim_id}: cannot judge it: {note}")
        self.log.event(
            "verdict", f"claim {claim_id}: {verdict} ({note})", claim=claim_id, verdict=verdict, note=note
        )

    # ------------------------------------------------------------------ 3. challenges

    def _challenge_if_wrong(self, claim_id: int, entry: ClaimEntry, now: int) -> None:
        if entry.verdict != "disagree":
            return
        if entry.submitter == self.me:
            self._say_once(
                f"own {claim_id}",
                f"claim {claim_id} is ours, but our run of its task disagrees with it: not defending it",
            )
            return
        info = self.claim_info[claim_id]
        if info.status != "pending" or info.deadline <= now or self._our_games(claim_id):
            return
        try:
            game_id = self.game.challenge(claim_id, sender=self.me)
        except ProverError as exc:
            self._say_once(f"challenge {claim_id} {exc}", f"claim {claim_id}: the challenge failed: {exc}")
            return
        # Recorded now, not only when its event is read: the next look must not challenge again.
        self.state.games[game_id] = GameEntry(claim_id, self.me)
        self.state.save(self.party.basedir)
        self.log.event(
            "challenge",
            f"challenged claim {claim_id}: opened game {game_id} with a bond of {self.challenge_bond} wei",
            claim=claim_id,
            game=game_id,
            bond=self.challenge_bond,
        )

    # ------------------------------------------------------------------ 4. games

    def _side(self, entry: GameEntry) -> Side | None:
        if entry.challenger == self.me:
            return Side.CHALLENGER
        if self.state.claims[entry.claim].submitter == self.me:
            return Side.DEFENDER
        return None

    def _play(self, game_id: int, entry: GameEntry) -> None:
        side = self._side(entry)
        if side is None or game_id in self.results:
            return
        view = clocked_view(self.w3, self.game, game_id)
        self.views[game_id] = view
        if view.over:
            self._game_over(game_id, side)
            return
        claim = self.state.claims[entry.claim]
        playable = "agree" if side is Side.DEFENDER else "disagree"
        if claim.verdict != playable:
            return  # judged yet? (a defender whose run disagrees with its claim was told once)
        trace = self.pool.trace(self._roots(claim))
        try:
            made = play_next_move(self.party, self.game, game_id, side, trace, self.k, view, self.log)
        except ProverError as exc:
            if self.game.game(game_id).over:
                return  # both sides may prove the last step: the second finds the game over
            # A timeout claim that lost a race with the other side's move is tried again at the
            # next look; any other refusal is said once and tried again too (the chain decides).
            self._say_once(f"game {game_id} {exc}", f"game {game_id}: {exc}")
            return
        if made is not None:
            self.log.emit(made.as_event("move"))

    def _game_over(self, game_id: int, side: Side) -> None:
        result = self.game.game_status(game_id)
        self.results[game_id] = result
        won = result == f"{side.value} won"
        self.log.event(
            "game_over",
            f"game {game_id}: {result}; we played the {side.value} and {'won' if won else 'lost'}",
            game=game_id,
            side=side.value,
            result=result,
            won=won,
        )

    # ------------------------------------------------------------------ 5. settling

    def _settle(self, now: int) -> None:
        for claim_id, entry in self.state.claims.items():
            info = self.claim_info[claim_id]
            if (
                entry.submitter != self.me
                or info.status != "pending"
                or info.open_games
                or info.deadline > now
            ):
                continue
            try:
                self.game.finalize(claim_id, self.me, gas=FINALIZE_GAS)
            except ProverError as exc:
                # The latest block may still be before the window's end: the next look tries again.
                self._say_once(f"finalize {claim_id} {exc}", f"claim {claim_id}: finalize failed: {exc}")
                continue
            self.claim_info[claim_id] = self.game.claim(claim_id)
            self.log.event(
                "finalized",
                f"finalized claim {claim_id}: its bond of {self.submit_bond} wei is credited back",
                claim=claim_id,
                credited=self.submit_bond,
            )
        if self.game.balance_of(self.me):
            amount = self.game.withdraw(self.me)
            self.log.event("withdrawn", f"withdrew {amount} wei to {self.me}", amount=amount, account=self.me)

    def _release_settled(self) -> None:
        """Let go of the runs no claim can need any more (every claim on the task settled or past
        its window with no open game of ours)."""
        needed = set()
        for claim_id, entry in self.state.claims.items():
            if entry.task not in self.state.tasks:
                continue
            open_games = [game_id for game_id in self._our_games(claim_id) if game_id not in self.results]
            if self.claim_info[claim_id].status == "pending" or open_games:
                needed.add(task_key(self._roots(entry)))
        for key in set(self.started) - needed:
            self.pool.release(self.started.pop(key))

    # ------------------------------------------------------------------ 6. what it shows

    def _next_deadline(self, now: int) -> float | None:
        """Seconds until a clock or a window that concerns us runs out (a look is due then)."""
        waits = [view.mover_seconds_left for view in self.views.values() if not view.over]
        waits += [
            info.deadline - now
            for claim_id, info in self.claim_info.items()
            if info.status == "pending" and self.state.claims[claim_id].submitter == self.me
        ]
        waits = [seconds + 0.5 for seconds in waits if seconds >= 0]
        # A claim whose data the store lacked is looked up again in time, block or no block.
        waits += [max(0.0, at - time.monotonic()) for at in self.retry_at.values() if at > time.monotonic()]
        return min(waits) if waits else None

    def _summary(self, now: int) -> Summary:
        verdicts: dict[str, int] = {}
        claims = []
        for claim_id, entry in self.state.claims.items():
            verdict = entry.verdict or "pending"
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
            info = self.claim_info[claim_id]
            claims.append(
                {
                    "claim": claim_id,
                    "task": entry.task,
                    "submitter": entry.submitter,
                    "ours": entry.submitter == self.me,
                    "status": info.status,
                    "verdict": verdict,
                    "window_left_s": max(0, info.deadline - now) if info.status == "pending" else None,
                    "note": entry.note,
                }
            )
        games = []
        stake = sum(
            self.submit_bond
            for claim_id, entry in self.state.claims.items()
            if entry.submitter == self.me and self.claim_info[claim_id].status == "pending"
        )
        won = lost = 0
        clocks = []
        for game_id, entry in self.state.games.items():
            side = self._side(entry)
            if side is None:
                continue
            view = self.views.get(game_id)
            result = self.results.get(game_id)
            if result is None and view is not None:
                clocks.append(view.mover_seconds_left)
                stake += self.challenge_bond if side is Side.CHALLENGER else 0
            elif result is not None:
                won += result == f"{side.value} won"
                lost += result != f"{side.value} won"
            games.append(self._game_row(game_id, entry, side, view, result))
        return Summary(
            account=self.me,
            dispute_game=self.game.address,
            block=self.state.cursor,
            claims_seen=len(self.state.claims),
            verdicts=verdicts,
            games_open=len(clocks),
            games_won=won,
            games_lost=lost,
            bonds_at_stake=stake,
            tightest_clock=min(clocks) if clocks else None,
            withdrawable=self.game.balance_of(self.me),
            claims=claims,
            games=games,
        )

    @staticmethod
    def _game_row(
        game_id: int, entry: GameEntry, side: Side, view: GameView | None, result: str | None
    ) -> dict[str, Any]:
        row: dict[str, Any] = {"game": game_id, "claim": entry.claim, "our_side": side.value}
        if view is None or result is not None:
            empty = dict.fromkeys(("phase", "interval", "to_move", "clock_s"))
            return {**row, **empty, "result": result}
        # A multi-phase game's interval is over node indices in its graph phase, over VM steps of
        # one node's run after it.
        phase = "graph" if view.graph_phase else f"vm, node {view.node}" if view.node else "vm"
        return {
            **row,
            "phase": phase,
            "interval": f"[{view.left}, {view.right}]",
            "to_move": view.turn.value,
            "clock_s": view.mover_seconds_left,
            "result": None,
        }

    def _say_once(self, key: str, text: str) -> None:
        if key not in self.said:
            self.said.add(key)
            self.log.warn(text)
