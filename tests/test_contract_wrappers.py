"""prover/chain/contracts.py: reverts decoded into one-line ProverErrors on the in-process chain and over
JSON-RPC, events decoded from receipts, execution gas, and errors for missing artifacts."""

import pytest
from contract_fixtures import CHALLENGE_BOND, CLOCK, SUBMIT_BOND, WINDOW, deploy
from eth_utils import function_signature_to_4byte_selector
from node_process import running_node

from prover.chain.artifacts import load_artifact
from prover.chain.connect import web3_for
from prover.chain.contracts import DisputeGame, MipsVerifier, decode_revert, execution_gas
from prover.errors import ProverError


def test_decode_revert_names_the_error_and_its_arguments() -> None:
    selector = function_signature_to_4byte_selector("WrongHashCount(uint256,uint256)")
    data = selector + (15).to_bytes(32, "big") + (2).to_bytes(32, "big")
    assert decode_revert(data) == "WrongHashCount(expected=15, got=2)"
    assert decode_revert(b"") == "reverted without a reason"
    assert decode_revert(b"\x01\x02\x03\x04") == "unknown revert data 0x01020304"


def test_execution_gas_subtracts_base_and_calldata() -> None:
    assert execution_gas(21_000 + 4 + 16 + 100, b"\x00\x01") == 100


def test_missing_artifact_is_a_user_error() -> None:
    with pytest.raises(ProverError, match="no contract artifact"):
        load_artifact("NoSuchContract")


def test_constructor_parameters_are_checked_and_kept() -> None:
    d = deploy(k=7, clock=123, window=456)
    getters = ("mips", "k", "submitBond", "challengeBond", "clockBudget", "challengeWindow")
    values = [d.game.call(name) for name in getters]
    assert values == [d.mips.address, 7, SUBMIT_BOND, CHALLENGE_BOND, 123, 456]
    zero = "0x" + "00" * 20
    for mips, k, clock in [
        (d.mips.address, 1, CLOCK),
        (d.mips.address, 65, CLOCK),
        (d.mips.address, 4, 2**32),  # clocks and windows are kept in 32 bits
        (zero, 4, CLOCK),
    ]:
        with pytest.raises(ProverError, match=r"deploying DisputeGame reverted: InvalidParameters\(\)"):
            DisputeGame.deploy(d.chain.w3, mips, k, SUBMIT_BOND, CHALLENGE_BOND, clock, WINDOW)
    for k in (2, 64):  # the bounds themselves are valid
        assert DisputeGame.deploy(d.chain.w3, d.mips.address, k, 1, 1, 2**32 - 1, 1).k == k


def test_receipts_carry_decoded_events() -> None:
    d = deploy()
    receipt = d.game.transact("createTask", b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, sender=d.other)
    event = receipt.event("TaskCreated")
    assert event.args["taskId"] == 1
    assert event.args["programRoot"] == b"\x01" * 32
    assert receipt.gas_used > 21_000


def test_reverts_over_json_rpc_are_decoded_too() -> None:
    with running_node() as url:
        w3 = web3_for(url)
        mips = MipsVerifier.deploy(w3)
        game = DisputeGame.deploy(w3, mips.address, 4, SUBMIT_BOND, CHALLENGE_BOND, CLOCK, WINDOW)
        with pytest.raises(ProverError, match=r"DisputeGame.challenge reverted: UnknownClaim\(claimId=7\)"):
            game.challenge(7, sender=w3.eth.accounts[1])
        with pytest.raises(ProverError, match=r"MIPS.step reverted: MalformedWitness\(\)"):
            mips.step(bytes(225), bytes(1792))
        assert game.create_task(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, sender=w3.eth.accounts[1]) == 1
