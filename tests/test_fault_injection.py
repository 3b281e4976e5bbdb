"""The honest side wins every game under injected faults (tests/fault_injection.py): a proxy that
holds, delays and drops transactions, agents of both sides killed with SIGKILL and started again,
the honest party's local files corrupted while its agent is down, liars that walk away. Twenty-four
games: eighteen single-phase (seventeen of the tiny run at k = 2 or 8, one of the MLP at k = 16) and
six multi-phase games of the MLP at k = 16 (the liar corrupts a random node; graph.json, its copy
and the commitment cache are corrupted); every kind of corruption of the honest party's files at
least once (the commitment cache's when drawn: tests/test_verified_files.py damages it each time).
benchmarks/bench_fault_injection.py plays 200 or more."""

import json
import random
from collections import Counter

from dispute_helpers import honest_run, tiny_run
from fault_injection import CORRUPTIONS, GRAPH_CORRUPTIONS, plans, play_games
from node_process import running_node

GAMES = 24
SEED = 20


def test_the_honest_side_wins_every_game_under_faults(tmp_path_factory, tmp_path):
    rng = random.Random(SEED)
    runs = {"tiny": tiny_run(tmp_path_factory), "mlp": honest_run("mlp", tmp_path_factory)}
    steps = {name: json.loads((run / "final.json").read_text())["steps"] for name, run in runs.items()}
    graph_runs = (honest_run("mlp", tmp_path_factory, phases="multi"),)
    chosen = plans(rng, runs, steps, GAMES, real_every=10, graph_runs=graph_runs, multi_every=4)
    assert Counter(plan.phases for plan in chosen) == {"single": 18, "multi": 6}
    with running_node() as node:
        reports, faults = play_games(node, tmp_path, chosen, rng, progress=lambda report: None)
    # play_games checks every game (the winner, the moves on chain against the logs, the bonds).
    assert [report.winner for report in reports] == [plan.honest for plan in chosen]
    assert sum(report.by_timeout for report in reports) == sum(plan.abandon for plan in chosen)
    corrupted = Counter(kind for report in reports for kind in report.corruptions)
    # The commitment cache exists only once an agent has loaded the run, so its kinds are drawn
    # only when an honest graph agent is killed after that: tests/test_verified_files.py damages it
    # on every draw; here every other kind is seen at least once.
    expected = set(CORRUPTIONS) - {kind for kind in GRAPH_CORRUPTIONS if kind.startswith("commitment cache")}
    assert expected <= set(corrupted), expected - set(corrupted)
    assert all(faults[fault] for fault in ("delay", "drop", "drop_reply")), faults
    assert sum(report.kills for report in reports) >= GAMES
