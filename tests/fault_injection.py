"""Fault injection for the dispute agents (issue 20), shared by tests/test_fault_injection.py (20
games) and benchmarks/bench_fault_injection.py (200 or more).

Each game is played by two `prover dispute --json` agents in their own processes, one honest and
one faulty, through a JSON-RPC proxy on 127.0.0.1 (`FaultyProxy`) that passes, delays, holds or
drops their transactions (dropped before the node sees them, or after, with the reply lost).
Agents of both sides are killed with SIGKILL at random moments and started again; while the honest
agent is down, one of its local files is corrupted (`CORRUPTIONS`: bit flips in checkpoint state
headers and pages, truncation, deletion, of the checkpoints, the trace index, the golden image,
golden.json and final.json). Some games are abandoned by the faulty side (its agent is never
started again), so the honest agent must claim the timeout by the wall clock.

After each game (`check_game`): the honest side won; every move on chain is one the agents logged
(or announced with a `sending` line before the process died), every logged move is on chain, none
twice; the bonds are credited as docs/dispute-game.md says; and both agents, started once more
after the end, report the result and exit 0."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from dispute_helpers import CHALLENGER, REPO, SUBMITTER, Match, ok, prover_here

from prover.chain.connect import connect
from prover.chain.contracts import DisputeGame
from prover.chain.game_view import GameState

SEND_METHODS = {"eth_sendTransaction", "eth_sendRawTransaction"}
GAME_TIMEOUT_S = 600  # a game that has not ended by then is a failure
# How often the proxy does what to a transaction.
PROXY_FAULTS = {"pass": 0.6, "delay": 0.15, "hold": 0.05, "drop": 0.1, "drop_reply": 0.1}


# ---------------------------------------------------------------- the proxy


class FaultyProxy:
    """A JSON-RPC proxy on 127.0.0.1 in front of the node. Reads pass; each transaction is, at
    random: passed on; delayed (0.1-1 s); held (2-4 s, long enough for its sender to be killed
    meanwhile, and then still passed on); dropped (the connection closed, the node never sees it);
    or passed on with its reply dropped (mined, but its sender sees a closed connection)."""

    def __init__(self, upstream: str, rng: random.Random) -> None:
        self.upstream = upstream
        self.rng = rng
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fault(self) -> str:
        with self.lock:
            fault = self.rng.choices(list(PROXY_FAULTS), weights=list(PROXY_FAULTS.values()))[0]
            self.counts[fault] += 1
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    method = json.loads(body).get("method")
                except (ValueError, AttributeError):
                    method = None
                fault = proxy.fault() if method in SEND_METHODS else "pass"
                if fault == "drop":
                    self.close_connection = True
                    return
                if fault in ("delay", "hold"):
                    time.sleep(proxy.rng.uniform(0.1, 1.0) if fault == "delay" else proxy.rng.uniform(2, 4))
                reply = requests.post(
                    proxy.upstream, data=body, headers={"Content-Type": "application/json"}, timeout=120
                ).content
                if fault == "drop_reply":
                    self.close_connection = True
                    return
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # its client was killed while the transaction was held

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- corrupting local files


def flip_bit(data: bytes, rng: random.Random, start: int = 0, end: int | None = None) -> bytes:
    end = len(data) if end is None else end
    position = rng.randrange(start, end)
    return data[:position] + bytes([data[position] ^ (1 << rng.randrange(8))]) + data[position + 1 :]


SNAPSHOT_HEADER = 12  # magic and version, then the 226-byte state
STATE_SIZE = 226


def flip_state_header(path: Path, rng: random.Random) -> None:
    data = path.read_bytes()
    path.write_bytes(flip_bit(data, rng, SNAPSHOT_HEADER, SNAPSHOT_HEADER + STATE_SIZE))


def flip_page(path: Path, rng: random.Random) -> None:
    """A bit of a page flipped and the page data compressed again: only the memRoot can tell."""
    data = path.read_bytes()
    body = bytearray(zlib.decompress(data[SNAPSHOT_HEADER + STATE_SIZE :]))
    count = int.from_bytes(body[:4], "big")
    if count == 0:
        return flip_state_header(path, rng)
    page = rng.randrange(count)
    offset = 4 + page * (4 + 4096) + 4 + rng.randrange(4096)
    body[offset] ^= 1 << rng.randrange(8)
    path.write_bytes(data[: SNAPSHOT_HEADER + STATE_SIZE] + zlib.compress(bytes(body), 6))


def flip_compressed(path: Path, rng: random.Random) -> None:
    data = path.read_bytes()
    path.write_bytes(flip_bit(data, rng, SNAPSHOT_HEADER + STATE_SIZE))


def flip_any(path: Path, rng: random.Random) -> None:
    path.write_bytes(flip_bit(path.read_bytes(), rng))


def truncate(path: Path, rng: random.Random) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: rng.randrange(len(data))])


def delete(path: Path, rng: random.Random) -> None:
    path.unlink()


def checkpoint(basedir: Path, rng: random.Random) -> Path:
    return rng.choice(sorted((basedir / "checkpoints").glob("checkpoint-*.snap")))


def commitment_cache(basedir: Path, rng: random.Random) -> Path:
    """The party's cached model commitment (its agents' PROVER_COMMITMENT_CACHE, `FaultyGame`)."""
    return rng.choice(sorted((basedir.parent / f"cache-{basedir.name}").glob("*.commit")))


Corruption = tuple[Callable[[Path, random.Random], Path], Callable[[Path, random.Random], None]]
# The files of a single-phase run (a golden image run in the VM) ...
VM_CORRUPTIONS: dict[str, Corruption] = {
    "checkpoint state header bit": (checkpoint, flip_state_header),
    "checkpoint page bit": (checkpoint, flip_page),
    "checkpoint compressed bit": (checkpoint, flip_compressed),
    "checkpoint truncated": (checkpoint, truncate),
    "checkpoint deleted": (checkpoint, delete),
    "trace index bit": (lambda d, _: d / "checkpoints" / "trace.json", flip_any),
    "trace index truncated": (lambda d, _: d / "checkpoints" / "trace.json", truncate),
    "trace index deleted": (lambda d, _: d / "checkpoints" / "trace.json", delete),
    "golden snapshot state header bit": (lambda d, _: d / "golden.snapshot", flip_state_header),
    "golden snapshot page bit": (lambda d, _: d / "golden.snapshot", flip_page),
    "golden snapshot truncated": (lambda d, _: d / "golden.snapshot", truncate),
    "golden snapshot deleted": (lambda d, _: d / "golden.snapshot", delete),
    "golden.json bit": (lambda d, _: d / "golden.json", flip_any),
    "golden.json deleted": (lambda d, _: d / "golden.json", delete),
    "final.json bit": (lambda d, _: d / "final.json", flip_any),
    "final.json truncated": (lambda d, _: d / "final.json", truncate),
}
# ... and of a multi-phase one (a graph run: graph.json and its copy, the model's commitment).
GRAPH_CORRUPTIONS: dict[str, Corruption] = {
    "graph.json bit": (lambda d, _: d / "graph.json", flip_any),
    "graph.json truncated": (lambda d, _: d / "graph.json", truncate),
    "graph.json deleted": (lambda d, _: d / "graph.json", delete),
    "graph.json copy bit": (lambda d, _: d / "graph.json.copy", flip_any),
    "graph.json copy deleted": (lambda d, _: d / "graph.json.copy", delete),
    "commitment cache bit": (commitment_cache, flip_any),
    "commitment cache truncated": (commitment_cache, truncate),
    "commitment cache deleted": (commitment_cache, delete),
}
# The graph run kept beside graph.json (recomputed from the model and the input when damaged).
# Not among the games' draws: tests/test_verified_files.py damages it on every draw.
VALUES_CORRUPTIONS: dict[str, Corruption] = {
    "graph.values bit": (lambda d, _: d / "graph.values", flip_any),
    "graph.values truncated": (lambda d, _: d / "graph.values", truncate),
    "graph.values deleted": (lambda d, _: d / "graph.values", delete),
}
CORRUPTIONS = {**VM_CORRUPTIONS, **GRAPH_CORRUPTIONS}


def corrupt(basedir: Path, kind: str, rng: random.Random) -> bool:
    """Corrupt the party's file of `kind`; False when it has no such file (yet)."""
    where, how = {**CORRUPTIONS, **VALUES_CORRUPTIONS}[kind]
    try:
        path = where(basedir, rng)
    except IndexError:  # no commitment cached yet: its agent has not loaded the run
        return False
    if not path.exists():
        return False
    how(path, rng)
    return True


