"""`prover node`: separate processes share one chain over JSON-RPC."""

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from node_process import running_node
from web3 import Web3
from web3.exceptions import ContractCustomError, TransactionNotFound

from prover.chain.connect import connect
from prover.errors import ProverError

# Runtime code that returns the 32-byte word 42, and one that reverts with the 4 bytes 0xdeadbeef,
# each behind an init code that copies it into place (12 bytes, then the runtime).
RETURNS_42 = "602a60005260206000f3"
REVERTS_DEADBEEF = "63deadbeef6000526004601cfd"
# Runtime code that counts down from 2048 (about 53,000 gas), and one that calls a contract with all
# its gas and reverts unless the call succeeds (the address goes between the two halves).
BURNS_GAS = "6108005b600190038060035700"
CALLS_AND_REQUIRES = ("6000600060006000600073", "5af160295760006000fd5b00")


def init_code(runtime_hex: str) -> str:
    size = len(runtime_hex) // 2
    return f"0x60{size:02x}600c60003960{size:02x}6000f3{runtime_hex}"


def deploy(w3: Web3, runtime_hex: str) -> str:
    transaction = w3.eth.send_transaction({"from": w3.eth.accounts[0], "data": init_code(runtime_hex)})
    return w3.eth.wait_for_transaction_receipt(transaction).contractAddress


@pytest.fixture(scope="module")
def rpc_url():
    with running_node() as url:
        yield url


def run_client(rpc_url: str, code: str) -> str:
    """Run `code` in a separate Python process with `w3` connected to the node; return its stdout."""
    prelude = f"from prover.chain.connect import connect; w3 = connect({rpc_url!r})\n"
    result = subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


def test_two_processes_see_the_same_chain(rpc_url):
    receiver = "0x000000000000000000000000000000000000bEEF"
    run_client(
        rpc_url,
        f"h = w3.eth.send_transaction({{'from': w3.eth.accounts[1], 'to': {receiver!r}, 'value': 12345}})\n"
        "w3.eth.wait_for_transaction_receipt(h)",
    )
    w3 = connect(rpc_url)
    assert w3.eth.get_balance(receiver) == 12345
    assert run_client(rpc_url, f"print(w3.eth.get_balance({receiver!r}))") == "12345"
    assert int(run_client(rpc_url, "print(w3.eth.block_number)")) == w3.eth.block_number


def test_deploy_and_call_over_rpc(rpc_url):
    w3 = connect(rpc_url)
    deployer = w3.eth.accounts[0]
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": deployer, "data": init_code(RETURNS_42)})
    )
    assert receipt.status == 1
    assert int.from_bytes(w3.eth.call({"to": receipt.contractAddress}), "big") == 42
    assert w3.eth.get_code(receipt.contractAddress).hex() == RETURNS_42


def test_revert_data_reaches_the_client(rpc_url):
    w3 = connect(rpc_url)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "data": init_code(REVERTS_DEADBEEF)})
    )
    with pytest.raises(ContractCustomError) as call_error:
        w3.eth.call({"to": receipt.contractAddress})
    assert call_error.value.data == "0xdeadbeef"
    with pytest.raises(ContractCustomError) as send_error:
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": receipt.contractAddress})
    assert send_error.value.data == "0xdeadbeef"


def test_time_travel(rpc_url):
    w3 = connect(rpc_url)
    before = w3.eth.get_block("latest")["timestamp"]
    w3.provider.make_request("evm_increaseTime", [7200])
    assert w3.eth.get_block("latest")["timestamp"] >= before + 7200
    number = w3.eth.block_number
    w3.provider.make_request("evm_mine", [])
    assert w3.eth.block_number == number + 1
    travelled = w3.eth.get_block("latest")["timestamp"]
    w3.provider.make_request("evm_mine", [travelled + 100])
    assert w3.eth.get_block("latest")["timestamp"] == travelled + 100
    refused = w3.provider.make_request("evm_mine", [travelled])
    assert "not after the latest block" in refused["error"]["message"]


