"""InferenceRequests.sol and the example dapp SevenBounty.sol on the in-process chain: a dapp asks
for an inference with a reward, a final claim of the dispute game answers it (the reward to the
claim's submitter, the output to the dapp's callback), and every answer the game does not back is
refused: a pending or refuted claim, a claim on another task, another output, a second answer."""

import pytest
from contract_fixtures import WINDOW, Deployment, deploy, final_state, output_commitment

from prover.chain.consumer import InferenceRequests, SevenBounty
from prover.chain.contracts import DeployedContract, decode_revert, revert_data
from prover.errors import ProverError

PROGRAM, INPUT, MODEL = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
REWARD = 5 * 10**16
PRIZE = 10**17
STEPS = 1_000


class ReentrantPayee(DeployedContract):
    """contracts/test/ReentrantPayee.sol: here a requester with code but no onInference."""

    name = "ReentrantPayee"


def output_of_class(digit: int) -> bytes:
    """An output payload as the guest writes it: the u32 class, then ten int8 logits."""
    return digit.to_bytes(4, "big") + bytes(range(10))


class Dapp:
    def __init__(self) -> None:
        self.d: Deployment = deploy()
        w3 = self.d.chain.w3
        self.requests = InferenceRequests.deploy(w3, self.d.game.address)
        self.bounty = SevenBounty.deploy(w3, self.requests.address, PROGRAM, MODEL, PRIZE)
        self.asker = self.d.chain.accounts[5]
        w3.eth.send_transaction({"from": self.d.chain.accounts[0], "to": self.bounty.address, "value": PRIZE})

    def final_claim(self, output: bytes, roots: tuple[bytes, bytes, bytes] = (PROGRAM, INPUT, MODEL)) -> int:
        """A claim of `output` on the task of `roots`, unchallenged through its window and final."""
        game = self.d.game
        task = game.task_of(*roots) or game.create_task(*roots, sender=self.d.other)
        mem_root, siblings = output_commitment(output)
        claim = game.submit(task, final_state(mem_root, STEPS), output, siblings, sender=self.d.submitter)
        self.d.chain.advance_time(WINDOW + 1)
        game.finalize(claim, sender=self.d.other)
        return claim

    def answer(self, request: int, claim: int, output: bytes) -> bool:
        return self.requests.answer(request, claim, output, sender=self.d.other)


@pytest.fixture
def dapp() -> Dapp:
    return Dapp()


@pytest.mark.parametrize(("digit", "paid"), [(7, True), (3, False)])
def test_a_final_claim_answers_the_dapp(dapp: Dapp, digit: int, paid: bool) -> None:
    request = dapp.bounty.ask(INPUT, REWARD, sender=dapp.asker)
    output = output_of_class(digit)
    claim = dapp.final_claim(output)
    assert dapp.answer(request, claim, output)  # the callback took it
    assert dapp.requests.output_of(request) == output
    assert dapp.requests.balance_of(dapp.d.submitter) == REWARD
    assert dapp.bounty.balance_of(dapp.asker) == (PRIZE if paid else 0)
    before = dapp.d.balance(dapp.d.submitter)
    receipt = dapp.requests.transact("withdraw", sender=dapp.d.submitter)
    assert receipt.event("Withdrawn").args["amount"] == REWARD
    assert dapp.d.balance(dapp.d.submitter) > before
    if paid:
        dapp.bounty.transact("withdraw", sender=dapp.asker)
        assert dapp.bounty.call("owed") == 0


