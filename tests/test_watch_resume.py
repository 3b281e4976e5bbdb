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
    assert not refused_moves(outcome)


def refused_moves(outcome) -> list[str]:
    """The watcher's error lines that say the contract refused one of its moves (a move made twice
    after a restart would be refused: not the other side's turn any more)."""
    return [
        line
        for log in outcome.logs
        for line in log.err_lines
        if re.search(r"\.(challenge|bisect|select|step|openNode|claimTimeout) reverted", line)
    ]


def _sending_in(phase: str):
    """A condition on the watcher's log: it has said it is sending a move of that phase."""
    return lambda log: any(line.get("phase") == phase for line in log.events("sending"))


def test_a_watcher_killed_in_each_phase_of_multiphase_games_resumes(rpc_url, tmp_path_factory, tmp_path):
    """Multi-phase games (tests/watch_scenario.py with graph=True): the watcher is killed with
    SIGKILL once it is sending a move of the graph phase, and again (the second run) once it is
    sending a move of the VM phase, and started again each time: both games are still won by a
    step proof, the wrong claim is challenged once, and the contract refuses none of its moves."""
    outcome = play(
        rpc_url,
        tmp_path_factory,
        tmp_path,
        ("--account", str(WATCHER)),
        window=KILL_WINDOW_S,
        clock=KILL_CLOCK_S,
        graph=True,
        kill_when=(_sending_in("graph"), _sending_in("vm")),
    )
    assert len(outcome.logs) == 3
    check_chain(rpc_url, outcome)
    assert not refused_moves(outcome)
    assert sum(len(log.events("challenge")) for log in outcome.logs) == 1
