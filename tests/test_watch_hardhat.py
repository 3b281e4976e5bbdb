"""`prover watch` and its transactions on a hardhat node (interval mining, or automine), signing
with explicit private keys: the two-game scenario of tests/watch_scenario.py; the watcher riding
out a node that goes away mid-game and comes back; two processes sending with one key (nonce
races); reverted transactions reported with their reason, nothing advanced."""

import subprocess
import sys
import threading
import time

import pytest
from dispute_helpers import REPO
from hardhat_node import KEYS, hardhat_node, needs_hardhat
from tcp_proxy import TcpProxy
from watch_helpers import dispute_game, wait_until
from watch_scenario import WATCHER, check_chain, play

from prover.chain.contracts import FINALIZE_GAS, DisputeGame, MipsVerifier
from prover.errors import ProverError
from prover.game.party import connect_party

pytestmark = [needs_hardhat, pytest.mark.slow]
OUTAGE_S = 8
# The outage test's window and clocks: the watcher must judge and challenge within the window, and
# its clock runs through the outage (the machine is shared: generous).
OUTAGE_WINDOW_S = 120
OUTAGE_CLOCK_S = 180


def test_the_watcher_on_hardhat_with_a_key(tmp_path_factory, tmp_path):
    with hardhat_node(interval_ms=500) as rpc:
        outcome = play(rpc, tmp_path_factory, tmp_path, ("--key", KEYS[WATCHER]))
        check_chain(rpc, outcome)
    (log,) = outcome.logs
    assert [line["claim"] for line in log.events("challenge")] == [2]


def test_the_watcher_rides_out_a_node_that_goes_away_and_comes_back(tmp_path_factory, tmp_path):
    """The watcher reaches the node through a proxy, which is cut for OUTAGE_S seconds once the
    watcher's game against the wrong claim is under way: it says so once, asks again with a
    growing pause, says when the node is back, and wins both games by a step proof as usual."""
    with hardhat_node(interval_ms=500) as rpc:
        proxy = TcpProxy(int(rpc.rsplit(":", 1)[1]))
        deployment = tmp_path / "deployment.json"
        cut = threading.Event()

        def cut_mid_game() -> None:
            wait_until(deployment.exists, 300, "the deployment")
            game = dispute_game(rpc, deployment)
            wait_until(lambda: game.call("gameCount") >= 2, 300, "the watcher's challenge")
            wait_until(lambda: game.game(2).left > 0 or game.game(2).posted, 300, "a move in game 2")
            proxy.cut()
            cut.set()
            time.sleep(OUTAGE_S)
            proxy.restore()

        outage = threading.Thread(target=cut_mid_game, daemon=True)
        outage.start()
        outcome = play(
            rpc,
            tmp_path_factory,
            tmp_path,
            ("--key", KEYS[WATCHER]),
            window=OUTAGE_WINDOW_S,
            clock=OUTAGE_CLOCK_S,
            watcher_rpc=proxy.url,
        )
        outage.join(timeout=60)
        assert cut.is_set()
        check_chain(rpc, outcome)
    (log,) = outcome.logs
    assert len([line for line in log.err_lines if "does not answer" in line]) == 1, log.err_lines
    (back,) = log.events("reconnected")
    assert back["seconds"] >= OUTAGE_S - 1


SENDER = r"""
import sys
from prover.chain.contracts import DisputeGame
from prover.game.party import connect_party
from pathlib import Path
rpc, address, key, tag, count = sys.argv[1:]
party = connect_party(rpc, Path("."), 0, key, None)
game = DisputeGame(party.w3, address)
for i in range(int(count)):
    root = bytes([int(tag), i]) + bytes(30)
    print(game.create_task(root, root, root, sender=party.sender), flush=True)
"""


@pytest.mark.parametrize("interval_ms", [0, 200])
def test_two_processes_sending_with_one_key_lose_no_transaction(interval_ms):
    """Processes signing with one key take the same nonce now and then (hardhat refuses the second
    transaction: "Nonce too low" when automining, "Replacement transaction underpriced" with
    interval mining): each such transaction is signed again with a fresh nonce, none is lost."""
    processes, count = 3, 8
    with hardhat_node(interval_ms=interval_ms) as rpc:
        deployer = connect_party(rpc, REPO, 0, KEYS[0], None)
        mips = MipsVerifier.deploy(deployer.w3, sender=deployer.sender)
        game = DisputeGame.deploy(deployer.w3, mips.address, 2, 10, 10, 60, 60, sender=deployer.sender)
        senders = [
            subprocess.Popen(
                [sys.executable, "-c", SENDER, rpc, game.address, KEYS[1], str(tag), str(count)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            for tag in range(1, processes + 1)
        ]
        results = [sender.communicate(timeout=300) for sender in senders]
        for sender, (_, err) in zip(senders, results, strict=True):
            assert sender.returncode == 0, err
        created = sorted(int(task) for out, _ in results for task in out.split())
        assert created == list(range(1, processes * count + 1))
        assert game.call("taskCount") == processes * count


def test_a_reverted_transaction_is_reported_with_its_reason(tmp_path):
    """A move the contract refuses is one ProverError with the decoded custom error, whether the
    node's estimate refuses it (nothing is sent) or it is mined and reverts (sent with a gas limit,
    no estimate: the call is replayed on its block's parent state for the reason); the chain's
    state is not advanced."""
    with hardhat_node(interval_ms=200) as rpc:
        party = connect_party(rpc, tmp_path, 0, KEYS[1], None)
        w3 = party.w3
        mips = MipsVerifier.deploy(w3, sender=party.sender)
        game = DisputeGame.deploy(w3, mips.address, 2, 10, 10, 60, 600, sender=party.sender)
        root = bytes(32)
        task = game.create_task(root, root, root, sender=party.sender)
        nonce = w3.eth.get_transaction_count(party.sender)
        with pytest.raises(ProverError, match=r"^DisputeGame\.createTask reverted: TaskExists\(taskId=1\)$"):
            game.create_task(root, root, root, sender=party.sender)
        assert w3.eth.get_transaction_count(party.sender) == nonce  # refused by the estimate: not sent
        # Sent with a gas limit and no estimate (as timeout claims and finalize are): mined, reverted.
        unknown_game = r"^DisputeGame\.claimTimeout reverted: UnknownGame\(gameId=7\)$"
        with pytest.raises(ProverError, match=unknown_game):
            game.claim_timeout(7, sender=party.sender)
        unknown_claim = r"^DisputeGame\.finalize reverted: UnknownClaim\(claimId=1\)$"
        with pytest.raises(ProverError, match=unknown_claim):
            game.finalize(1, party.sender, gas=FINALIZE_GAS)
        assert w3.eth.get_transaction_count(party.sender) == nonce + 2  # both were mined
        statuses = [
            w3.eth.get_transaction_receipt(tx)["status"]
            for number in range(1, w3.eth.block_number + 1)
            for tx in w3.eth.get_block(number)["transactions"]
        ]
        assert statuses.count(0) == 2
        counts = [game.call(name) for name in ("taskCount", "claimCount", "gameCount")]
        assert task == 1 and counts == [1, 0, 0]