def test_one_answer_per_task_and_request(dapp: Dapp) -> None:
    """A task has one final claim: a claim on it once settled is refused, and a claim that
    survived its window after another one became final (superseded) answers nothing."""
    game, d = dapp.d.game, dapp.d
    request = dapp.bounty.ask(INPUT, REWARD, sender=dapp.asker)
    first, second = output_of_class(7), output_of_class(1)
    task = game.create_task(PROGRAM, INPUT, MODEL, sender=d.other)
    claims = []
    for output in (first, second):
        mem_root, siblings = output_commitment(output)
        claims.append(game.submit(task, final_state(mem_root, STEPS), output, siblings, sender=d.submitter))
    d.chain.advance_time(WINDOW + 1)
    for claim in claims:
        game.finalize(claim, sender=d.other)
    assert [game.claim(claim).status for claim in claims] == ["final", "superseded"]
    with pytest.raises(ProverError, match=r"ClaimNotFinal\(claimId=2, status=4\)"):
        dapp.answer(request, claims[1], second)
    mem_root, siblings = output_commitment(second)
    with pytest.raises(ProverError, match=f"TaskSettled\\(taskId={task}, finalClaimId={claims[0]}\\)"):
        game.submit(task, final_state(mem_root, STEPS), second, siblings, sender=d.submitter)
    dapp.answer(request, claims[0], first)
    with pytest.raises(ProverError, match=f"AlreadyAnswered\\(requestId={request}, claimId={claims[0]}\\)"):
        dapp.answer(request, claims[0], first)
    assert dapp.requests.output_of(request) == first


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("unknown request", "UnknownRequest"),
        ("pending claim", "ClaimNotFinal"),
        ("refuted claim", "ClaimNotFinal"),
        ("other input", "OtherTask"),
        ("other model", "OtherTask"),
        ("other output", "OutputMismatch"),
    ],
)
def test_answers_the_game_does_not_back_are_refused(dapp: Dapp, case: str, error: str) -> None:
    request = dapp.bounty.ask(INPUT, REWARD, sender=dapp.asker)
    output = output_of_class(7)
    game, d = dapp.d.game, dapp.d
    if case == "pending claim":
        task = game.create_task(PROGRAM, INPUT, MODEL, sender=d.other)
        mem_root, siblings = output_commitment(output)
        claim = game.submit(task, final_state(mem_root, STEPS), output, siblings, sender=d.submitter)
    elif case == "refuted claim":
        task = game.create_task(PROGRAM, INPUT, MODEL, sender=d.other)
        mem_root, siblings = output_commitment(output)
        claim = game.submit(task, final_state(mem_root, STEPS), output, siblings, sender=d.submitter)
        game.challenge(claim, sender=d.challenger)
        d.chain.advance_time(10**6)  # the defender never moves: its clock runs out
        game.claim_timeout(1, sender=d.challenger)
        assert game.claim(claim).status == "refuted"
    elif case == "other input":
        claim = dapp.final_claim(output, (PROGRAM, b"\x09" * 32, MODEL))
    elif case == "other model":
        claim = dapp.final_claim(output, (PROGRAM, INPUT, b"\x09" * 32))
    else:
        claim = dapp.final_claim(output)
    if case == "unknown request":
        request += 1
    if case == "other output":
        output = output_of_class(1)
    with pytest.raises(ProverError, match=error):
        dapp.answer(request, claim, output)
    with pytest.raises(ProverError, match=r"UnknownRequest|NotAnswered"):
        dapp.requests.output_of(request)
    assert dapp.requests.balance_of(d.submitter) == 0


def test_a_requester_that_cannot_take_the_answer_does_not_block_it(dapp: Dapp) -> None:
    """A contract without onInference: the answer stands, the reward is paid, the output readable."""
    payee = ReentrantPayee.deploy(dapp.d.chain.w3, dapp.requests.address)
    calldata = dapp.requests.contract.encode_abi("request", [PROGRAM, INPUT, MODEL])
    payee.transact("forward", calldata, sender=dapp.asker, value=REWARD)
    output = output_of_class(2)
    assert not dapp.answer(1, dapp.final_claim(output), output)
    assert dapp.requests.output_of(1) == output
    assert dapp.requests.balance_of(dapp.d.submitter) == REWARD


def test_the_callback_cannot_be_starved_of_gas(dapp: Dapp) -> None:
    """An answer sent with too little gas to leave the callback its share reverts as a whole."""
    request = dapp.bounty.ask(INPUT, REWARD, sender=dapp.asker)
    output = output_of_class(7)
    claim = dapp.final_claim(output)
    starved = {"from": dapp.d.other, "gas": 200_000}
    answer = dapp.requests.contract.functions.answer(request, claim, output)
    with pytest.raises(Exception) as refused:
        answer.call(starved)
    assert decode_revert(revert_data(refused.value)).startswith("CallbackGasTooLow(")
    receipt = dapp.d.chain.w3.eth.wait_for_transaction_receipt(answer.transact(starved))
    assert receipt["status"] == 0
    with pytest.raises(ProverError, match="NotAnswered"):
        dapp.requests.output_of(request)
    assert dapp.answer(request, claim, output)  # with enough gas it goes through


def test_only_the_requests_contract_may_deliver(dapp: Dapp) -> None:
    with pytest.raises(ProverError, match="NotRequests"):
        dapp.bounty.transact("onInference", 1, output_of_class(7), sender=dapp.asker)