class Corruptions:
    """Every kind in turn, so that a few games see them all; a kind whose file is not there (yet)
    keeps its turn for the next corruption."""

    def __init__(self, kinds: list[str], rng: random.Random) -> None:
        self.queue = sorted(kinds)
        rng.shuffle(self.queue)
        self.lock = threading.Lock()

    def apply(self, basedir: Path, rng: random.Random) -> str | None:
        with self.lock:
            for kind in list(self.queue):
                if corrupt(basedir, kind, rng):
                    self.queue.remove(kind)
                    self.queue.append(kind)
                    return kind
            return None


# ---------------------------------------------------------------- agents


@dataclass
class Agent:
    """One `prover dispute --json` process of a side, its output lines collected as they come."""

    side: str
    process: subprocess.Popen
    lines: list[dict] = field(default_factory=list)
    stderr: str = ""
    killed: bool = False

    def __post_init__(self) -> None:
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(json.loads(line))
        self.stderr = self.process.stderr.read()

    def kill(self) -> None:
        self.killed = True
        self.process.send_signal(signal.SIGKILL)
        self.finish()

    def finish(self) -> int:
        code = self.process.wait(timeout=GAME_TIMEOUT_S)
        self.reader.join(timeout=GAME_TIMEOUT_S)
        self.process.stdout.close()
        self.process.stderr.close()
        return code

    @property
    def running(self) -> bool:
        return self.process.poll() is None


