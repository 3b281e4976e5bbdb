"""The watcher's two-game scenario, on any node (tests/test_watch.py on the embedded chain,
test_watch_resume.py with kills, test_watch_hardhat.py on hardhat): the tiny run's task (k = 2),
two claims on it and two liars who play their games to the end with `prover dispute`.

- claim 1 is the watcher's own, right; a lying challenger (account 3) disputes it;
- claim 2 is a liar's (account 1), wrong from step 1000; the liar defends it.

An honest watcher (account 2) must challenge claim 2 (once), win both games, finalize claim 1 once
its window is over and withdraw everything: its bond back, the liar's and the lying challenger's."""

import json
import random
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dispute_helpers import Match, ok, party_dir, tiny_run
from watch_helpers import WAIT_TIMEOUT_S, WatcherProcess, dispute_game, tiny_task, wait_until

LIAR, WATCHER, LYING_CHALLENGER = 1, 2, 3
BOND = 10**18
CLOCK_S = 90
WINDOW_S = 40
FAULT_STEP = "1000"


@dataclass
class Outcome:
    watcher: str  # the watcher's address
    logs: list[WatcherProcess]  # every run of the watcher, in order
    match: Match
    metrics: str  # the last watcher's /metrics once the chain is settled


def play(
    rpc: str,
    factory,
    work: Path,
    watcher_auth: tuple[str, ...],
    kills: random.Random | None = None,
    window: int = WINDOW_S,
    clock: int = CLOCK_S,
) -> Outcome:
    """Play the scenario; with `kills`, the watcher is killed with SIGKILL at random moments (8
    times, 0.2 to 8 s after it says it is watching: its start-up takes seconds on a loaded
    machine) and started again. Returns once the chain is settled."""
    run = tiny_run(factory)
    match = Match(rpc, run, work, "--k", "2", "--clock", str(clock), "--window", str(window))
    store = work / "store"
    tiny_task(factory, store, work / "task", bytes([1, 2, 3, 4]))  # the tiny run's task
    own = party_dir(run, work / "watcher-own")
    ok(match.party("submit", WATCHER, own))
    ok(match.party("submit", LIAR, match.submitter, "--fault-step", FAULT_STEP))
    liars = [
        match.spawn("dispute", LIAR, match.submitter, "--side", "defender", "--json"),
        match.spawn(
            "dispute",
            LYING_CHALLENGER,
            party_dir(run, work / "lying-challenger"),
            "--side",
            "challenger",
            "--claim",
            "1",
            "--fault-step",
            FAULT_STEP,
            "--json",
        ),
    ]
    game = dispute_game(rpc, match.deployment)
    options = (
        "--basedir",
        str(work / "watcher"),
        "--deployment",
        str(match.deployment),
        "--store",
        str(store),
    )
    watcher_options = (*options, "--metrics-port", "0", "--poll", "0.1", *watcher_auth)
    logs = [WatcherProcess(rpc, *watcher_options)]
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
                logs.append(WatcherProcess(rpc, *watcher_options))
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
    return Outcome(address, logs, match, exported)


def metrics(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as reply:
        return reply.read().decode()


def check_chain(rpc: str, outcome: Outcome) -> None:
    """What the chain must say after the scenario: the watcher opened one game (against claim 2),
    won both games by proving a step (no timeout), and withdrew 4 bonds in all."""
    game = dispute_game(rpc, outcome.match.deployment)
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