def test_blocks_carry_the_current_time(rpc_url):
    """A block is stamped when it is mined, not when the one before it was: on a quiet chain the
    clocks keep running (a transaction or an evm_mine after a pause is that much later). A block
    is at least a second after its parent, so blocks mined in quick succession may run a second
    or so ahead of the clock: the pauses are longer than the figures asserted."""
    w3 = connect(rpc_url)
    w3.provider.make_request("evm_mine", [])
    mined = w3.eth.get_block("latest")["timestamp"]
    time.sleep(3.2)
    w3.provider.make_request("evm_mine", [])
    assert w3.eth.get_block("latest")["timestamp"] >= mined + 2
    time.sleep(2.2)
    account = w3.eth.accounts[0]
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": account, "to": account}))
    assert w3.eth.get_block(receipt.blockNumber)["timestamp"] >= mined + 4


def test_gas_estimates_cover_nested_calls(rpc_url):
    """The node's two-run estimate is a limit the transaction succeeds with, although the gas it
    uses would not be one: a call gets at most 63/64 of the gas left."""
    w3 = connect(rpc_url)
    burner = deploy(w3, BURNS_GAS)
    head, tail = CALLS_AND_REQUIRES
    caller = deploy(w3, head + burner[2:].lower() + tail)
    transaction = {"from": w3.eth.accounts[0], "to": caller}
    estimate = w3.eth.estimate_gas(transaction)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({**transaction, "gas": estimate}))
    assert receipt.status == 1 and receipt.gasUsed > 50_000
    assert estimate < 2 * receipt.gasUsed
    starved = w3.eth.send_transaction({**transaction, "gas": receipt.gasUsed})
    assert w3.eth.wait_for_transaction_receipt(starved).status == 0
    reverter = deploy(w3, REVERTS_DEADBEEF)
    with pytest.raises(ContractCustomError) as estimate_error:
        w3.eth.estimate_gas({"from": w3.eth.accounts[0], "to": reverter})
    assert estimate_error.value.data == "0xdeadbeef"


def test_receipts_follow_the_chain_back_in_time(rpc_url):
    """A receipt the node has served is not served again once evm_revert took its block away."""
    w3 = connect(rpc_url)
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    sender, receivers = w3.eth.accounts[0], w3.eth.accounts[5:7]
    first = w3.eth.send_transaction({"from": sender, "to": receivers[0], "value": 1})
    assert w3.eth.wait_for_transaction_receipt(first).status == 1
    w3.provider.make_request("evm_revert", [snapshot])
    second = w3.eth.send_transaction({"from": sender, "to": receivers[1], "value": 2})
    assert (
        w3.eth.get_transaction_receipt(second).blockNumber
        == w3.eth.get_transaction_receipt(second).blockNumber
    )
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(first)


def post(rpc_url: str, body: bytes) -> object:
    request = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_bad_requests_get_errors_and_the_node_survives(rpc_url):
    assert post(rpc_url, b"{not json")["error"]["code"] == -32700
    unknown = post(rpc_url, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "foo_bar"}).encode())
    assert unknown["error"]["code"] == -32601
    bad_params = {"jsonrpc": "2.0", "id": 2, "method": "eth_getBalance", "params": ["nonsense", "latest"]}
    assert "error" in post(rpc_url, json.dumps(bad_params).encode())
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId", "params": []} for i in range(2)]
    assert [r["id"] for r in post(rpc_url, json.dumps(batch).encode())] == [0, 1]
    assert Web3.is_address(connect(rpc_url).eth.accounts[0])


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_dead_endpoint_is_one_clear_error():
    url = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(ProverError, match=f"cannot reach JSON-RPC node at {url}: connection refused"):
        connect(url)


def test_a_node_that_dies_in_the_middle_of_its_answer_is_one_clear_error():
    """Its chunked reply cut short (what a node killed while answering leaves) is a closed
    connection, not a name of requests' exception."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"

        def answer_half() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b'Transfer-Encoding: chunked\r\n\r\n40\r\n{"jsonrpc"'
                )

        answering = threading.Thread(target=answer_half)
        answering.start()
        with pytest.raises(ProverError, match=f"cannot reach JSON-RPC node at {url}: connection closed$"):
            connect(url)
        answering.join()


def test_busy_port_is_one_error_line():
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "prover.cli", "node", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
