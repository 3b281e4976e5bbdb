"""Agents on a quiet chain and agents started again (issue 20), on the JSON-RPC node with the tiny
run (k = 2, short clocks and windows): a timeout claimed by the wall clock with no block to say
the clock ran out, an agent restarted after its game ended, and a defender whose claim nobody
challenges. Nobody but the agents sends a transaction or mines a block here."""

import json

import pytest
from dispute_helpers import CHALLENGER, COMMAND_TIMEOUT_S, SUBMITTER, Match, ok, tiny_run
from node_process import running_node

from prover.chain.connect import connect
from prover.chain.contracts import DisputeGame

BOND = 10**18
CLOCK_S = 8


@pytest.fixture(scope="module")
def rpc_url():
    with running_node() as url:
        yield url


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def moves(lines: list[dict]) -> list[str]:
    return [line["kind"] for line in lines if line["event"] == "move"]


def agent_result(process) -> list[dict]:
    out, err = process.communicate(timeout=COMMAND_TIMEOUT_S)
    assert process.returncode == 0, out + err
    return json_lines(out)


def test_a_timeout_is_claimed_by_the_wall_clock(rpc_url, tmp_path_factory, tmp_path):
    """The faulty challenger opens a game and walks away. The honest defender's agent bisects,
    then claims the win itself once the challenger's clock has run out by the wall clock."""
    game = Match(rpc_url, tiny_run(tmp_path_factory), tmp_path, "--k", "2", "--clock", str(CLOCK_S))
    ok(game.party("submit", SUBMITTER, game.submitter))
    defender = game.spawn("dispute", SUBMITTER, game.submitter, "--side", "defender", "--json")
    assert json.loads(defender.stdout.readline())["event"] == "waiting"
    ok(game.here("challenge", CHALLENGER, game.challenger, "--fault-step", "1000"))
    lines = agent_result(defender)
    assert moves(lines) == ["bisect", "timeout"]
    result = lines[-1]
    assert result["winner"] == "defender" and result["by_timeout"]
    assert result["withdrawable"] == BOND  # the challenger's bond


def test_an_agent_restarted_after_its_game_ended_reports_it(rpc_url, tmp_path_factory, tmp_path):
    """The faulty submitter's agent is down for the whole game: the honest challenger's agent
    claims the timeout. Started again afterwards, either agent reports the game (winner, what it
    can withdraw) and exits 0 instead of waiting."""
    game = Match(rpc_url, tiny_run(tmp_path_factory), tmp_path, "--k", "2", "--clock", str(CLOCK_S))
    ok(game.party("submit", SUBMITTER, game.submitter, "--fault-step", "1000"))
    lines = json_lines(
        ok(game.party("dispute", CHALLENGER, game.challenger, "--side", "challenger", "--json")).out
    )
    assert moves(lines) == ["timeout"] and lines[-1]["winner"] == "challenger"
    again = json_lines(
        ok(game.party("dispute", SUBMITTER, game.submitter, "--side", "defender", "--json")).out
    )
    assert [line["event"] for line in again] == ["result"]
    assert again[0]["winner"] == "challenger" and again[0]["by_timeout"] and again[0]["withdrawable"] == 0
    again = json_lines(
        ok(game.party("dispute", CHALLENGER, game.challenger, "--side", "challenger", "--json")).out
    )
    assert [line["event"] for line in again] == ["challenge", "playing", "result"]
    assert again[0]["already"] and again[-1]["withdrawable"] == 2 * BOND


def test_a_defender_with_an_unchallenged_claim_settles_it(rpc_url, tmp_path_factory, tmp_path):
    """Nobody challenges: once the window is over by the wall clock, the defender's agent makes the
    claim final and withdraws its bond itself; started again, it says so and exits."""
    game = Match(rpc_url, tiny_run(tmp_path_factory), tmp_path, "--k", "2", "--window", "6")
    ok(game.party("submit", SUBMITTER, game.submitter))
    lines = json_lines(
        ok(game.party("dispute", SUBMITTER, game.submitter, "--side", "defender", "--json")).out
    )
    result = lines[-1]
    assert result["event"] == "result" and [claim["status"] for claim in result["claims"]] == ["final"]
    assert result["withdrawable"] == 0
    w3 = connect(game.rpc)
    dispute_game = DisputeGame(w3, json.loads(game.deployment.read_text())["dispute_game"])
    assert w3.eth.get_balance(dispute_game.address) == 0
    again = json_lines(
        ok(game.party("dispute", SUBMITTER, game.submitter, "--side", "defender", "--json")).out
    )
    assert [line["event"] for line in again] == ["result"] and again[0]["claims"][0]["status"] == "final"
