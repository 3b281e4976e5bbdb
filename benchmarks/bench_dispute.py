"""Wall time of a whole MNIST MLP dispute, k = 16, as users run it (target: <= 30 s).

A `prover node`, then every step a separate `prover` process as in scripts/challenge_simple.sh:
deploy; both parties build the golden image and run their trace; the honest submitter posts its
claim; the faulty challenger (register corrupted at a third of the run) opens a game; the two
`prover dispute` agents play every round and the final step concurrently. Prints the time of each
phase, the rounds and the gas.

    .venv/bin/python benchmarks/bench_dispute.py [--k 16] [--model models/mlp_int8.ggml] [--image 0]
"""

import argparse
import contextlib
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MNIST_DIR = Path(os.environ.get("MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))
TARGET_S = 30.0


def prover(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "prover.cli", *args], capture_output=True, text=True, env=env, cwd=REPO
    )
    if result.returncode != 0:
        sys.exit(f"prover {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


@contextlib.contextmanager
def node() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "prover.cli", "node", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        yield process.stdout.readline().split()[-1]
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "mlp_int8.ggml")
    parser.add_argument("--image", type=int, default=0, help="MNIST test image index")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work_dir, node() as rpc:
        work = Path(work_dir)
        env = dict(os.environ, PROVER_RPC=rpc, PROVER_DEPLOYMENT=str(work / "deployment.json"))
        with gzip.open(MNIST_DIR / "t10k-images-idx3-ubyte.gz") as images:
            pixels = images.read()[16 + 784 * args.image : 16 + 784 * (args.image + 1)]
        (work / "digit.raw").write_bytes(pixels)
        model = args.model
        if not model.exists():
            # Until the trained .ggml files are committed: the guest tests' random-weight int8 MLP
            # of the same shape (784-500-10); the trace length and the dispute are alike.
            sys.path.insert(0, str(REPO / "tests"))
            from test_guest_models import int8_mlp

            print(f"{model} not found: a random-weight int8 MLP 784-500-10 stands in")
            model = work / "mlp_stand_in.ggml"
            model.write_bytes(int8_mlp(hidden=500))
        parties = {"submitter": (work / "submitter", "1"), "challenger": (work / "challenger", "2")}
        phases: dict[str, float] = {}

        start = time.perf_counter()
        prover("deploy", "--k", str(args.k), "--basedir", str(work), env=env)
        phases["deploy"] = time.perf_counter() - start

        mark = time.perf_counter()
        for basedir, _ in parties.values():
            prover(
                "golden",
                "--model",
                str(model),
                "--data",
                str(work / "digit.raw"),
                "--basedir",
                str(basedir),
                env=env,
            )
            prover("run", "--basedir", str(basedir), env=env)
        phases["both traces (golden + run, x2)"] = time.perf_counter() - mark

        mark = time.perf_counter()
        submitter, challenger = parties["submitter"], parties["challenger"]
        steps = json.loads((submitter[0] / "final.json").read_text())["steps"]
        prover("submit", "--basedir", str(submitter[0]), "--account", submitter[1], env=env)
        agents = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prover.cli",
                    "dispute",
                    "--side",
                    side,
                    "--basedir",
                    str(basedir),
                    "--account",
                    account,
                    *(["--fault-step", str(steps // 3)] if side == "challenger" else []),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=REPO,
            )
            for side, (basedir, account) in (("defender", submitter), ("challenger", challenger))
        ]
        for agent in agents:
            out, err = agent.communicate()
            if agent.returncode != 0:
                sys.exit(f"dispute agent failed:\n{out}{err}")
        phases["submit + challenge + all rounds + step"] = time.perf_counter() - mark
        total = time.perf_counter() - start

        (game,) = json.loads(prover("status", "--json", "--basedir", str(work), env=env))["games"]

    print(f"MNIST MLP dispute, k = {args.k}, {steps:,} steps, fault at step {steps // 3:,}")
    for phase, seconds in phases.items():
        print(f"  {phase:<42} {seconds:6.2f} s")
    print(f"  {'total':<42} {total:6.2f} s  (target <= {TARGET_S:.0f} s: {total / TARGET_S:.2f} of it)")
    print(
        f"  winner: the {game['winner']}; rounds: {game['round']}; "
        f"gas: defender {game['gas']['defender']:,}, challenger {game['gas']['challenger']:,}"
    )


if __name__ == "__main__":
    main()
