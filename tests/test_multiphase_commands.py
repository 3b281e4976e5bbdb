"""Multi-phase games through the commands, over the JSON-RPC node: `prover run` (the default game
of an int8 model), then submit, challenge, respond and step moving through the graph phase, the
node's opening and the VM phase (status shows the phase, the node and its op); agents that resume
after kill -9 in either phase; scripts/challenge_multiphase.sh in both directions; and the choice
of the game (`--phases`)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dispute_helpers import (
    CHALLENGER,
    COMMAND_TIMEOUT_S,
    DEPLOYER,
    MODELS,
    REPO,
    SUBMITTER,
    ok,
    prover_here,
    spawn,
)
from node_process import running_node

from prover.model.data import sample_digit


@pytest.fixture(scope="module")
def rpc_url():
    with running_node() as url:
        yield url


class GraphParties:
    """A fresh deployment and two graph runs of the MLP on MNIST test image 0."""

    def __init__(self, rpc: str, work: Path, k: int, faulty: str, fault_node: int) -> None:
        self.rpc, self.work = rpc, work
        self.deployment = work / "deployment.json"
        digit = sample_digit(0)
        self.dirs = {SUBMITTER: work / "submitter", CHALLENGER: work / "challenger"}
        ok(self.here("deploy", DEPLOYER, work, "--k", str(k)))
        for account, basedir in self.dirs.items():
            fault = (
                ("--fault-node", str(fault_node))
                if (account == CHALLENGER) == (faulty == "challenger")
                else ()
            )
            # The normal flow: `prover run --model --data` plays the multi-phase game by default.
            run = ("run", "--model", str(MODELS["mlp"]), "--data", str(digit), "--basedir", str(basedir))
            ok(prover_here(*run, *fault))

    def options(self, account: int, basedir: Path) -> tuple[str, ...]:
        return ("--basedir", str(basedir), "--account", str(account), "--deployment", str(self.deployment))

    def here(self, name: str, account: int, basedir: Path, *args: str):
        return prover_here(name, "--rpc", self.rpc, *self.options(account, basedir), *args)

    def does(self, account: int, name: str, *args: str) -> dict:
        return json.loads(ok(self.here(name, account, self.dirs[account], *args, "--json")).out)

    def status(self) -> dict:
        return self.does(SUBMITTER, "status", "--game", "1")["games"][0]

    def spawn(self, account: int, side: str) -> subprocess.Popen:
        args = (
            "dispute",
            *self.options(account, self.dirs[account]),
            "--side",
            side,
            "--poll",
            "0.05",
            "--json",
        )
        return spawn(*args, rpc=self.rpc)


def test_a_multiphase_game_move_by_move(rpc_url: str, tmp_path: Path) -> None:
    parties = GraphParties(rpc_url, tmp_path, k=16, faulty="challenger", fault_node=3)
    claim = parties.does(SUBMITTER, "submit")
    # REQUANTIZE, the 784 x 500 LINEAR in two tiles and their CONCAT, the 500 x 10 LINEAR, ANSWER
    assert claim["multiphase"] and claim["steps"] == 6 and claim["task_created"]
    game = parties.does(CHALLENGER, "challenge")
    assert game["game"] == 1 and not game["agree"]
    status = parties.status()
    assert (status["phase"], status["node"], status["interval"]) == ("graph", None, [0, 6])

    moved = parties.does(SUBMITTER, "respond")
    assert moved["kind"] == "bisect" and len(moved["hashes"]) == 5
    assert parties.does(CHALLENGER, "respond")["piece"] == [2, 3]
    opened = parties.does(SUBMITTER, "respond")
    assert opened["kind"] == "open_node" and opened["node"] == 3 and opened["vm_steps"] > 1
    status = parties.status()
    assert (status["phase"], status["node"], status["op"]) == ("vm", 3, "LINEAR")
    assert status["interval"] == [0, opened["vm_steps"]]
    while (defended := parties.does(SUBMITTER, "respond"))["state"] == "moved":
        parties.does(CHALLENGER, "respond")
    assert defended["state"] == "one_step_left"
    proved = parties.does(CHALLENGER, "step")
    assert proved["winner"] == "defender"


@pytest.mark.parametrize("phase", ["graph", "vm"])
def test_agents_resume_after_kill_9(rpc_url: str, tmp_path: Path, phase: str) -> None:
    """The faulty submitter's agent is killed (SIGKILL) in the graph phase or in the VM phase,
    then started again: it finds its game and plays on; the honest challenger wins."""
    parties = GraphParties(rpc_url, tmp_path, k=2, faulty="submitter", fault_node=2)
    parties.does(SUBMITTER, "submit")
    defender = parties.spawn(SUBMITTER, "defender")
    challenger = parties.spawn(CHALLENGER, "challenger")
    try:
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while time.monotonic() < deadline:
            view = parties.status() if parties.does(SUBMITTER, "status")["games"] else None
            if view and (view["phase"] == phase) and view["round"] >= (1 if phase == "graph" else 3):
                break
            time.sleep(0.05)
        defender.send_signal(signal.SIGKILL)
        defender.wait(timeout=COMMAND_TIMEOUT_S)
        killed_at = parties.status()
        assert killed_at["winner"] is None
        defender = parties.spawn(SUBMITTER, "defender")
        out, err = challenger.communicate(timeout=COMMAND_TIMEOUT_S)
        assert challenger.returncode == 0, err
        defender.communicate(timeout=COMMAND_TIMEOUT_S)
        assert defender.returncode == 0
    finally:
        for process in (defender, challenger):
            if process.poll() is None:
                process.kill()
                process.communicate()
    result = [json.loads(line) for line in out.splitlines()][-1]
    assert result["winner"] == "challenger" and not result["by_timeout"] and result["node"] == 2


@pytest.mark.slow
@pytest.mark.parametrize(("faulty", "winner"), [("challenger", "defender"), ("submitter", "challenger")])
def test_the_multiphase_demo(faulty: str, winner: str) -> None:
    result = subprocess.run(
        ["bash", "scripts/challenge_multiphase.sh"],
        cwd=REPO,
        env=dict(os.environ, PYTHON=sys.executable, FAULTY=faulty, FAULT_NODE="2"),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"winner: the {winner}; node 2 (LINEAR);" in result.stdout
    assert "wall time: " in result.stdout


def test_graph_refuses_what_cannot_be_a_graph_task(tmp_path: Path) -> None:
    digit = sample_digit(0)
    f32 = prover_here(
        "graph",
        "--model",
        str(REPO / "models" / "mlp_f32.ggml"),
        "--data",
        str(digit),
        "--basedir",
        str(tmp_path / "a"),
    )
    assert (
        f32.code == 1
        and f32.err.strip()
        == "error: f32 models are not multi-phase: numpy's f32 is not bit-exact with the guest's"
    )
    node = ("--fault-node", "9")
    beyond = prover_here(
        "graph", "--model", str(MODELS["mlp"]), "--data", str(digit), "--basedir", str(tmp_path / "b"), *node
    )
    assert beyond.code == 1 and "--fault-node 9: the model has nodes 1..6" in beyond.err
    assert not any((tmp_path / d / f).exists() for d in "ab" for f in ("graph.json", "graph.json.copy"))
