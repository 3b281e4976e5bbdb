"""The chain commands one by one over the JSON-RPC node (in this process, through the `prover`
entry point): `status` with claims, games, whose turn and clocks; `finalize` and `withdraw` of an
unchallenged claim, each idempotent; every kind of bad input (out-of-turn moves, missing base
directory files, unknown ids, bad options) as one error line, exit 1 and an unchanged chain; and
the --json output of every command (`prover node` included) through whole games, checked against
the chain."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from dispute_helpers import (
    CHALLENGER,
    COMMAND_TIMEOUT_S,
    DEPLOYER,
    MODELS,
    SUBMITTER,
    Match,
    Result,
    advance_time,
    honest_run,
    ok,
    prover_here,
)
from node_process import running_node

from prover.chain.connect import connect
from prover.game.agent import rounds_needed, split_points
from prover.model.data import sample_digit

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


def json_of(result: Result) -> dict:
    """The one JSON object a command printed with --json (and nothing else)."""
    (line,) = ok(result).out.splitlines()
    return json.loads(line)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


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
    account = connect(parties.rpc).eth.accounts[SUBMITTER]
    final = json_of(parties.submitter_does("finalize", "--json"))
    assert final["claim"] == 1 and final["status"] == "final" and not final["already"]
    assert final["submitter"] == account and final["credited"] == BOND
    assert connect(parties.rpc).eth.get_transaction_receipt(final["tx"])["gasUsed"] == final["gas"]
    assert "claim 1 is already final" in ok(parties.submitter_does("finalize")).out
    assert json_of(parties.submitter_does("finalize", "--json"))["already"]
    (claim,) = parties.status()["claims"]
    assert claim["status"] == "final"
    assert parties.status()["withdrawable"] == 0  # the deployer's: the bond is the submitter's
    deployer = connect(parties.rpc).eth.accounts[DEPLOYER]
    last = ok(parties.here("status", DEPLOYER, parties.work)).out.splitlines()[-1]
    assert last.startswith(f"{deployer} (the account of this command) can withdraw 0 wei; bonds are credited")
    assert "`prover finalize`" in last and "`prover withdraw`" in last
    assert ok(parties.submitter_does("withdraw")).out == f"withdrew {BOND} wei to {account}\n"
    assert ok(parties.submitter_does("withdraw")).out == f"nothing to withdraw for {account}\n"
    assert json_of(parties.submitter_does("withdraw", "--json")) == {"account": account, "amount": 0}
    # A final claim can no longer be challenged, even by a party whose run disagrees.
    refused = parties.challenger_does("challenge", "--fault-step", "5")
    assert_one_error_line(refused, "DisputeGame.challenge reverted: ClaimNotPending(claimId=1")


@pytest.mark.parametrize(
    ("command", "missing", "message"),
    [
        (
            ("submit",),
            ("golden.snapshot", "checkpoints"),
            "the golden image is lost: run `prover golden` again",
        ),
        (
            ("challenge",),
            ("final.json", "checkpoints"),
            "no run of the golden image; run `prover run --basedir",
        ),
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
    for name in missing or ():
        path = basedir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    block = connect(parties.rpc).eth.block_number
    assert_one_error_line(parties.here(command[0], CHALLENGER, basedir, *command[1:]), message)
    assert connect(parties.rpc).eth.block_number == block


def test_a_missing_deployment_is_named_before_the_node_is_reached(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on: a dead node
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    missing = tmp_path / "nothing.json"
    result = prover_here("respond", "--rpc", dead, "--deployment", str(missing), "--basedir", str(tmp_path))
    assert_one_error_line(
        result, f"{missing}: no such file; expected a deployment (run `prover deploy` first)"
    )


def test_lost_or_corrupted_files_are_derived_again_with_one_line_each(parties):
    """What can be derived again from what is still good is, before the command goes on, with a
    warning line each: golden.json from golden.snapshot, golden.snapshot from the first checkpoint,
    a checkpoint from the one before it, final.json from the checkpoints."""
    basedir = parties.challenger
    originals = {
        name: (basedir / name).read_bytes() for name in ("golden.json", "golden.snapshot", "final.json")
    }
    (basedir / "golden.json").unlink()
    (basedir / "final.json").write_text("{}")
    header = basedir / "checkpoints" / "checkpoint-000002.snap"
    data = bytearray(header.read_bytes())
    data[12 + 98 + 4 * 16] ^= 0x80  # a bit of register $s0 in the state header
    header.write_bytes(bytes(data))
    ok(parties.submitter_does("submit"))
    result = ok(parties.challenger_does("challenge", "--fault-step", "5"))
    warnings = result.err.splitlines()
    assert len(warnings) == 3 and all(line.startswith("warning: ") for line in warnings), result.err
    assert "golden.json: no such file" in warnings[0] and "written again from" in warnings[0]
    assert "checkpoint-000002.snap: its state is not the one the trace index recorded" in warnings[1]
    assert "final.json: not the run's final state" in warnings[2]
    (basedir / "golden.snapshot").unlink()
    ok(parties.challenger_does("challenge"))
    # A flipped register: the snapshot still loads (its pages match its memRoot), but it is not S0.
    snapshot = bytearray((basedir / "golden.snapshot").read_bytes())
    snapshot[12 + 98 + 4 * 26 + 3] ^= 1
    (basedir / "golden.snapshot").write_bytes(bytes(snapshot))
    result = ok(parties.challenger_does("challenge"))
    assert "golden.snapshot: its state is not golden.json's S0; restored from" in result.err
    for name, data in originals.items():
        assert (basedir / name).read_bytes() == data, name


def test_a_damaged_deployment_is_refused_before_any_move(parties):
    """deployment.json is checked against the chain before a move depends on it: the game's and
    the verifier's code, the game's parameters, the chain id and the block event queries start
    at (no event of the game before it). (Each damage below would otherwise misdirect moves or hide
    the opponent's.)"""
    ok(parties.submitter_does("submit"))
    good = json.loads(parties.deployment.read_text())
    after = connect(parties.rpc).eth.block_number  # the task's and the claim's events lie before it
    damages = [
        ({"dispute_game": good["mips"]}, "is not DisputeGame (not the committed build's code)"),
        ({"mips": good["dispute_game"]}, "is not MIPS (not the committed build's code)"),
        ({"k": 2}, "does not have the recorded k 2 (chain: 16)"),
        ({"challenge_bond": 1}, "does not have the recorded challenge_bond 1 (chain:"),
        ({"chain_id": 5}, "made on chain 5, but the node at"),
        ({"block": after}, f"the DisputeGame has events before the recorded block {after}"),
        ({"block": 10**9}, "block 1000000000 is not a block of this chain"),
    ]
    block = connect(parties.rpc).eth.block_number
    for change, message in damages:
        parties.deployment.write_text(json.dumps({**good, **change}))
        assert_one_error_line(parties.challenger_does("challenge", "--fault-step", "5"), message)
    del good["mips"]
    parties.deployment.write_text(json.dumps(good))
    missing = "not a deployment of `prover deploy` (KeyError('mips'))"
    assert_one_error_line(parties.submitter_does("status"), missing)
    assert connect(parties.rpc).eth.block_number == block


def test_a_damaged_claim_record_gives_way_to_the_chain(parties):
    """claim.json names the claim `finalize` acts on: a claim id that is not this sender's on
    chain is replaced by the chain's record, with one warning line."""
    ok(parties.submitter_does("submit"))
    ok(parties.challenger_does("submit"))  # claim 2, the challenger's: not the submitter's to finalize
    advance_time(parties.rpc, WINDOW_S + 1)
    record = parties.submitter / "claim.json"
    recorded = json.loads(record.read_text())
    assert recorded["claim_id"] == 1
    record.write_text(json.dumps({**recorded, "claim_id": 2}))
    result = ok(parties.submitter_does("finalize", "--json"))
    assert json.loads(result.out)["claim"] == 1
    (warning,) = result.err.splitlines()
    assert warning.startswith("warning: ") and "claim.json: claim 2 is not" in warning
    assert "using the chain's record" in warning


def test_an_unfunded_key_is_one_error_line(rpc_url, tmp_path):
    key = "0x" + "11" * 32  # an account the node never funded
    result = prover_here("deploy", "--rpc", rpc_url, "--basedir", str(tmp_path), "--key", key)
    assert_one_error_line(result, "")
    assert "insufficient funds" in result.err or "cannot afford" in result.err
    assert not (tmp_path / "deployment.json").exists()


def test_a_claim_on_another_task_is_not_challenged_by_mistake(parties):
    """A challenger whose run is of another input (MNIST test image 1) would lose any game against
    the claim: refused, unless asked for as a fault injection."""
    ok(parties.submitter_does("submit"))
    digit = sample_digit(1)
    ok(
        prover_here(
            "run",
            "--model",
            str(MODELS["mlp"]),
            "--data",
            str(digit),
            "--basedir",
            str(parties.challenger),
            "--phases",
            "single",
        )
    )
    block = connect(parties.rpc).eth.block_number
    refused = parties.challenger_does("challenge", "--claim", "1")
    assert_one_error_line(refused, "claim 1 is on task 1, not on the task of our run")
    assert connect(parties.rpc).eth.block_number == block
    assert (
        "opened game 1 against claim 1"
        in ok(parties.challenger_does("challenge", "--claim", "1", "--other-task", "--fault-step", "5")).out
    )


def test_a_game_step_by_step_in_json(parties, tmp_path):
    """deploy, submit, challenge, respond, step, status and withdraw with --json: one object each,
    whose figures are the chain's (gas of the receipts, the game's record)."""
    w3 = connect(parties.rpc)
    elsewhere = ("--deployment", str(tmp_path / "another.json"))
    fresh = json_of(prover_here("deploy", "--rpc", parties.rpc, *elsewhere, "--json"))
    assert not fresh["already"] and fresh["k"] == 16 and fresh["clock_budget"] == 3600
    assert fresh["submit_bond"] == fresh["challenge_bond"] == BOND and w3.eth.get_code(fresh["dispute_game"])
    again = json_of(parties.here("deploy", DEPLOYER, parties.work, "--window", str(WINDOW_S), "--json"))
    assert again["already"] and again["challenge_window"] == WINDOW_S
    assert again["dispute_game"] == parties.status()["dispute_game"] != fresh["dispute_game"]

    claim = json_of(parties.submitter_does("submit", "--json"))
    assert (claim["claim"], claim["task"], claim["steps"]) == (1, 1, parties.steps)
    assert claim["task_created"] and not claim["already"] and claim["status"] == "pending"
    assert w3.eth.get_transaction_receipt(claim["tx"])["gasUsed"] == claim["gas"]
    resubmitted = json_of(parties.submitter_does("submit", "--json"))
    assert resubmitted["already"] and not resubmitted["task_created"] and resubmitted["tx"] == claim["tx"]

    fault = parties.steps // 3
    game = json_of(parties.challenger_does("challenge", "--fault-step", str(fault), "--json"))
    assert game["game"] == 1 and not game["agree"] and not game["already"] and game["bond"] == BOND
    assert game["claim_final_state"] == claim["final_state"] != game["our_final_state"]
    assert json_of(parties.challenger_does("challenge", "--json"))["already"]

    interval, bisect_gas = [0, parties.steps], 0
    while (defended := json_of(parties.submitter_does("respond", "--json")))["state"] == "moved":
        assert defended["kind"] == "bisect" and defended["interval"] == interval
        assert len(defended["hashes"]) == len(split_points(*interval, 16)) - 2  # the inner points
        bisect_gas += defended["gas"]
        selected = json_of(parties.challenger_does("respond", "--json"))
        assert selected["kind"] == "select" and selected["side"] == "challenger"
        interval = selected["piece"]
    assert defended["state"] == "one_step_left" and defended["interval"] == [fault - 1, fault]
    proved = json_of(parties.challenger_does("step", "--json"))
    assert proved["kind"] == "step" and proved["step"] == fault - 1 and proved["winner"] == "defender"
    assert w3.eth.get_transaction_receipt(proved["tx"])["gasUsed"] == proved["gas"]
    over = json_of(parties.submitter_does("step", "--json"))
    assert over == {"game": 1, "state": "over", "winner": "defender", "by_timeout": False}
    assert json_of(parties.challenger_does("respond", "--json")) == over

    (status,) = json_of(parties.here("status", DEPLOYER, parties.work, "--json"))["games"]
    assert status["gas"]["defender"] == bisect_gas and status["interval"] == [fault - 1, fault]
    # The challenger's bond; the submitter's own comes back once its claim is final.
    paid = json_of(parties.submitter_does("withdraw", "--json"))
    assert paid == {"account": w3.eth.accounts[SUBMITTER], "amount": BOND}


def test_dispute_in_json_is_one_object_per_line(parties):
    """An agreeing challenger's agent prints only its result; a disputing one and the defender's
    agent (in its own process, playing at the same time) a line per move and the game's status."""
    ok(parties.submitter_does("submit"))
    agreed = json_of(parties.challenger_does("challenge", "--json"))
    assert (
        agreed["agree"]
        and agreed["game"] is None
        and agreed["our_final_state"] == agreed["claim_final_state"]
    )
    assert json_of(parties.challenger_does("dispute", "--side", "challenger", "--json")) == {
        "event": "result",
        **agreed,
    }

    defender = parties.spawn("dispute", SUBMITTER, parties.submitter, "--side", "defender", "--json")
    fault = ("--fault-step", str(parties.steps // 3))
    challenger = json_lines(
        ok(parties.challenger_does("dispute", "--side", "challenger", *fault, "--json")).out
    )
    out, err = defender.communicate(timeout=COMMAND_TIMEOUT_S)
    assert defender.returncode == 0, err
    defender_lines = [line for line in json_lines(out) if line["event"] != "waiting"]

    assert [line["event"] for line in challenger[:2]] == ["challenge", "playing"]
    assert challenger[0]["game"] == 1 and not challenger[0]["already"]
    assert defender_lines[0] == {"event": "playing", "game": 1, "side": "defender"}
    moves = {
        "defender": [line for line in defender_lines if line["event"] == "move"],
        "challenger": [line for line in challenger if line["event"] == "move"],
    }
    kinds = [move["kind"] for side in moves.values() for move in side]
    result = challenger[-1]
    # Rounds: as many as the disagreement's place needs, at most rounds_needed (k = 16).
    assert kinds.count("bisect") == kinds.count("select") == result["round"] and kinds.count("step") == 1
    assert result["round"] <= rounds_needed(parties.steps, 16)
    game_fields = {name: value for name, value in result.items() if name not in ("account", "withdrawable")}
    assert result["event"] == "result" and defender_lines[-1] == {**game_fields, **own(defender_lines[-1])}
    assert result["winner"] == "defender"
    # What each can withdraw: the defender won the challenger's bond.
    assert (result["withdrawable"], defender_lines[-1]["withdrawable"]) == (0, 10**18)
    assert result["gas"]["defender"] == sum(move["gas"] for move in moves["defender"])
    # Each move is announced (`sending`) before its transaction goes out, then reported; both
    # sides may send the last step, and the second one finds the game over.
    sent = {}
    for lines, side in ((challenger, "challenger"), (defender_lines, "defender")):
        sent[side] = [move_of(line) for line in lines if line["event"] == "sending"]
        made = [move_of(move) for move in moves[side]]
        assert sent[side][: len(made)] == made and all(move[0] == "step" for move in sent[side][len(made) :])
    assert len(challenger) == 3 + len(sent["challenger"]) + len(moves["challenger"])
    assert len(defender_lines) == 2 + len(sent["defender"]) + len(moves["defender"])


def move_of(line: dict) -> tuple:
    return line["kind"], line["interval"]


def own(result: dict) -> dict:
    return {name: result[name] for name in ("account", "withdrawable")}


def test_node_in_json_names_its_url_chain_and_accounts():
    node = subprocess.Popen(
        [sys.executable, "-m", "prover.cli", "node", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(node.stdout.readline())
        w3 = connect(ready["rpc"])
        assert w3.eth.chain_id == ready["chain_id"] and w3.eth.accounts == ready["accounts"]
    finally:
        node.kill()
        node.communicate(timeout=COMMAND_TIMEOUT_S)
