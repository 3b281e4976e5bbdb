"""Shared by the dispute tests (test_e2e_dispute.py, test_game_commands.py): `prover` commands in a
separate process or in this one, and one honest run per trained model on a shipped MNIST digit.

The honest runs are made once per test session, even across pytest-xdist workers (the workers of
one session share the parent of their base temporary directories; a file lock makes the first
worker run the model and the others wait for it and reuse the result). Parties start from copies.
"""

import contextlib
import fcntl
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from prover.chain.connect import connect
from prover.cli.main import main
from prover.model.data import sample_digit
from prover.model.modelfile import save_model
from prover.model.network import Linear, Network

REPO = Path(__file__).resolve().parent.parent
MODELS = {"mlp": REPO / "models" / "mlp_int8.ggml", "lenet5": REPO / "models" / "lenet5_int8.ggml"}
COMMAND_TIMEOUT_S = 600
DEPLOYER, SUBMITTER, CHALLENGER = 0, 1, 2  # the node's accounts of the parties


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def prover(*args: str, rpc: str | None = None) -> Result:
    """`prover ARGS` in a separate process (a party of a game, or the real command line's exit)."""
    env = dict(os.environ, **({"PROVER_RPC": rpc} if rpc else {}))
    done = subprocess.run(
        [sys.executable, "-m", "prover.cli", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        env=env,
        cwd=REPO,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def prover_here(*args: str) -> Result:
    """`prover ARGS` in this process, through the same entry point (its one-line errors and exit
    codes included): for the commands that are not the parties' moves, which would otherwise pay
    a process start-up (about 1.5 s of imports) each."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with mock.patch.object(sys, "argv", ["prover", *args]), redirect_stdout(out), redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    return Result(code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())


def ok(result: Result) -> Result:
    assert result.code == 0, f"exit {result.code}:\n{result.out}\n{result.err}"
    return result


def spawn(*args: str, rpc: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "prover.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PROVER_RPC=rpc),
        cwd=REPO,
    )


@contextlib.contextmanager
def made_once(factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """The session's shared directory (shared by the pytest-xdist workers of one session: the
    parent of their base temporary directories), locked for `name` while the caller makes what
    it needs there if it is not there yet (the first worker makes it, the others wait and reuse)."""
    root = factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = root.parent
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield root


def honest_run(name: str, factory: pytest.TempPathFactory, phases: str = "single") -> Path:
    """The task and run of model `name` on MNIST test image 0, the shipped PNG (made once per
    session): the golden image run in the VM (`phases` "single"), or the graph run of the
    multi-phase game ("multi", the default of `prover run` for int8 models)."""
    made = f"honest-{name}" if phases == "single" else f"honest-{name}-{phases}"
    with made_once(factory, made) as root:
        basedir = root / made
        done = root / f"{made}.done"  # written once the run is whole
        if not done.exists():
            digit = sample_digit(0)
            run = ("run", "--model", str(MODELS[name]), "--data", str(digit), "--basedir", str(basedir))
            ok(prover_here(*run, "--phases", phases, "--json"))
            done.touch()
    return basedir


TINY_INTERVAL = 500  # checkpoints of the tiny run: 12 of them over its 5,501 steps


def tiny_run(factory: pytest.TempPathFactory) -> Path:
    """The golden image and run of a tiny model (one 4 x 3 linear layer with random weights, f32,
    on four input bytes): 5,501 steps, a whole k = 2 game in 13 rounds, for the tests that play
    many games; made once per session like `honest_run`."""
    with made_once(factory, "honest-tiny") as root:
        basedir = root / "honest-tiny"
        if not (basedir / "final.json").exists():
            network = Network((4,), [Linear(3)], 1 / 255, 0.0)
            save_model(network.to_graph(network.init_parameters(0)), root / "tiny.ggml")
            (root / "tiny.raw").write_bytes(bytes([1, 2, 3, 4]))
            run = ("run", "--model", str(root / "tiny.ggml"), "--data", str(root / "tiny.raw"))
            ok(prover_here(*run, "--interval", str(TINY_INTERVAL), "--basedir", str(basedir), "--json"))
    return basedir


def party_dir(run: Path, path: Path) -> Path:
    """A party's base directory: a copy of an honest run."""
    shutil.copytree(run, path)
    return path


def advance_time(rpc: str, seconds: int) -> None:
    """Move the node's clock on (it mines a block that much later)."""
    connect(rpc).provider.make_request("evm_increaseTime", [seconds])


class Match:
    """A fresh deployment on the node (by account DEPLOYER, with `deploy_options`) and two parties'
    base directories, copies of one honest run: the submitter's (account SUBMITTER) and the
    challenger's (account CHALLENGER)."""

    def __init__(self, rpc: str, run: Path, work: Path, *deploy_options: str) -> None:
        self.rpc = rpc
        self.work = work
        self.deployment = work / "deployment.json"
        self.submitter = party_dir(run, work / "submitter")
        self.challenger = party_dir(run, work / "challenger")
        self.run = run
        ok(self.here("deploy", DEPLOYER, work, *deploy_options))

    @property
    def steps(self) -> int:
        """The VM steps of a single-phase run (its final.json)."""
        return json.loads((self.run / "final.json").read_text())["steps"]

    def _options(self, account: int, basedir: Path) -> tuple[str, ...]:
        return ("--basedir", str(basedir), "--account", str(account), "--deployment", str(self.deployment))

    def party(self, name: str, account: int, basedir: Path, *args: str) -> Result:
        """A party's command in its own process."""
        return prover(name, *self._options(account, basedir), *args, rpc=self.rpc)

    def spawn(self, name: str, account: int, basedir: Path, *args: str) -> subprocess.Popen:
        return spawn(name, *self._options(account, basedir), *args, rpc=self.rpc)

    def here(self, name: str, account: int, basedir: Path, *args: str) -> Result:
        """A command in this process."""
        return prover_here(name, "--rpc", self.rpc, *self._options(account, basedir), *args)

    def status(self, *args: str) -> dict:
        return json.loads(ok(self.here("status", DEPLOYER, self.work, "--json", *args)).out)
