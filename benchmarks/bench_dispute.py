"""Wall time of a whole MNIST MLP dispute, k = 16, as users run it (target: <= 30 s).

A `prover node`, then every step a separate `prover` process as in scripts/challenge_simple.sh:
deploy; both parties build the golden image and run their trace (`prover run --model --data`, the
two parties at the same time, as two machines would); the honest submitter posts its claim; the
faulty challenger (register corrupted at a third of the run) opens a game and the two
`prover dispute` agents play every round and the final step concurrently. Prints the wall time of
each phase, when each agent started playing and finished, the CPU time of all processes (the node
included) and the load average, since on a shared machine the wall time depends on what else runs.

    .venv/bin/python benchmarks/bench_dispute.py [--k 16] [--model models/mlp_int8.ggml] [--image 0]
"""

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from prover.model.data import mnist_test_digit

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 30.0
PROVER = [sys.executable, "-m", "prover.cli"]


def spawn(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*PROVER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate()
    if process.returncode != 0:
        sys.exit(f"{' '.join(process.args[3:])} failed:\n{out}{err}")
    return out


def prover(*args: str, env: dict[str, str]) -> str:
    return finish(spawn(*args, env=env))


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def node() -> Iterator[tuple[str, subprocess.Popen]]:
    process = subprocess.Popen([*PROVER, "node", "--port", "0"], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        yield process.stdout.readline().split()[-1], process
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


class Agent:
    """A `prover dispute` process whose output lines are timestamped as they come."""

    def __init__(self, start: float, *args: str, env: dict[str, str]) -> None:
        self.start = start
        self.process = spawn("dispute", *args, env=env)
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append((time.perf_counter() - self.start, line.rstrip()))

    def wait(self) -> None:
        self.reader.join()
        if self.process.wait() != 0:
            output = "\n".join(line for _, line in self.lines)
            sys.exit(f"dispute agent failed:\n{output}\n{self.process.stderr.read()}")
        self.process.stderr.close()

    def first(self, prefix: str) -> float:
        return next(at for at, line in self.lines if line.startswith(prefix))

    @property
    def moves(self) -> int:
        return sum(line.startswith("game ") and "(gas " in line for _, line in self.lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "mlp_int8.ggml")
    parser.add_argument("--image", type=int, default=0, help="MNIST test image index")
    args = parser.parse_args()
    if not args.model.exists():
        sys.exit(f"{args.model}: no such model file")

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as work_dir, node() as (rpc, node_process):
        work = Path(work_dir)
        env = dict(os.environ, PROVER_RPC=rpc, PROVER_DEPLOYMENT=str(work / "deployment.json"))
        digit = work / "digit.raw"
        digit.write_bytes(mnist_test_digit(args.image)[0].tobytes())
        submitter, challenger = work / "submitter", work / "challenger"
        node_cpu_before = cpu_seconds_of(node_process.pid)
        phases: dict[str, float] = {}

        start = mark = time.perf_counter()

        def phase(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            phases[name] = now - mark
            mark = now

        prover("deploy", "--k", str(args.k), "--basedir", str(work), env=env)
        phase("deploy")
        runs = [
            spawn(
                "run",
                "--model",
                str(args.model),
                "--data",
                str(digit),
                "--basedir",
                str(basedir),
                "--phases",
                "single",
                env=env,
            )
            for basedir in (submitter, challenger)
        ]
        for run in runs:
            finish(run)
        phase("golden image + run (both parties at once)")
        steps = json.loads((submitter / "final.json").read_text())["steps"]
        prover("submit", "--basedir", str(submitter), "--account", "1", env=env)
        phase("submit")
        dispute_start = time.perf_counter()
        defender = Agent(
            dispute_start, "--side", "defender", "--basedir", str(submitter), "--account", "1", env=env
        )
        fault = ("--fault-step", str(steps // 3))
        attacker = Agent(
            dispute_start,
            *("--side", "challenger", "--basedir", str(challenger), "--account", "2", *fault),
            env=env,
        )
        for agent in (defender, attacker):
            agent.wait()
        phase("challenge + all rounds + step (two agents)")
        total = time.perf_counter() - start
        node_cpu = cpu_seconds_of(node_process.pid) - node_cpu_before

        (game,) = json.loads(prover("status", "--json", "--basedir", str(work), env=env))["games"]

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"MNIST MLP dispute, k = {args.k}, {steps:,} steps, fault at step {steps // 3:,}")
    for name, seconds in phases.items():
        print(f"  {name:<46} {seconds:6.2f} s")
    print(f"  {'total':<46} {total:6.2f} s  (target <= {TARGET_S:.0f} s: {total / TARGET_S:.2f} of it)")
    for name, agent in (("defender", defender), ("challenger", attacker)):
        print(
            f"    {name} agent: playing after {agent.first('playing game'):.2f} s (process start-up, "
            f"finding the game), {agent.moves} moves, done after {agent.lines[-1][0]:.2f} s"
        )
    print(
        f"  CPU: all processes {children.ru_utime + children.ru_stime:.1f} s, of which the node "
        f"{node_cpu:.1f} s from deploy to the end; load average before {load_before[0]:.2f}, after "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (above that, other work was competing)"
    )
    print(
        f"  winner: the {game['winner']}; rounds: {game['round']}; "
        f"gas: defender {game['gas']['defender']:,}, challenger {game['gas']['challenger']:,}"
    )


if __name__ == "__main__":
    main()
