"""MIPS.sol against vm/: for every witness the contract's post-state hash equals the VM's.

The steps go to MIPS.sol in batches through contracts/test/StepBatch.sol (one eth_call per 50
steps: a call per step spends more time in web3 and eth-tester than in the EVM); one sample also
goes through direct calls. The default run checks samples (random steps,
the real guest, a compiled C workload from tests/programs/workload.c, a small program step by step)
and the slow run checks 10,000 random or adversarial steps and 10,000 steps of the real guest's
inference, in chunks that pytest-xdist spreads over the workers. The random steps are checked to
cover every kind of step the issue lists (REQUIRED_KINDS)."""

import pytest
from contract_programs import (
    REQUIRED_KINDS,
    guest_witnesses,
    random_steps,
    random_witnesses,
    run_loop_program,
    step_kinds,
    workload_witnesses,
)
from eth_tester.exceptions import TransactionFailed
from web3.exceptions import ContractLogicError

from prover.chain.artifacts import load_artifact
from prover.chain.contracts import MipsVerifier
from prover.chain.local import LocalChain
from prover.errors import ProverError
from vm import StepWitness

RANDOM_STEPS = 10_000
GUEST_STEPS = 10_000
CHUNKS = 4
QUICK_STEPS = 400
BATCH = 50
CALL_GAS = 30_000_000


class Verifier:
    """MIPS.sol and a StepBatch on one chain."""

    def __init__(self) -> None:
        chain = LocalChain()
        self.mips = MipsVerifier.deploy(chain.w3)
        self.sender = chain.accounts[0]
        artifact = load_artifact("StepBatch")
        factory = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = chain.w3.eth.wait_for_transaction_receipt(
            factory.constructor().transact({"from": self.sender})
        )
        self.batch = chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])

    def post_hashes(self, witnesses: list[StepWitness]) -> list[bytes]:
        """The contract's post-state hash of every witness. A batch that reverts is replayed step by
        step, so the error names the witness."""
        posts: list[bytes] = []
        for first in range(0, len(witnesses), BATCH):
            chunk = witnesses[first : first + BATCH]
            call = self.batch.functions.steps(
                self.mips.address, [w.state_data for w in chunk], [w.proof for w in chunk]
            )
            try:
                posts += [bytes(h) for h in call.call({"from": self.sender, "gas": CALL_GAS})]
            except (ContractLogicError, TransactionFailed):
                for number, witness in enumerate(chunk, start=first):
                    try:
                        posts.append(self.mips.step(witness.state_data, witness.proof))
                    except ProverError as exc:
                        raise AssertionError(
                            f"witness {number} reverted: {exc}\n{describe(witness)}"
                        ) from None
                raise
        return posts


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier()


def describe(witness: StepWitness) -> str:
    return f"state 0x{witness.state_data.hex()}\ninstruction proof leaf 0x{witness.proof[:32].hex()}"


def assert_same(verifier: Verifier, witnesses: list[StepWitness]) -> None:
    for number, (witness, post) in enumerate(zip(witnesses, verifier.post_hashes(witnesses), strict=True)):
        assert post == witness.post_hash, (
            f"witness {number}: contract 0x{post.hex()} != vm 0x{witness.post_hash.hex()}\n"
            + describe(witness)
        )


def test_random_steps_quick(verifier: Verifier) -> None:
    assert_same(verifier, list(random_witnesses(QUICK_STEPS, seed=1)))


def test_direct_calls_agree(verifier: Verifier) -> None:
    """The same steps called directly (the transaction's own calldata) as through the batch."""
    witnesses = list(random_witnesses(BATCH, seed=2))
    direct = [verifier.mips.step(w.state_data, w.proof) for w in witnesses]
    assert direct == verifier.post_hashes(witnesses) == [w.post_hash for w in witnesses]


def test_guest_steps_quick(verifier: Verifier) -> None:
    assert_same(verifier, list(guest_witnesses(QUICK_STEPS, seed=1)))


def test_workload_steps_quick(verifier: Verifier) -> None:
    assert_same(verifier, list(workload_witnesses(QUICK_STEPS, seed=1)))


def test_loop_program_every_step(verifier: Verifier) -> None:
    run = run_loop_program(iterations=12)
    witnesses = [
        StepWitness(state, proof, run.state_hash_at(step + 1))
        for step, (state, proof) in enumerate(run.witnesses[: run.steps + 1])
    ]
    assert_same(verifier, witnesses)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_random_steps(verifier: Verifier, chunk: int) -> None:
    steps = list(random_steps(RANDOM_STEPS // CHUNKS, seed=1000 + chunk))
    kinds = set().union(*(step_kinds(witness, post) for witness, post in steps))
    assert kinds >= REQUIRED_KINDS, f"not covered: {sorted(REQUIRED_KINDS - kinds)}"
    assert_same(verifier, [witness for witness, _ in steps])


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_guest_steps(verifier: Verifier, chunk: int) -> None:
    assert_same(verifier, list(guest_witnesses(GUEST_STEPS // CHUNKS, seed=2000 + chunk)))
