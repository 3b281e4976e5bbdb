"""The watcher under load on a real node (issue 15's load test, a benchmark): a hardhat node with
interval mining; CLAIMS claims on as many tasks (the tiny f32 model's single-phase tasks, and every
--graph-every-th one a graph task of a small int8 MLP: the multi-phase game), a third of them wrong
(a liar submits them and walks away), the rest the honest watcher's own; two watchers: the honest
one (`prover watch`) and a lying one (benchmarks/lying_watcher.py: it challenges --lied-on of the
right claims and plays those games from a corrupted trace); and a late challenger who disputes
--late right claims late in their window and walks away.

Checked at the end: every wrong claim refuted, every right claim final, every game the honest
watcher played won, its balance withdrawn, and what it withdrew at least every bond it posted.
Prints the wall time (first claim to the last settlement), the gas of each party (the honest
watcher's own tasks and claims included), the honest watcher's peak memory (its process, and its
worker processes), and the games.

    .venv/bin/python benchmarks/bench_watch.py [--claims 50] [--graph-every 5] [--lied-on 4]
        [--graph-lied-on 2] [--late 3] [--interval-ms 1000] [--k 4] [--window 300] [--clock 60]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from dispute_helpers import ok, party_dir, prover_here  # noqa: E402
from hardhat_node import KEYS, hardhat_node  # noqa: E402
from test_guest_models import images  # noqa: E402
from watch_helpers import WatcherProcess, dispute_game, graph_task, tiny_task, wait_until  # noqa: E402

from prover.chain.connect import connect  # noqa: E402
from prover.task.basedir import GRAPH_JSON, read_json  # noqa: E402
from prover.watch.reexec import task_key  # noqa: E402

DEPLOYER, LIAR, WATCHER, LYING_WATCHER, LATE = 0, 1, 2, 3, 4
FAULT_STEP, FAULT_NODE = "1000", "2"


class Directory:
    """Where the test helpers make their shared runs (they take a pytest temporary-path factory)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def getbasetemp(self) -> Path:
        return self.path


def roots_key(basedir: Path) -> str:
    """The watcher's key of the task laid out in `basedir`."""
    path = basedir / GRAPH_JSON if (basedir / GRAPH_JSON).exists() else basedir / "golden.json"
    record = read_json(path, "a task")
    names = ("program_root", "input_root", "model_root")
    return task_key(tuple(bytes.fromhex(record[name][2:]) for name in names))


