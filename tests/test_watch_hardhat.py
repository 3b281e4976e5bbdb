"""`prover watch` on a hardhat node with interval mining, signing with an explicit private key:
the two-game scenario of tests/watch_scenario.py."""

import pytest
from hardhat_node import KEYS, hardhat_node, needs_hardhat
from watch_scenario import WATCHER, check_chain, play

pytestmark = [needs_hardhat, pytest.mark.slow]


def test_the_watcher_on_hardhat_with_a_key(tmp_path_factory, tmp_path):
    with hardhat_node(interval_ms=500) as rpc:
        outcome = play(rpc, tmp_path_factory, tmp_path, ("--key", KEYS[WATCHER]))
        check_chain(rpc, outcome)
    (log,) = outcome.logs
    assert [line["claim"] for line in log.events("challenge")] == [2]