@dataclass(frozen=True)
class GamePlan:
    """One game: the run both parties start from, the arity, which side lies (from which step; in
    a multi-phase game, from which node of the graph and which step of that node's VM run), how
    many times agents are killed, and whether the liar walks away for good (a short clock)."""

    run: Path
    k: int
    honest: str  # "defender" or "challenger"
    fault_step: int
    kills: int
    abandon: bool
    clock: int
    fault_node: int | None = None  # a multi-phase game (the run is a graph run)

    @property
    def phases(self) -> str:
        return "single" if self.fault_node is None else "multi"


@dataclass
class GameReport:
    plan: GamePlan
    winner: str | None = None
    by_timeout: bool = False
    moves: int = 0
    kills: int = 0
    restarts: int = 0
    corruptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


# The in-process commands (`Match.here`: deploy, submit) redirect this process's stdout: one at a
# time when games are played in threads.
IN_PROCESS = threading.Lock()


class FaultyGame(Match):
    """A deployment and two parties (copies of the plan's run); the faulty one records its fault
    step; the submitter's claim is posted. Agents connect through the proxy."""

    def __init__(
        self,
        node: str,
        proxy: FaultyProxy,
        plan: GamePlan,
        work: Path,
        rng: random.Random,
        corruptions: dict[str, Corruptions],
    ) -> None:
        super().__init__(node, plan.run, work, "--k", str(plan.k), "--clock", str(plan.clock))
        self.proxy = proxy
        self.corruptions = corruptions
        self.plan = plan
        self.rng = rng
        self.report = GameReport(plan)
        self.dirs = {"defender": self.submitter, "challenger": self.challenger}
        self.accounts = {"defender": SUBMITTER, "challenger": CHALLENGER}
        self.liar = "challenger" if plan.honest == "defender" else "defender"
        if plan.fault_node is not None:  # the liar's graph run corrupts that node's output
            with IN_PROCESS:
                liar_run = ("run", "--basedir", str(self.dirs[self.liar]), "--json")
                ok(prover_here(*liar_run, "--fault-node", str(plan.fault_node)))
        fault = ("--fault-step", str(plan.fault_step))
        ok(self.here("submit", SUBMITTER, self.submitter, *(fault if self.liar == "defender" else ())))
        self.agents: list[Agent] = []

    def here(self, name: str, account: int, basedir: Path, *args: str) -> Any:
        with IN_PROCESS:
            return super().here(name, account, basedir, *args)

    def start(self, side: str) -> Agent:
        args = ("--side", side, "--json", "--poll", "0.05")
        if side == "challenger" and self.liar == "challenger":
            args += ("--fault-step", str(self.plan.fault_step))
        basedir = self.dirs[side]
        options = ("--basedir", str(basedir), "--account", str(self.accounts[side]))
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prover.cli",
                "dispute",
                *options,
                "--deployment",
                str(self.deployment),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Each party its own commitment cache, which is corrupted like its other files.
            env=dict(
                os.environ,
                PROVER_RPC=self.proxy.url,
                PROVER_COMMITMENT_CACHE=str(basedir.parent / f"cache-{basedir.name}"),
            ),
            cwd=REPO,
        )
        agent = Agent(side, process)
        self.agents.append(agent)
        return agent

    def dispute_game(self) -> DisputeGame:
        return DisputeGame(connect(self.rpc), json.loads(self.deployment.read_text())["dispute_game"])

    def game_count(self) -> int:
        return self.dispute_game().call("gameCount")

    def over(self) -> bool:
        return self.game_count() >= 1 and self.dispute_game().game(1).over

    def play(self) -> GameReport:
        """Both agents to the end of the game, with kills, restarts and corruptions on the way."""
        began = time.monotonic()
        self.corrupt()  # as if the honest party's machine had failed before the game
        running = {side: self.start(side) for side in ("defender", "challenger")}
        kills_left = self.plan.kills
        next_kill = time.monotonic() + self.rng.uniform(0.5, 6)
        while not self.over():
            if time.monotonic() - began > GAME_TIMEOUT_S:
                raise AssertionError(f"game not over after {GAME_TIMEOUT_S} s: {self.describe()}")
            for side, agent in list(running.items()):
                if agent is None or agent.running:
                    continue
                agent.finish()  # it stopped by itself: a dropped transaction, say; start it again
                running[side] = self.restart(side)
            # A liar that walks away does so once the game is open (else there is no game to win).
            started = not self.plan.abandon or self.game_count() >= 1
            if kills_left and started and time.monotonic() >= next_kill:
                kills_left -= 1
                # The honest side twice as often: its files are corrupted while it is down.
                side = (
                    self.liar if self.plan.abandon else self.rng.choice([self.plan.honest] * 2 + [self.liar])
                )
                if running[side] is not None:
                    running[side].kill()
                    self.report.kills += 1
                    if self.plan.abandon:
                        running[side] = None
                    else:
                        # One fault at a time: a file is corrupted only once the agent has loaded
                        # (and so checked or repaired) the party's files since the last one (its
                        # `playing` line); two at once could take the golden image and its copy,
                        # the first checkpoint, together: then nothing is left to derive it from.
                        if side == self.plan.honest and any(
                            line["event"] == "playing" for line in running[side].lines
                        ):
                            self.corrupt()
                        time.sleep(self.rng.uniform(0, 1))
                        running[side] = self.restart(side)
                next_kill = time.monotonic() + self.rng.uniform(0.5, 6)
            time.sleep(0.05)
        for agent in running.values():
            if agent is not None:
                assert agent.finish() in (0, 1), agent.stderr  # 1: its last transaction was dropped
        self.report.seconds = time.monotonic() - began
        return self.report

    def restart(self, side: str) -> Agent:
        self.report.restarts += 1
        return self.start(side)

    def corrupt(self) -> None:
        kind = self.corruptions[self.plan.phases].apply(self.dirs[self.plan.honest], self.rng)
        if kind is not None:
            self.report.corruptions.append(kind)

    def describe(self) -> str:
        return "; ".join(f"{a.side} killed={a.killed} {a.lines[-3:]} {a.stderr[-500:]}" for a in self.agents)


