"""The honest side's record under injected faults, over many games (issue 20; target: it wins
every one of at least 200).

The games of tests/fault_injection.py (whose docstring says what is injected and what is checked
after each game): a JSON-RPC proxy that holds, delays and drops transactions; agents of both sides
killed with SIGKILL and started again; the honest party's checkpoints, trace index, golden image,
golden.json and final.json (in multi-phase games graph.json, its copy and the commitment cache)
corrupted while its agent is down; one game in five abandoned by the liar (won by a timeout
claimed by the wall clock). Mostly the tiny run (k = 2 or 8), every `--real-every`-th game the
MLP or LeNet-5 at k = 16, every `--multi-every`-th (first) a multi-phase game of one of them
(the liar corrupts a random node). Prints a line per game and the totals: games
won by the honest side, by timeout, moves, kills, restarts, repairs (warning lines), each kind of
corruption and proxy fault, wall time per game, the load average.

    .venv/bin/python benchmarks/bench_fault_injection.py [--games 200] [--seed 1]
        [--real-every 10] [--multi-every 4] [--at-once 2]
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from dispute_helpers import honest_run, tiny_run  # noqa: E402
from fault_injection import GameReport, plans, play_games  # noqa: E402
from node_process import running_node  # noqa: E402


class Directory:
    """Where the helpers make their runs (they take a pytest temporary-path factory)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def getbasetemp(self) -> Path:
        return self.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--real-every", type=int, default=10, help="every n-th game a real model")
    parser.add_argument("--multi-every", type=int, default=4, help="every n-th game multi-phase")
    parser.add_argument("--at-once", type=int, default=2, help="games played at the same time")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        runs = {"tiny": tiny_run(Directory(work)), "mlp": honest_run("mlp", Directory(work))}
        runs["lenet5"] = honest_run("lenet5", Directory(work))
        steps = {name: json.loads((run / "final.json").read_text())["steps"] for name, run in runs.items()}
        graph_runs = tuple(honest_run(name, Directory(work), phases="multi") for name in ("mlp", "lenet5"))
        chosen = plans(rng, runs, steps, args.games, args.real_every, graph_runs, args.multi_every)
        began = time.monotonic()
        done = Counter()

        def progress(report: GameReport) -> None:
            done["games"] += 1
            plan = report.plan
            print(
                f"game {done['games']:4d}: {plan.run.name:19s} k={plan.k:2d} honest {plan.honest:10s} "
                f"won by {report.winner}{' (timeout)' if report.by_timeout else ''}; {report.moves} moves, "
                f"{report.kills} kills, {report.restarts} restarts, {len(report.warnings)} repairs, "
                f"{report.seconds:.1f} s",
                flush=True,
            )

        with running_node() as node:
            reports, faults = play_games(node, work, chosen, rng, progress, args.at_once)
        wall = time.monotonic() - began
    won = sum(report.winner == report.plan.honest for report in reports)
    corruptions = Counter(kind for report in reports for kind in report.corruptions)
    print(f"honest side won {won} of {len(reports)} games ({sum(r.by_timeout for r in reports)} by timeout)")
    print(
        f"moves {sum(r.moves for r in reports)}, kills {sum(r.kills for r in reports)}, "
        f"restarts {sum(r.restarts for r in reports)}, repair lines {sum(len(r.warnings) for r in reports)}"
    )
    print("corruptions: " + ", ".join(f"{kind} {count}" for kind, count in sorted(corruptions.items())))
    print("proxy: " + ", ".join(f"{fault} {count}" for fault, count in sorted(faults.items())))
    print(f"wall {wall:.0f} s, {wall / max(len(reports), 1):.1f} s per game ({args.at_once} at once)")
    print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    if won != len(reports) or len(reports) != args.games:
        sys.exit("the honest side lost a game")


if __name__ == "__main__":
    main()
