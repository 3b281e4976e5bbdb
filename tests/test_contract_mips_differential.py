"""MIPS.sol against vm/: for every witness the contract's post-state hash equals the VM's.

Each step is one eth_call on py-evm (about 10 ms), so the default run checks a sample and the
slow run checks 10,000 random or adversarial steps and 10,000 steps of a compiled C workload
(tests/programs/workload.c), in chunks that
pytest-xdist spreads over the workers."""

import pytest
from contract_programs import guest_witnesses, random_witnesses, run_loop_program, workload_witnesses

from prover.chain import LocalChain
from prover.contracts import MipsVerifier
from vm import StepWitness

RANDOM_STEPS = 10_000
GUEST_STEPS = 10_000
CHUNKS = 4
QUICK_STEPS = 400


@pytest.fixture(scope="module")
def mips() -> MipsVerifier:
    return MipsVerifier.deploy(LocalChain().w3)


def assert_same(mips: MipsVerifier, witnesses: list[StepWitness]) -> None:
    for number, witness in enumerate(witnesses):
        post = mips.step(witness.state_data, witness.proof)
        assert post == witness.post_hash, (
            f"witness {number}: contract 0x{post.hex()} != vm 0x{witness.post_hash.hex()}\n"
            f"state 0x{witness.state_data.hex()}\ninstruction proof leaf 0x{witness.proof[:32].hex()}"
        )


def test_random_steps_quick(mips: MipsVerifier) -> None:
    assert_same(mips, list(random_witnesses(QUICK_STEPS, seed=1)))


def test_guest_steps_quick(mips: MipsVerifier) -> None:
    assert_same(mips, list(guest_witnesses(QUICK_STEPS, seed=1)))


def test_workload_steps_quick(mips: MipsVerifier) -> None:
    assert_same(mips, list(workload_witnesses(QUICK_STEPS, seed=1)))


def test_loop_program_every_step(mips: MipsVerifier) -> None:
    run = run_loop_program(iterations=12)
    witnesses = [
        StepWitness(state, proof, run.state_hash_at(step + 1))
        for step, (state, proof) in enumerate(run.witnesses[: run.steps + 1])
    ]
    assert_same(mips, witnesses)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_random_steps(mips: MipsVerifier, chunk: int) -> None:
    assert_same(mips, list(random_witnesses(RANDOM_STEPS // CHUNKS, seed=1000 + chunk)))


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_guest_steps(mips: MipsVerifier, chunk: int) -> None:
    assert_same(mips, list(guest_witnesses(GUEST_STEPS // CHUNKS, seed=2000 + chunk)))