# ---------------------------------------------------------------- checks


def chain_moves(game: DisputeGame, game_id: int, multi_phase: bool) -> list[tuple[str, tuple, bytes]]:
    """The game's moves on chain: (kind, what it names, transaction) in order. What a move names
    starts with its phase: in a multi-phase game "graph" up to and including the node's opening,
    "vm" after it; a single-phase game is all "vm", as the agents' lines say."""
    moves = []
    for name, kind in (
        ("Bisected", "bisect"),
        ("Selected", "select"),
        ("NodeOpened", "open_node"),
        ("Stepped", "step"),
        ("GameResolved", "timeout"),
    ):
        for log in getattr(game.contract.events, name)().get_logs(
            argument_filters={"gameId": game_id}, from_block=0
        ):
            args = log["args"]
            if kind == "timeout" and not args["byTimeout"]:
                continue
            if kind in ("bisect", "select"):
                # A bisect leaves the interval as it was and a select narrows it: either way the
                # state the move emits holds the interval the agent's line names.
                state = GameState.from_abi(args["state"])
                key = (state.left, state.right)
            elif kind == "open_node":
                key = (GameState.from_abi(args["state"]).node,)
            elif kind == "step":
                key = (args["step"],)
            else:
                key = ()
            moves.append((kind, key, bytes(log["transactionHash"]), (log["blockNumber"], log["logIndex"])))
    moves.sort(key=lambda move: move[3])
    phase = "graph" if multi_phase else "vm"
    keyed = []
    for kind, key, tx, _ in moves:
        keyed.append((kind, (phase, *key), tx))
        if kind == "open_node":
            phase = "vm"
    return keyed


