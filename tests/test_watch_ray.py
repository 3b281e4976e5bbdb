"""`prover watch --ray local`: the two-game scenario of tests/watch_scenario.py with the task
re-executed by a Ray actor on a local Ray instance, which keeps the trace and answers the games'
state hashes and one-step witnesses; also on a graph task (multi-phase games), whose actor keeps
the graph trace and the VM run of the node a game reaches, and builds the node's opening."""

import pytest
from node_process import running_node
from watch_scenario import WATCHER, check_chain, play

pytest.importorskip("ray", reason="ray is not installed (the optional extra `ray`, also in `dev`)")
pytestmark = pytest.mark.slow
# The challenge window: long enough for a Ray instance to start and its actor to run the task
# before claim 2's window closes, on a loaded machine (it took over 30 s beside another test).
RAY_WINDOW_S = 150


@pytest.mark.parametrize("graph", [False, True], ids=["single-phase", "multi-phase"])
def test_the_watcher_on_a_local_ray_instance(tmp_path_factory, tmp_path, graph):
    with running_node() as rpc:
        outcome = play(
            rpc,
            tmp_path_factory,
            tmp_path,
            ("--account", str(WATCHER), "--ray", "local"),
            window=RAY_WINDOW_S,
            graph=graph,
        )
        check_chain(rpc, outcome)
    (log,) = outcome.logs
    assert {line["claim"]: line["verdict"] for line in log.events("verdict")} == {1: "agree", 2: "disagree"}
