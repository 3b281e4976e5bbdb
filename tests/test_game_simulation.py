"""Randomized adversarial games (tests/game_simulation.py): whatever the strategies, at k = 2 and
16 with one to three challengers per claim, the honest side wins every game it plays, no honest
call reverts, and every bond ends where docs/dispute-game.md says. benchmarks/bench_simulation.py
plays the same scenarios by the thousand."""

import pytest
from contract_programs import run_loop_program
from game_simulation import Strategy, simulate_many

SCENARIOS = 40


@pytest.fixture(scope="module")
def run():
    return run_loop_program(iterations=12)


def test_the_honest_side_wins_whatever_the_strategies(run):
    outcomes = simulate_many(run, range(SCENARIOS))
    games = sum(len(outcome.games) for outcome in outcomes)
    played = {strategy for outcome in outcomes for strategy in outcome.strategies}
    # The scenarios cover every strategy, both kinds of claim and both arities.
    assert played == {strategy.value for strategy in Strategy}
    assert {outcome.claim_true for outcome in outcomes} == {True, False}
    assert {outcome.k for outcome in outcomes} == {2, 16}
    assert games >= SCENARIOS and sum(outcome.honest_games for outcome in outcomes) >= SCENARIOS
    assert all(outcome.late_challenge_refused for outcome in outcomes)
    # Every true claim became its task's one result; a conflicting claim after it was refused.
    assert all(outcome.conflicting_claim_refused == outcome.claim_true for outcome in outcomes)
    assert sum(outcome.refused for outcome in outcomes) > 0  # the liars' bad calls were tried
