"""Every external function of the deployed contracts called with random calldata (hypothesis): a
call with well-formed ABI arguments of random content either goes through or reverts with one of
the contract's own documented custom errors, never with a panic (arithmetic, array bounds), a bare
revert or a string. Random bytes after a real selector may also meet the ABI decoder's bare revert
(calldata that is no encoding of the parameters: docs/contracts.md), and nothing else."""

import hypothesis.strategies as st
import pytest
from contract_fixtures import CHALLENGE_BOND, SUBMIT_BOND, Deployment, deploy, final_state, output_commitment
from eth_abi import abi
from eth_utils import function_signature_to_4byte_selector
from hypothesis import HealthCheck, given, settings

from prover.chain.consumer import InferenceRequests
from prover.chain.contracts import revert_data

OUTPUT = (7).to_bytes(4, "big") + bytes(10)


def signature(entry: dict) -> str:
    return f"{entry['name']}({','.join(_type(item) for item in entry['inputs'])})"


def _type(item: dict) -> str:
    if item["type"].startswith("tuple"):
        return "(" + ",".join(_type(part) for part in item["components"]) + ")" + item["type"][5:]
    return item["type"]


class Target:
    """A deployed contract with a claim, a game and a request in it, so that calls reach deep."""

    def __init__(self) -> None:
        self.d: Deployment = deploy(k=4)
        game = self.d.game
        task = game.create_task(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, sender=self.d.other)
        mem_root, siblings = output_commitment(OUTPUT)
        claim = game.submit(task, final_state(mem_root, 100), OUTPUT, siblings, sender=self.d.submitter)
        game.challenge(claim, sender=self.d.challenger)
        self.requests = InferenceRequests.deploy(self.d.chain.w3, game.address)
        self.requests.request(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, 10**15, sender=self.d.other)
        self.contracts = {"DisputeGame": game, "InferenceRequests": self.requests}


TARGET: list[Target] = []


def target() -> Target:
    if not TARGET:
        TARGET.append(Target())
    return TARGET[0]


def functions(name: str) -> list[dict]:
    contract = target().contracts[name]
    return [
        entry
        for entry in contract.contract.abi
        if entry["type"] == "function" and entry["stateMutability"] not in ("view", "pure")
    ]


def documented_errors(name: str) -> set[bytes]:
    contract = target().contracts[name]
    return {
        function_signature_to_4byte_selector(signature(entry))
        for entry in contract.contract.abi
        if entry["type"] == "error"
    }


def outcome(name: str, calldata: bytes, value: int) -> bytes | None:
    """None when the call goes through, else its revert data (an eth_call: nothing changes)."""
    t = target()
    contract = t.contracts[name]
    try:
        t.d.chain.w3.eth.call(
            {"from": t.d.challenger, "to": contract.address, "data": calldata, "value": value}
        )
    except Exception as exc:  # every failure is inspected below
        return revert_data(exc)
    return None


def check(name: str, calldata: bytes, value: int, well_formed: bool) -> None:
    data = outcome(name, calldata, value)
    if data is None or (data == b"" and not well_formed):
        return
    # A function that takes no value rejects one with a bare revert (solc's own check): that is
    # the only revert without a custom error that is allowed.
    payable = {
        function_signature_to_4byte_selector(signature(entry))
        for entry in functions(name)
        if entry["stateMutability"] == "payable"
    }
    if data == b"" and value and calldata[:4] not in payable:
        return
    assert data[:4] in documented_errors(name), f"{calldata.hex()} -> {data.hex() or 'bare revert'}"


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", ["DisputeGame", "InferenceRequests"])
@FUZZ
@given(data=st.data(), value=st.sampled_from([0, 1, CHALLENGE_BOND, SUBMIT_BOND]))
def test_random_bytes_after_each_selector(name, data, value):
    entry = data.draw(st.sampled_from(functions(name)))
    tail = data.draw(st.binary(max_size=600))
    check(name, function_signature_to_4byte_selector(signature(entry)) + tail, value, well_formed=False)


def abi_value(kind: str) -> st.SearchStrategy:
    if kind.endswith("[]"):
        return st.lists(abi_value(kind[:-2]), max_size=6)
    if kind.endswith("]"):
        inner, size = kind[:-1].rsplit("[", 1)
        return st.lists(abi_value(inner), min_size=int(size), max_size=int(size))
    if kind.startswith("uint"):
        bits = int(kind[4:] or 256)
        return st.one_of(st.integers(0, 20), st.integers(0, 2**bits - 1))
    if kind == "bytes32":
        return st.binary(min_size=32, max_size=32)
    if kind == "bytes":
        return st.one_of(st.binary(max_size=300), st.just(final_state(b"\x00" * 32, 5)))
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex())
    if kind == "bool":
        return st.booleans()
    raise AssertionError(f"no strategy for {kind}")


@pytest.mark.parametrize("name", ["DisputeGame", "InferenceRequests"])
@FUZZ
@given(data=st.data(), value=st.sampled_from([0, CHALLENGE_BOND, SUBMIT_BOND]))
def test_well_formed_random_arguments(name, data, value):
    entry = data.draw(st.sampled_from(functions(name)))
    kinds = [_type(item) for item in entry["inputs"]]
    if any(kind.startswith("(") for kind in kinds):
        arguments = [data.draw(tuple_value(item)) for item in entry["inputs"]]
    else:
        arguments = [data.draw(abi_value(kind)) for kind in kinds]
    calldata = function_signature_to_4byte_selector(signature(entry)) + abi.encode(kinds, arguments)
    check(name, calldata, value, well_formed=True)


def tuple_value(item: dict) -> st.SearchStrategy:
    if not item["type"].startswith("tuple"):
        return abi_value(item["type"])
    parts = st.tuples(*(tuple_value(part) for part in item["components"]))
    if item["type"].endswith("[]"):
        return st.lists(parts, max_size=3)
    return parts