def peak_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=50)
    parser.add_argument("--graph-every", type=int, default=5, help="every n-th task a graph task (0: none)")
    parser.add_argument("--lied-on", type=int, default=4, help="right claims the lying watcher challenges")
    parser.add_argument("--graph-lied-on", type=int, default=2, help="of them, multi-phase ones")
    parser.add_argument("--late", type=int, default=3, help="right claims a late challenger disputes")
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--window", type=int, default=300)
    parser.add_argument("--clock", type=int, default=60)
    parser.add_argument("--timeout", type=int, default=3600, help="seconds to wait for the settlement")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        factory = Directory(work)
        store = work / "store"
        began = time.monotonic()
        tasks, liars, graph = [], {}, set()
        for i in range(args.claims):
            basedir = work / "tasks" / str(i)
            if args.graph_every and i % args.graph_every == args.graph_every - 1:
                graph.add(i)
                data = images(1, seed=1000 + i)[0]
                tasks.append(graph_task(factory, store, basedir, data_bytes=data))
                if i % 3 == 0:
                    liars[i] = graph_task(factory, None, work / "liar" / str(i), FAULT_NODE, data)
            else:
                tasks.append(tiny_task(factory, store, basedir, bytes([i, 7, 3, 1])))
                if i % 3 == 0:
                    liars[i] = party_dir(tasks[i], work / "liar" / str(i))
        wrong = set(liars)
        right_single = [i for i in range(args.claims) if i not in wrong and i not in graph]
        right_graph = [i for i in range(args.claims) if i not in wrong and i in graph]
        single_lies = args.lied_on - args.graph_lied_on
        lied_on = (right_single[-single_lies:] if single_lies else []) + (
            right_graph[-args.graph_lied_on :] if args.graph_lied_on else []
        )
        late = right_single[: args.late]
        print(
            f"{args.claims} tasks laid out in {time.monotonic() - began:.0f} s ({len(graph)} graph "
            f"tasks; {len(wrong)} wrong claims, {len(lied_on)} lied on, {len(late)} late)",
            flush=True,
        )
        with hardhat_node(interval_ms=args.interval_ms, keys=KEYS) as rpc:
            deployment = work / "deployment.json"
            deploy = ("--k", str(args.k), "--clock", str(args.clock), "--window", str(args.window))
            chain = ("--rpc", rpc, "--deployment", str(deployment))
            ok(prover_here("deploy", *chain, "--basedir", str(work), "--account", str(DEPLOYER), *deploy))
            honest = WatcherProcess(
                rpc,
                *("--basedir", str(work / "watcher"), "--deployment", str(deployment)),
                *("--store", str(store), "--key", KEYS[WATCHER]),
            )
            lying_log = open(work / "lying.log", "w")  # noqa: SIM115 (closed below)
            lying = subprocess.Popen(
                [
                    *(sys.executable, str(REPO / "benchmarks" / "lying_watcher.py"), "--rpc", rpc),
                    *("--key", KEYS[LYING_WATCHER], "--deployment", str(deployment)),
                    *("--basedir", str(work / "lying"), "--store", str(store)),
                    *("--lie-on", ",".join(roots_key(tasks[i]) for i in lied_on), "--fault-step", FAULT_STEP),
                ],
                stdout=lying_log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
            try:
                address = honest.wait_for("watching", 300)["account"]
                started = time.monotonic()
                claim_of = {}
                for i, task in enumerate(tasks):
                    if i in wrong:
                        fault = () if i in graph else ("--fault-step", FAULT_STEP)
                        party = ("--basedir", str(liars[i]), "--account", str(LIAR), *fault)
                    else:
                        party = ("--basedir", str(task), "--key", KEYS[WATCHER])
                    claim_of[i] = json.loads(ok(prover_here("submit", *chain, *party, "--json")).out)["claim"]
                for i in late:
                    challenger = party_dir(tasks[i], work / "late" / str(i))
                    late_party = ("--basedir", str(challenger), "--account", str(LATE))
                    ok(
                        prover_here(
                            "challenge",
                            *chain,
                            *late_party,
                            "--claim",
                            str(claim_of[i]),
                            "--fault-step",
                            FAULT_STEP,
                        )
                    )
                submitted = time.monotonic() - started
                print(f"{args.claims} claims submitted in {submitted:.0f} s", flush=True)
                game = dispute_game(rpc, deployment)

                def settled() -> bool:
                    statuses = {i: game.claim(claim_of[i]).status for i in range(args.claims)}
                    games = game.call("gameCount")
                    return (
                        all(statuses[i] == ("refuted" if i in wrong else "final") for i in statuses)
                        and all(game.game(n).over for n in range(1, games + 1))
                        and game.balance_of(address) == 0
                    )

                wait_until(settled, args.timeout, "every claim settled")
                wall = time.monotonic() - started
                watcher_peak = peak_kib(honest.process.pid)
                worker_peaks = [peak_kib(pid) for pid in children(honest.process.pid)]
            finally:
                honest.stop()
                lying.terminate()
                lying.wait(timeout=60)
                lying_log.close()
            w3 = connect(rpc)
            receipts = [
                w3.eth.get_transaction_receipt(tx)
                for number in range(1, w3.eth.block_number + 1)
                for tx in w3.eth.get_block(number)["transactions"]
            ]
            accounts = {
                w3.eth.account.from_key(KEYS[n]).address: name
                for n, name in enumerate(
                    ("deployer", "liar", "honest watcher", "lying watcher", "late challenger", "spare")
                )
            }
            gas: dict[str, int] = {}
            count: dict[str, int] = {}
            for receipt in receipts:
                name = accounts.get(receipt["from"], receipt["from"])
                gas[name] = gas.get(name, 0) + receipt["gasUsed"]
                count[name] = count.get(name, 0) + 1
            withdrawn = sum(
                log.args.amount
                for log in game.contract.events.Withdrawn().get_logs(
                    from_block=0, argument_filters={"account": address}
                )
            )
            started_games = game.contract.events.GameStarted().get_logs(from_block=0)
            resolved = {
                log.args.gameId: log.args
                for log in game.contract.events.GameResolved().get_logs(from_block=0)
            }
            honest_challenges = sum(log.args.challenger == address for log in started_games)
            posted = game.submit_bond * (args.claims - len(wrong)) + game.challenge_bond * honest_challenges
        over = honest.events("game_over")
        lost = [line for line in over if not line["won"]]
        lying_lines = [
            json.loads(line) for line in (work / "lying.log").read_text().splitlines() if line.startswith("{")
        ]
        lying_over = [line for line in lying_lines if line.get("event") == "game_over"]
        by_timeout = sum(result.byTimeout for result in resolved.values())
        phases = {(move["game"], move.get("phase")) for move in honest.events("move")}
        vm_phase = sorted(game_id for game_id, phase in phases if phase == "vm")
        lying_address = w3.eth.account.from_key(KEYS[LYING_WATCHER]).address
        lying_challenges = sum(log.args.challenger == lying_address for log in started_games)
        print(
            f"\nwatch benchmark: {args.claims} claims ({len(wrong)} wrong, {len(graph)} multi-phase), "
            f"hardhat interval mining {args.interval_ms} ms, k = {args.k}, window {args.window} s, "
            f"clocks {args.clock} s"
        )
        print(f"  settled in {wall:.0f} s after the first claim (submitting took {submitted:.0f} s)")
        print(
            f"  games: {len(started_games)} ({honest_challenges} opened by the honest watcher, "
            f"{lying_challenges} by the lying watcher, {len(late)} late); {by_timeout} won by timeout; "
            f"the honest watcher played {len(over)}, lost {len(lost)}; "
            f"the lying watcher played {len(lying_over)}, won {sum(line['won'] for line in lying_over)}; "
            f"multi-phase games that reached the VM game on a node: {len(vm_phase)}"
        )
        for name in sorted(gas):
            print(f"  gas {name}: {gas[name]:,} in {count[name]} transactions")
        print(f"  gas total: {sum(gas.values()):,}")
        print(
            f"  honest watcher: posted {posted / 1e18:g} ETH of bonds, withdrew {withdrawn / 1e18:g} ETH "
            f"(net {(withdrawn - posted) / 1e18:+g} ETH)"
        )
        print(
            f"  honest watcher peak memory: {watcher_peak / 1024:.0f} MiB (process), workers "
            + ", ".join(f"{peak / 1024:.0f}" for peak in worker_peaks)
            + " MiB"
        )
        print(f"  load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
        assert not lost, lost
        assert withdrawn >= posted, (withdrawn, posted)


if __name__ == "__main__":
    main()
