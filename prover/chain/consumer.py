"""The dapp side of the game from Python: InferenceRequests.sol (ask for an inference with a reward,
answer it with a final claim's output) and the example dapp SevenBounty.sol (docs/contracts.md)."""

from prover.chain.contracts import DeployedContract


class InferenceRequests(DeployedContract):
    """Requests of dapps, answered by final claims of the dispute game at deployment."""

    name = "InferenceRequests"

    def request(
        self, program_root: bytes, input_root: bytes, model_root: bytes, reward: int, sender: str
    ) -> int:
        receipt = self.transact("request", program_root, input_root, model_root, sender=sender, value=reward)
        return receipt.event("Requested").args["requestId"]

    def answer(self, request_id: int, claim_id: int, output: bytes, sender: str) -> bool:
        """Hands in the output of final claim `claim_id`; whether the requester's callback took it."""
        receipt = self.transact("answer", request_id, claim_id, output, sender=sender)
        return receipt.event("Answered").args["delivered"]

    def output_of(self, request_id: int) -> bytes:
        return bytes(self.call("outputOf", request_id))

    def balance_of(self, account: str) -> int:
        return self.call("balances", account)


class SevenBounty(DeployedContract):
    """The example dapp: a prize for an image the model classifies as a 7."""

    name = "SevenBounty"

    def ask(self, input_root: bytes, reward: int, sender: str) -> int:
        """The request id of InferenceRequests that asks for the class of the image."""
        return self.transact("ask", input_root, sender=sender, value=reward).event("Asked").args["requestId"]

    def balance_of(self, account: str) -> int:
        return self.call("balances", account)
