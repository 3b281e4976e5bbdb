"""`prover watch` killed with SIGKILL at random moments (8 times, 0.2 to 8 s after each start: while
it re-executes the task, between a move's transaction and its log line, while it settles) and
started again each time, through the two-game scenario of tests/watch_scenario.py: no move is lost
(both games are won by a step proof, never by a timeout against the watcher) and none is made
twice (one challenge of the wrong claim; no move of the watcher refused by the contract)."""

import random
import re

import pytest
from node_process import running_node
from watch_scenario import WATCHER, check_chain, play

pytestmark = pytest.mark.slow
# The challenge window: long enough for the watcher to judge and challenge claim 2 between kills
# (each start costs its imports and a worker's).
KILL_WINDOW_S = 150
KILL_CLOCK_S = 240  # the watcher's clock runs while it is down: 8 kills and starts of a few seconds


@pytest.fixture(scope="module")
def rpc_url():
    with running_node() as url:
        yield url


@pytest.mark.parametrize("seed", [1])
def test_a_watcher_killed_at_random_points_resumes(rpc_url, tmp_path_factory, tmp_path, seed):
    outcome = play(
        rpc_url,
        tmp_path_factory,
        tmp_path,
        ("--account", str(WATCHER)),
        random.Random(seed),
        KILL_WINDOW_S,
        KILL_CLOCK_S,
    )
    assert len(outcome.logs) > 1, "the watcher was never killed: the scenario ended first"
    check_chain(rpc_url, outcome)
    refused = [
        line
        for log in outcome.logs
        for line in log.err_lines
        if re.search(r"\.(challenge|bisect|select|step|claimTimeout) reverted", line)
    ]
    assert not refused
