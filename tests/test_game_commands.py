"""The chain commands one by one over the JSON-RPC node (in this process, through the `prover`
entry point): `status` with claims, games, whose turn and clocks; `finalize` and `withdraw` of an
unchallenged claim, each idempotent; and every kind of bad input (out-of-turn moves, missing base
directory files, unknown ids, bad options) as one error line, exit 1 and an unchanged chain."""

import json
import shutil
from pathlib import Path

import pytest
from dispute_helpers import (
    CHALLENGER,
    DEPLOYER,
    SUBMITTER,
    Match,
    Result,
    advance_time,
    honest_run,
    ok,
    prover_here,
)
from node_process import running_node

from prover.node import connect

BOND = 10**18
WINDOW_S = 600
CLOCK_S = 3600


@pytest.fixture(scope="module")
def rpc_url():
    with running_node() as url:
        yield url


class Parties(Match):
    """A fresh deployment (k = 16) and two parties, whose commands run in this process."""

    def __init__(self, rpc: str, run: Path, work: Path) -> None:
        super().__init__(rpc, run, work, "--window", str(WINDOW_S), "--clock", str(CLOCK_S))

    def submitter_does(self, name: str, *args: str) -> Result:
        return self.here(name, SUBMITTER, self.submitter, *args)

    def challenger_does(self, name: str, *args: str) -> Result:
        return self.here(name, CHALLENGER, self.challenger, *args)


@pytest.fixture
def parties(rpc_url, tmp_path_factory, tmp_path) -> Parties:
    return Parties(rpc_url, honest_run("mlp", tmp_path_factory), tmp_path)


def assert_one_error_line(result: Result, message: str) -> None:
    assert result.code == 1
    (line,) = result.err.splitlines()
    assert line.startswith("error: ") and message in line, line


