"""The watcher's two-game scenario, on any node (tests/test_watch.py on the embedded chain,
test_watch_resume.py with kills, test_watch_hardhat.py on hardhat): one task (k = 2), two claims
on it and two liars who play their games to the end with `prover dispute`.

- claim 1 is the watcher's own, right; a lying challenger (account 3) disputes it;
- claim 2 is a liar's (account 1), wrong; the liar defends it.

An honest watcher (account 2) must challenge claim 2 (once), win both games, finalize claim 1 once
its window is over and withdraw everything: its bond back, the liar's and the lying challenger's.

The task is the tiny f32 run's (single-phase game; the liars wrong from step 1000), or with
`graph=True` a small int8 model's graph task (multi-phase game; the liars' graph runs corrupt node
2's output, so both games go through the graph phase to node 2, its opening and its VM game)."""

import json
import random
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from dispute_helpers import DEPLOYER, ok, party_dir, prover_here, spawn, tiny_run
from watch_helpers import (
    WAIT_TIMEOUT_S,
    WatcherProcess,
    dispute_game,
    graph_task,
    tiny_task,
    wait_until,
)

LIAR, WATCHER, LYING_CHALLENGER = 1, 2, 3
BOND = 10**18
CLOCK_S = 90
WINDOW_S = 40
FAULT_STEP = "1000"
FAULT_NODE = "2"


@dataclass
class Outcome:
    watcher: str  # the watcher's address
    logs: list[WatcherProcess]  # every run of the watcher, in order
    deployment: Path
    metrics: str  # the last watcher's /metrics once the chain is settled


class Parties:
    """A fresh deployment (k = 2) and the parties' base directories: the task's honest run, put in
    the store, the watcher's copy of it, the liar's and the lying challenger's runs."""

    def __init__(self, rpc: str, factory, work: Path, graph: bool, clock: int, window: int) -> None:
        self.rpc, self.work = rpc, work
        self.deployment = work / "deployment.json"
        self.store = work / "store"
        deploy = ("--k", "2", "--clock", str(clock), "--window", str(window))
        ok(prover_here("deploy", "--rpc", rpc, *self.options(DEPLOYER, work), *deploy))
        if graph:
            honest = graph_task(factory, self.store, work / "task")
            self.liar = graph_task(factory, None, work / "liar", FAULT_NODE)
            self.lying_challenger = graph_task(factory, None, work / "lying-challenger", FAULT_NODE)
            self.faults: tuple[str, ...] = ()  # in the liars' graph runs
        else:
            run = tiny_run(factory)
            honest = tiny_task(factory, self.store, work / "task", bytes([1, 2, 3, 4]))  # the tiny run's
            self.liar = party_dir(run, work / "liar")
            self.lying_challenger = party_dir(run, work / "lying-challenger")
            self.faults = ("--fault-step", FAULT_STEP)
        self.own = party_dir(honest, work / "watcher-own")

    def options(self, account: int, basedir: Path) -> tuple[str, ...]:
        return ("--basedir", str(basedir), "--account", str(account), "--deployment", str(self.deployment))

    def command(self, name: str, account: int, basedir: Path, *args: str) -> None:
        ok(prover_here(name, "--rpc", self.rpc, *self.options(account, basedir), *args))

    def spawn(self, name: str, account: int, basedir: Path, *args: str):
        return spawn(name, *self.options(account, basedir), *args, rpc=self.rpc)


