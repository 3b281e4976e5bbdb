"""A dishonest `prover watch`, for benchmarks/bench_watch.py: the watcher of prover/watch/ with a
pool that lies about the tasks it is told to (`--lie-on KEY,...`, task keys as
prover/watch/reexec.py's `task_key`): its run of such a task "ends" in another state (the real
final hash with one bit flipped), so it challenges the right claims on it, and it plays those games
from a trace corrupted from `--fault-step` on (prover/game/agent.py's FaultyTrace), which loses at
the one-step proof. Single-phase tasks only. Everything else is the honest watcher's code.

    python benchmarks/lying_watcher.py --rpc URL --key HEX --deployment F --basedir D --store S \\
        --lie-on KEY,KEY [--fault-step 1000] [--workers 1]
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from prover.game.agent import FaultyTrace, Trace
from prover.game.party import connect_party
from prover.watch.log import EventLog
from prover.watch.pool import LocalPool
from prover.watch.reexec import Execution, Roots, task_key
from prover.watch.store import Store
from prover.watch.watcher import Watcher


class LyingPool(LocalPool):
    def __init__(
        self, store: Store, tasks_dir: Path, workers: int, lie_on: set[str], fault_step: int
    ) -> None:
        super().__init__(store, tasks_dir, workers)
        self.lie_on = lie_on
        self.fault_step = fault_step

    def result(self, roots: Roots) -> Execution | None:
        execution = super().result(roots)
        if execution is None or task_key(roots) not in self.lie_on:
            return execution
        lie = bytes([execution.final_hash[0] ^ 1]) + execution.final_hash[1:]
        return replace(execution, final_hash=lie)

    def trace(self, roots: Roots) -> Trace:
        honest = super().trace(roots)
        return FaultyTrace(honest, self.fault_step) if task_key(roots) in self.lie_on else honest


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
