"""The watcher under load (issue 15's load test, on the embedded chain): 50 claims on 50 tasks of
the tiny model, a third of them wrong (a liar who then walks away), the rest the watcher's own,
three of which a late challenger disputes and abandons. One honest watcher must refute every wrong
claim, make every right claim final and withdraw every bond it is owed. Prints the wall time, the
watcher's gas and its process's peak memory (its workers' not included)."""

import json
import time

import pytest
from dispute_helpers import Match, ok, party_dir, prover_here, tiny_run
from node_process import running_node
from watch_helpers import WatcherProcess, dispute_game, tiny_task, wait_until
from watch_scenario import BOND, FAULT_STEP, LIAR, LYING_CHALLENGER, WATCHER

from prover.chain.connect import connect

pytestmark = pytest.mark.slow
CLAIMS = 50
LATE_CHALLENGES = 3
CLOCK_S = 30
WINDOW_S = 150
SETTLE_TIMEOUT_S = 900


def peak_memory_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def test_fifty_claims_a_third_wrong(tmp_path_factory, tmp_path):
    tiny_run(tmp_path_factory)
    store = tmp_path / "store"
    tasks = [
        tiny_task(tmp_path_factory, store, tmp_path / "tasks" / str(i), bytes([i, 7, 3, 1]))
        for i in range(CLAIMS)
    ]
    wrong = set(range(0, CLAIMS, 3))
    with running_node() as rpc:
        match = Match(
            rpc, tasks[0], tmp_path / "match", "--k", "2", "--clock", str(CLOCK_S), "--window", str(WINDOW_S)
        )
        options = ("--deployment", str(match.deployment))
        watcher = WatcherProcess(
            rpc,
            "--basedir",
            str(tmp_path / "watcher"),
            *options,
            "--store",
            str(store),
            "--account",
            str(WATCHER),
        )
        try:
            watcher.wait_for("watching")
            started = time.monotonic()
            claim_of_task = {}
            for i, task in enumerate(tasks):
                if i in wrong:
                    liar = party_dir(task, tmp_path / "liar" / str(i))
                    args = (
                        "submit",
                        "--basedir",
                        str(liar),
                        "--account",
                        str(LIAR),
                        "--fault-step",
                        FAULT_STEP,
                    )
                else:
                    args = ("submit", "--basedir", str(task), "--account", str(WATCHER))
                claim = json.loads(ok(prover_here(*args, *options, "--rpc", rpc, "--json")).out)
                claim_of_task[i] = claim["claim"]
            late = [i for i in range(CLAIMS) if i not in wrong][:LATE_CHALLENGES]
            for i in late:
                liar = party_dir(tasks[i], tmp_path / "late" / str(i))
                challenge = ("challenge", "--basedir", str(liar), "--account", str(LYING_CHALLENGER))
                ok(
                    prover_here(
                        *challenge,
                        "--claim",
                        str(claim_of_task[i]),
                        "--fault-step",
                        FAULT_STEP,
                        *options,
                        "--rpc",
                        rpc,
                    )
                )
            game = dispute_game(rpc, match.deployment)
            address = watcher.wait_for("watching")["account"]

            def settled() -> bool:
                statuses = [game.claim(claim_of_task[i]).status for i in range(CLAIMS)]
                return (
                    all(statuses[i] == ("refuted" if i in wrong else "final") for i in range(CLAIMS))
                    and game.balance_of(address) == 0
                )

            wait_until(settled, SETTLE_TIMEOUT_S, "every claim settled")
            wall = time.monotonic() - started
            peak = peak_memory_kib(watcher.process.pid)
        finally:
            watcher.stop()
        w3 = connect(rpc)
        sent = [
            w3.eth.get_transaction_receipt(tx)
            for number in range(1, w3.eth.block_number + 1)
            for tx in w3.eth.get_block(number)["transactions"]
        ]
        gas = sum(receipt["gasUsed"] for receipt in sent if receipt["from"] == address)
        withdrawn = game.contract.events.Withdrawn().get_logs(
            from_block=0, argument_filters={"account": address}
        )
        # Its own bonds back, the wrong claims' bonds and its challenge bonds back, the late bonds.
        expected = (CLAIMS - len(wrong)) + 2 * len(wrong) + LATE_CHALLENGES
        assert sum(log.args.amount for log in withdrawn) == expected * BOND
        over = watcher.events("game_over")
        assert len(over) == len(wrong) + LATE_CHALLENGES and all(line["won"] for line in over)
        print(
            f"\nwatch load: {CLAIMS} claims ({len(wrong)} wrong, {LATE_CHALLENGES} late challenges): "
            f"settled in {wall:.0f} s (window {WINDOW_S} s, clocks {CLOCK_S} s); the watcher account's "
            f"gas {gas:,} in {sum(receipt['from'] == address for receipt in sent)} transactions "
            f"(its {CLAIMS - len(wrong)} tasks and claims submitted included); "
            f"watcher process peak memory {peak / 1024:.0f} MiB"
        )