def logged_key(line: dict) -> tuple:
    """What a `move` or `sending` line names, as chain_moves keys it."""
    kind = line["kind"]
    named = {
        "bisect": lambda: tuple(line["interval"]),
        "select": lambda: tuple(line["piece"]),
        "open_node": lambda: (line["node"],),
        "step": lambda: (line["step"],),
    }.get(kind, tuple)()
    return (line["phase"], *named)


def check_game(match: FaultyGame, report: GameReport) -> None:
    """The honest side won; the moves on chain are the logged ones; the bonds are where the rules
    say; started again, both agents report the game and exit 0."""
    w3 = connect(match.rpc)
    deployment = json.loads(match.deployment.read_text())
    game = DisputeGame(w3, deployment["dispute_game"])
    resolved = game.contract.events.GameResolved().get_logs(argument_filters={"gameId": 1}, from_block=0)
    assert len(resolved) == 1, resolved
    winner = "defender" if resolved[0]["args"]["winner"] == 0 else "challenger"
    report.winner, report.by_timeout = winner, bool(resolved[0]["args"]["byTimeout"])
    assert winner == match.plan.honest, f"the {winner} won: {match.describe()}"

    on_chain = chain_moves(game, 1, match.plan.phases == "multi")
    report.moves = len(on_chain)
    logged: dict[bytes, tuple[str, tuple]] = {}
    unconfirmed: Counter[tuple[str, tuple]] = Counter()
    for agent in match.agents:
        sent = [line for line in agent.lines if line["event"] == "sending"]
        made = [line for line in agent.lines if line["event"] == "move"]
        for line in made:
            tx = bytes.fromhex(line["tx"][2:])
            assert tx not in logged, f"move logged twice: {line}"
            logged[tx] = (line["kind"], logged_key(line))
        confirmed = Counter((line["kind"], logged_key(line)) for line in made)
        for line in sent:
            key = (line["kind"], logged_key(line))
            if confirmed[key]:
                confirmed[key] -= 1
            else:
                unconfirmed[key] += 1
        report.warnings += [line for line in agent.stderr.splitlines() if line.startswith("warning: ")]
    chain_txs = {tx for _, _, tx in on_chain}
    assert set(logged) <= chain_txs, "a logged move is not on chain"
    assert len(chain_txs) == len(on_chain), "two moves in one transaction"
    seen: set[tuple[str, tuple]] = set()
    for kind, key, tx in on_chain:
        assert (kind, key) not in seen, f"{kind} {key} made twice on chain"
        seen.add((kind, key))
        if tx in logged:
            assert logged[tx] == (kind, key), (logged[tx], kind, key)
        else:
            # Mined, but its agent was killed (or lost the reply) before it could log the move.
            assert unconfirmed[(kind, key)] > 0, f"{kind} {key} on chain but in no agent's log"
            unconfirmed[(kind, key)] -= 1

    submit_bond, challenge_bond = deployment["submit_bond"], deployment["challenge_bond"]
    submitter, challenger = w3.eth.accounts[SUBMITTER], w3.eth.accounts[CHALLENGER]
    credited = {account: game.balance_of(account) for account in (submitter, challenger)}
    status = game.claim(1).status
    if winner == "defender":
        assert credited == {submitter: challenge_bond, challenger: 0} and status == "pending"
        assert w3.eth.get_balance(game.address) == submit_bond + challenge_bond
    else:
        assert credited == {submitter: 0, challenger: submit_bond + challenge_bond} and status == "refuted"
        assert w3.eth.get_balance(game.address) == submit_bond + challenge_bond

    for side in ("defender", "challenger"):
        agent = match.start(side)
        assert agent.finish() == 0, agent.stderr
        result = agent.lines[-1]
        assert result["event"] == "result" and result["winner"] == winner, agent.lines
        assert result["withdrawable"] == credited[submitter if side == "defender" else challenger]


