"""The toolkit on a real node: hardhat (npm, pinned), started on 127.0.0.1 by these tests. Both demo
scripts play a whole MNIST dispute (multi-phase, their default) on it with explicit private keys,
with automine and with interval mining; the chess clock runs out under hardhat's
`evm_increaseTime` and the waiting side claims the timeout; finalize and withdraw move the bonds.
The embedded node stays the default elsewhere."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dispute_helpers import CHALLENGER, SUBMITTER, Match, advance_time, honest_run, ok
from hardhat_node import KEYS, hardhat_node, needs_hardhat

from prover.chain.connect import connect

REPO = Path(__file__).resolve().parent.parent
DEMO_TIMEOUT_S = 900
BOND = 10**18
CLOCK_S = 120

pytestmark = [needs_hardhat, pytest.mark.slow]


def demo(script: str, rpc: str) -> str:
    """A demo script's output, played on the node at `rpc` with this file's keys."""
    done = subprocess.run(
        ["bash", f"scripts/{script}"],
        cwd=REPO,
        env=dict(os.environ, PYTHON=sys.executable, RPC=rpc, KEYS=" ".join(KEYS[:3])),
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_demo_on_hardhat_with_keys():
    with hardhat_node() as rpc:
        out = demo("challenge_simple.sh", rpc)
        # The MLP's default game is multi-phase: a graph round, the opening, at most 5 VM rounds.
        assert re.search(r"^winner: the defender; node \d \(\w+\); rounds: [2-7];", out, re.M)
        # Every transaction was signed by the parties' keys (the node's accounts sent nothing), with
        # EIP-1559 fees.
        w3 = connect(rpc)
        sent = [
            w3.eth.get_transaction(tx)
            for number in range(1, w3.eth.block_number + 1)
            for tx in w3.eth.get_block(number)["transactions"]
        ]
        assert {tx["from"] for tx in sent} == {w3.eth.account.from_key(key).address for key in KEYS[:3]}
        assert {tx["type"] for tx in sent} == {2}  # EIP-1559 fees


def test_the_faulty_submitter_demo_on_hardhat_with_interval_mining():
    with hardhat_node(interval_ms=300) as rpc:
        out = demo("challenge_faulty_submitter.sh", rpc)
        assert re.search(r"^winner: the challenger; node \d \(\w+\); rounds: [2-7];", out, re.M)


def test_a_timeout_on_hardhat_and_the_bonds_after_it(tmp_path_factory, tmp_path):
    with hardhat_node() as rpc:
        match = Match(rpc, honest_run("mlp", tmp_path_factory), tmp_path, "--clock", str(CLOCK_S))
        ok(match.here("submit", SUBMITTER, match.submitter))
        ok(match.here("challenge", CHALLENGER, match.challenger, "--fault-step", "7"))
        # The defender never bisects: its clock runs out on hardhat's time, and the challenger says so.
        advance_time(rpc, CLOCK_S + 1)
        connect(rpc).provider.make_request("evm_mine", [])
        ok(match.here("respond", CHALLENGER, match.challenger))
        (game,) = match.status("--game", "1")["games"]
        assert game["winner"] == "challenger" and game["by_timeout"]
        withdrawn = json.loads(ok(match.here("withdraw", CHALLENGER, match.challenger, "--json")).out)
        assert withdrawn["amount"] == 2 * BOND  # its own bond back and the refuted claim's
        deployer = match.status()
        assert deployer["claims"][0]["status"] == "refuted" and deployer["withdrawable"] == 0
