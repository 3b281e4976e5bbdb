"""A dishonest `prover watch`, for benchmarks/bench_watch.py: the watcher of prover/watch/ with a
pool that lies about the tasks it is told to (`--lie-on KEY,...`, task keys as
prover/watch/reexec.py's `task_key`): its run of such a task ends in another state, so it
challenges the right claims on it and plays those games from its lie: on a single-phase task a
trace corrupted from `--fault-step` on (prover/game/agent.py's FaultyTrace), on a graph task
(multi-phase games) a graph run that corrupts node 2's output (`prover run --fault-node 2`'s lie),
whose VM run of that node then lies from its last step (prover/game/multiphase.py). Both lose at
the one-step proof. Everything else is the honest watcher's code.

    python benchmarks/lying_watcher.py --rpc URL --key HEX --deployment F --basedir D --store S \\
        --lie-on KEY,KEY [--fault-step 1000] [--workers 1]
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from prover.game.agent import FaultyTrace, PhasedTrace, Trace
from prover.game.multiphase import GraphParty
from prover.game.party import connect_party
from prover.task.graph_trace import trace_graph
from prover.watch.log import EventLog
from prover.watch.pool import LocalPool
from prover.watch.reexec import Execution, Roots, task_key
from prover.watch.store import Store
from prover.watch.watcher import Watcher

FAULT_NODE = 2


class LyingPool(LocalPool):
    def __init__(
        self, store: Store, tasks_dir: Path, workers: int, lie_on: set[str], fault_step: int
    ) -> None:
        super().__init__(store, tasks_dir, workers)
        self.lie_on = lie_on
        self.fault_step = fault_step
        self.lies: dict[str, Trace | PhasedTrace] = {}

    def result(self, roots: Roots) -> Execution | None:
        execution = super().result(roots)
        if execution is None or task_key(roots) not in self.lie_on:
            return execution
        return replace(execution, final_hash=self.trace(roots).state_hash_at(execution.steps))

    def trace(self, roots: Roots) -> Trace | PhasedTrace:
        key = task_key(roots)
        if key not in self.lie_on:
            return super().trace(roots)
        if key not in self.lies:
            honest = super().trace(roots)
            if isinstance(honest, GraphParty):
                graph = honest.graph
                lying = trace_graph(graph, honest.trace.payload(graph.input), FAULT_NODE)
                self.lies[key] = replace(honest, trace=lying, _runs={})
            else:
                self.lies[key] = FaultyTrace(honest, self.fault_step)
        return self.lies[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--deployment", type=Path, required=True)
    parser.add_argument("--basedir", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--lie-on", default="", help="task keys, comma-separated")
    parser.add_argument("--fault-step", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--poll", type=float, default=0.2)
    args = parser.parse_args()
    party = connect_party(args.rpc, args.basedir, 0, args.key, args.deployment)
    args.basedir.mkdir(parents=True, exist_ok=True)
    lie_on = {key for key in args.lie_on.split(",") if key}
    pool = LyingPool(Store(args.store), args.basedir / "tasks", args.workers, lie_on, args.fault_step)
    try:
        Watcher(party, pool, EventLog(True), poll=args.poll).run()
    finally:
        pool.close()


if __name__ == "__main__":
    sys.exit(main())