def test_status_follows_the_game_and_moves_out_of_turn_are_refused(parties):
    ok(parties.submitter_does("submit"))
    ok(parties.challenger_does("challenge", "--fault-step", str(parties.steps // 3)))
    report = parties.status()
    (claim,) = report["claims"]
    assert claim["claim"] == 1 and claim["status"] == "pending" and claim["open_games"] == 1
    assert 0 < claim["window_seconds_left"] <= WINDOW_S
    (game,) = report["games"]
    assert game["interval"] == [0, parties.steps] and game["round"] == 1 and game["turn"] == "defender"
    assert game["rounds_at_most"] == 6 and game["winner"] is None
    assert game["clocks"]["challenger"] == CLOCK_S and 0 < game["clocks"]["defender"] <= CLOCK_S
    text = ok(parties.here("status", DEPLOYER, parties.work)).out
    assert f"[0, {parties.steps}] ({parties.steps} steps), round 1 of at most 6, defender to move" in text

    block = connect(parties.rpc).eth.block_number
    waiting = parties.challenger_does("respond")
    assert_one_error_line(
        waiting, f"game 1: nothing to do for the challenger: the defender is to move on [0, {parties.steps}]"
    )
    assert_one_error_line(parties.challenger_does("step"), "game 1 is not down to one step")
    assert_one_error_line(parties.challenger_does("respond", "--game", "9"), "no game 9 on the dispute game")
    assert connect(parties.rpc).eth.block_number == block

    assert "posted 15 hashes" in ok(parties.submitter_does("respond")).out
    (game,) = parties.status("--game", "1")["games"]
    assert game["turn"] == "challenger" and game["round"] == 1
    assert_one_error_line(
        parties.submitter_does("respond"), "nothing to do for the defender: the challenger is to move"
    )
    assert "selected piece 5" in ok(parties.challenger_does("respond")).out
    (game,) = parties.status("--game", "1")["games"]
    assert game["turn"] == "defender" and game["round"] == 2
    assert game["gas"]["defender"] > 0 and game["gas"]["challenger"] > 0


def test_an_unchallenged_claim_finalizes_once_and_its_bond_is_withdrawn_once(parties):
    ok(parties.submitter_does("submit"))
    block = connect(parties.rpc).eth.block_number
    assert_one_error_line(parties.submitter_does("finalize"), "claim 1: its challenge window is open until")
    assert connect(parties.rpc).eth.block_number == block
    advance_time(parties.rpc, WINDOW_S + 1)
    assert "claim 1 is final" in ok(parties.submitter_does("finalize")).out
    assert "claim 1 is already final" in ok(parties.submitter_does("finalize")).out
    (claim,) = parties.status()["claims"]
    assert claim["status"] == "final"
    assert parties.status()["withdrawable"] == 0  # the deployer's: the bond is the submitter's
    account = connect(parties.rpc).eth.accounts[SUBMITTER]
    assert ok(parties.submitter_does("withdraw")).out == f"withdrew {BOND} wei to {account}\n"
    assert ok(parties.submitter_does("withdraw")).out == f"nothing to withdraw for {account}\n"
    # A final claim can no longer be challenged, even by a party whose run disagrees.
    refused = parties.challenger_does("challenge", "--fault-step", "5")
    assert_one_error_line(refused, "DisputeGame.challenge reverted: ClaimNotPending(claimId=1")


@pytest.mark.parametrize(
    ("command", "missing", "message"),
    [
        (
            ("submit",),
            "golden.json",
            "golden.json: no such file; expected a golden image (run `prover golden` first)",
        ),
        (
            ("challenge",),
            "final.json",
            "final.json: no such file; expected a finished run (run `prover run` first)",
        ),
        (("challenge",), "checkpoints", "run `prover run --basedir"),
        (("submit", "--fault-step", "999999999"), None, "--fault-step 999999999: the run in"),
        (
            ("respond", "--deployment", "/nonexistent/d.json"),
            None,
            "expected a deployment (run `prover deploy` first)",
        ),
        (("status", "--account", "99"), None, "--account 99: the node at"),
        (("withdraw", "--key", "0x12"), None, "--key: not a 32-byte private key in hex"),
        (("finalize", "--claim", "99"), None, "no claim 99 on the dispute game"),
        (("respond",), None, "has no game on the dispute game"),
        (
            ("deploy", "--k", "2", "--window", str(WINDOW_S)),
            None,
            "the deployment there has k=16; use another",
        ),
    ],
)
def test_bad_input_is_one_error_line_and_changes_nothing(parties, command, missing, message):
    ok(parties.submitter_does("submit"))
    basedir = parties.challenger
    if missing:
        path = basedir / missing
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    block = connect(parties.rpc).eth.block_number
    assert_one_error_line(parties.here(command[0], CHALLENGER, basedir, *command[1:]), message)
    assert connect(parties.rpc).eth.block_number == block


def test_an_unfunded_key_is_one_error_line(rpc_url, tmp_path):
    key = "0x" + "11" * 32  # an account the node never funded
    result = prover_here("deploy", "--rpc", rpc_url, "--basedir", str(tmp_path), "--key", key)
    assert_one_error_line(result, "")
    assert "insufficient funds" in result.err or "cannot afford" in result.err
    assert not (tmp_path / "deployment.json").exists()


def test_a_claim_on_another_task_is_not_challenged_by_mistake(parties):
    """A challenger whose run is of another input (its golden.json names other roots) would lose
    any game against the claim: refused, unless asked for as a fault injection."""
    ok(parties.submitter_does("submit"))
    golden = parties.challenger / "golden.json"
    record = json.loads(golden.read_text())
    record["input_root"] = "0x" + "ab" * 32
    golden.write_text(json.dumps(record))
    block = connect(parties.rpc).eth.block_number
    refused = parties.challenger_does("challenge", "--claim", "1")
    assert_one_error_line(refused, "claim 1 is on task 1, not on the task of our run")
    assert connect(parties.rpc).eth.block_number == block
    assert (
        "opened game 1 against claim 1"
        in ok(parties.challenger_does("challenge", "--claim", "1", "--other-task", "--fault-step", "5")).out
    )
