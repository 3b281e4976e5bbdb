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


def test_an_honest_watcher_plays_multiphase_claims_in_both_roles(rpc_url, tmp_path_factory, tmp_path):
    """The same scenario on a graph task (the default game of an int8 model): the watcher refutes
    the wrong multi-phase claim and defends its own against a lying challenger, each game through
    the graph phase, the node's opening and the VM game on that node."""
    outcome = play(rpc_url, tmp_path_factory, tmp_path, ("--account", str(WATCHER)), graph=True)
    check_chain(rpc_url, outcome)
    (log,) = outcome.logs
    assert [(line["claim"], line["game"]) for line in log.events("challenge")] == [(2, 2)]
    verdicts = {line["claim"]: (line["verdict"], line["note"].split()[-1]) for line in log.events("verdict")}
    assert verdicts == {1: ("agree", "nodes"), 2: ("disagree", "nodes")}
    moves = [(line["game"], line["phase"], line["kind"]) for line in log.events("move")]
    # Game 1: the watcher defends (bisects in the graph phase, opens node 2, bisects in the VM);
    # game 2: it challenges (selects in the graph phase; the liar opens; it selects, then proves).
    assert {(1, "graph", "bisect"), (1, "graph", "open_node"), (1, "vm", "bisect")} <= set(moves)
    assert {(2, "graph", "select"), (2, "vm", "select")} <= set(moves)
    over = {line["game"]: (line["side"], line["won"]) for line in log.events("game_over")}
    assert over == {1: ("defender", True), 2: ("challenger", True)}
    assert [line["claim"] for line in log.events("finalized")] == [1]