def play(
    rpc: str,
    factory,
    work: Path,
    watcher_auth: tuple[str, ...],
    kills: random.Random | None = None,
    window: int = WINDOW_S,
    clock: int = CLOCK_S,
    graph: bool = False,
    kill_when: tuple[Callable[[WatcherProcess], bool], ...] = (),
    watcher_rpc: str | None = None,
) -> Outcome:
    """Play the scenario; with `kills`, the watcher is killed with SIGKILL at random moments (8
    times, 0.2 to 8 s after it says it is watching: its start-up takes seconds on a loaded
    machine) and started again; with `kill_when`, killed and started again once each condition
    on its log holds, in turn. `watcher_rpc`: the watcher's way to the node, if not `rpc`. Returns
    once the chain is settled."""
    parties = Parties(rpc, factory, work, graph, clock, window)
    parties.command("submit", WATCHER, parties.own)
    parties.command("submit", LIAR, parties.liar, *parties.faults)
    liars = [
        parties.spawn("dispute", LIAR, parties.liar, "--side", "defender", "--json"),
        parties.spawn(
            "dispute",
            LYING_CHALLENGER,
            parties.lying_challenger,
            "--side",
            "challenger",
            "--claim",
            "1",
            *parties.faults,
            "--json",
        ),
    ]
    game = dispute_game(rpc, parties.deployment)
    options = (
        "--basedir",
        str(work / "watcher"),
        "--deployment",
        str(parties.deployment),
        "--store",
        str(parties.store),
    )
    watcher_options = (*options, "--metrics-port", "0", "--poll", "0.1", *watcher_auth)
    watcher_rpc = watcher_rpc or rpc
    logs = [WatcherProcess(watcher_rpc, *watcher_options)]
    address = logs[0].wait_for("watching")["account"]

    def settled() -> bool:
        return (
            game.claim(1).status == "final"
            and game.claim(2).status == "refuted"
            and game.balance_of(address) == 0
        )

    try:
        for _ in range(8 if kills else 0):
            logs[-1].wait_for("watching")
            try:
                wait_until(settled, kills.uniform(0.2, 8.0), "the chain settled")
                break
            except AssertionError:
                logs[-1].stop(9)
                logs.append(WatcherProcess(watcher_rpc, *watcher_options))
        for condition in kill_when:
            log = logs[-1]
            wait_until(partial(condition, log), window + WAIT_TIMEOUT_S, "the moment to kill")
            logs[-1].stop(9)
            logs.append(WatcherProcess(watcher_rpc, *watcher_options))
        wait_until(settled, window + WAIT_TIMEOUT_S, "the chain settled")
        url = logs[-1].wait_for("serving")["url"]
        wait_until(lambda: "prover_watch_games_open 0.0" in metrics(url), 30, "no open game in the metrics")
        exported = metrics(url)
        for liar in liars:
            out, err = liar.communicate(timeout=WAIT_TIMEOUT_S)
            assert liar.returncode == 0, out + err
            assert json.loads(out.splitlines()[-1])["event"] == "result"
    except AssertionError:
        # What the watcher said, for the failure's report.
        for log in logs:
            print("\n".join(json.dumps(line) for line in log.lines[-30:]), "\n".join(log.err_lines[-30:]))
        print(
            [game.claim(claim) for claim in (1, 2)],
            [game.game(n) for n in range(1, game.call("gameCount") + 1)],
        )
        raise
    finally:
        for liar in liars:
            liar.kill()
            liar.wait()
        for log in logs:
            log.stop()
    return Outcome(address, logs, parties.deployment, exported)


def metrics(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as reply:
        return reply.read().decode()


def check_chain(rpc: str, outcome: Outcome) -> None:
    """What the chain must say after the scenario: the watcher opened one game (against claim 2),
    won both games by proving a step (no timeout), and withdrew 4 bonds in all."""
    game = dispute_game(rpc, outcome.deployment)
    started = game.contract.events.GameStarted().get_logs(from_block=0)
    assert sorted((log.args.claimId, log.args.challenger == outcome.watcher) for log in started) == [
        (1, False),
        (2, True),
    ]
    resolved = game.contract.events.GameResolved().get_logs(from_block=0)
    by_game = {log.args.gameId: log.args for log in resolved}
    for log in started:
        winner = by_game[log.args.gameId].winner
        assert winner == (1 if log.args.challenger == outcome.watcher else 0)  # Side: 0 defender
        assert not by_game[log.args.gameId].byTimeout
    withdrawn = game.contract.events.Withdrawn().get_logs(
        from_block=0, argument_filters={"account": outcome.watcher}
    )
    assert sum(log.args.amount for log in withdrawn) == 4 * BOND