MAX_VM_FAULT_STEP = 1_000_000  # a multi-phase liar's VM run lies from a step below this (or its last)


def plans(
    rng: random.Random,
    runs: dict[str, Path],
    steps: dict[str, int],
    count: int,
    real_every: int,
    graph_runs: tuple[Path, ...] = (),
    multi_every: int = 0,
) -> list[GamePlan]:
    """`count` games: mostly the tiny run at k = 2 (13 rounds) or k = 8 (5 rounds), every
    `real_every`-th one a real model at k = 16, every `multi_every`-th one (before that) a
    multi-phase game of one of `graph_runs` at k = 16 whose liar corrupts a random node; both
    directions; one in five abandoned by the liar (a 20 s clock, claimed by timeout)."""
    chosen = []
    for number in range(count):
        fault_node = None
        if multi_every and (number + 1) % multi_every == 0:
            run = rng.choice(graph_runs)
            fault_node = rng.randint(1, json.loads((run / "graph.json").read_text())["node_count"])
            fault_step, k = rng.randrange(1, MAX_VM_FAULT_STEP), 16
        else:
            name = (
                "tiny" if (number + 1) % real_every else rng.choice([name for name in runs if name != "tiny"])
            )
            run, fault_step = runs[name], rng.randrange(1, steps[name])
            k = (2, 8)[number // 2 % 2] if name == "tiny" else 16
        abandon = number % 5 == 4
        chosen.append(
            GamePlan(
                run=run,
                k=k,
                honest=("defender", "challenger")[number % 2],
                fault_step=fault_step,
                kills=1 if abandon else rng.randint(1, 2),
                abandon=abandon,
                clock=20 if abandon else 3600,
                fault_node=fault_node,
            )
        )
    return chosen


def play_games(
    node: str,
    work: Path,
    chosen: list[GamePlan],
    rng: random.Random,
    progress: Callable[[GameReport], None],
    at_once: int = 2,
) -> tuple[list[GameReport], Counter[str]]:
    """Every planned game on one node behind one proxy, `at_once` at a time (each on its own
    deployment), each checked; the reports in plan order and the proxy's fault counts."""
    proxy = FaultyProxy(node, rng)
    corruptions = {
        "single": Corruptions(list(VM_CORRUPTIONS), rng),
        "multi": Corruptions(list(GRAPH_CORRUPTIONS), rng),
    }
    reports: dict[int, GameReport] = {}
    failures: list[BaseException] = []
    numbered = iter(list(enumerate(chosen)))
    lock = threading.Lock()

    def worker(seed: int) -> None:
        game_rng = random.Random(seed)
        while not failures:
            with lock:
                number, plan = next(numbered, (None, None))
            if plan is None:
                return
            try:
                match = FaultyGame(node, proxy, plan, work / f"game-{number}", game_rng, corruptions)
                report = match.play()
                check_game(match, report)
            except BaseException as exc:
                failures.append(exc)
                raise
            with lock:  # one line at a time: two threads printing at once lost a line of the benchmark
                reports[number] = report
                progress(report)

    workers = [threading.Thread(target=worker, args=(rng.randrange(1 << 30),)) for _ in range(at_once)]
    try:
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
    finally:
        proxy.close()
    if failures:
        raise failures[0]
    return [reports[number] for number in sorted(reports)], proxy.counts
