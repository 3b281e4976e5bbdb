"""`prover watch` on the embedded chain (a `prover node` process): an honest watcher beats a wrong
claim and defends its own claim against a lying challenger, logs one JSON line per event, and its
metrics say so (tests/watch_scenario.py); a claim whose task the store lacks is reported."""

import pytest
from node_process import running_node
from watch_scenario import WATCHER, check_chain, play


@pytest.fixture(scope="module")
def rpc_url():
    with running_node() as url:
        yield url


def test_an_honest_watcher_beats_a_wrong_claim_and_defends_its_own(rpc_url, tmp_path_factory, tmp_path):
    outcome = play(rpc_url, tmp_path_factory, tmp_path, ("--account", str(WATCHER)))
    check_chain(rpc_url, outcome)
    (log,) = outcome.logs
    assert [(line["claim"], line["game"]) for line in log.events("challenge")] == [(2, 2)]
    verdicts = {line["claim"]: line["verdict"] for line in log.events("verdict")}
    assert verdicts == {1: "agree", 2: "disagree"}
    over = {line["game"]: (line["side"], line["won"]) for line in log.events("game_over")}
    assert over == {1: ("defender", True), 2: ("challenger", True)}
    moves = log.events("move")
    assert moves and {move["kind"] for move in moves} <= {"bisect", "select", "step"}
    assert [line["claim"] for line in log.events("finalized")] == [1]
    assert all("time" in line for line in log.lines)
    figures = dict(line.rsplit(" ", 1) for line in outcome.metrics.splitlines() if not line.startswith("#"))
    assert float(figures["prover_watch_claims_seen"]) == 2
    assert float(figures["prover_watch_games_won"]) == 2 and float(figures["prover_watch_games_lost"]) == 0
    assert float(figures["prover_watch_bonds_at_stake_wei"]) == 0
    assert float(figures["prover_watch_tightest_clock_seconds"]) == -1
