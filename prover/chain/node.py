"""`prover node`: a local Ethereum JSON-RPC node on 127.0.0.1, backed by the embedded eth-tester /
py-evm chain, so that separate `prover` processes (web3 HTTPProvider clients) share one chain.

The node does not implement RPC methods itself. It is web3's own eth-tester provider
(web3.providers.eth_tester: API_ENDPOINTS plus the request/result formatting middleware) behind an
HTTP server; this module only

- turns the provider's Python results into JSON-RPC wire values (integers as hex quantities),
- reports reverts as JSON-RPC errors with the raw revert data, so clients decode custom errors,
- stamps every new block with the current time (`BlockClock`) and adds hardhat-style time travel
  for the chess clocks: `evm_increaseTime(seconds)` and `evm_mine([timestamp])`,
- serializes every request with one lock (eth-tester is not thread-safe),
- answers the requests a dispute makes most in fewer steps, with the same results: a mined
  transaction is found through py-evm's own index (`_find_transaction`), a mined receipt is
  served again from memory (`_ReceiptCache`), and gas is estimated in two executions of the
  transaction instead of some thirteen (prover/chain/gas.py, the embedded chain's estimator).
  Together they cut the node's time in a k = 2 MLP dispute by more than half.

The client side (`connect`) is prover/chain/connect.py; the command, prover/cli/node.py.
"""

import ast
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eth.exceptions import HeaderNotFound
from eth.exceptions import TransactionNotFound as CanonicalTransactionNotFound
from eth_abi import abi
from eth_tester import EthereumTester
from eth_tester.backends.pyevm import main as pyevm_backend
from eth_tester.exceptions import TransactionFailed
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.providers.eth_tester.defaults import API_ENDPOINTS

from prover.chain.local import LocalChain
from prover.errors import ProverError

DEFAULT_PORT = 8545
LOGS_BLOOM_BYTES = 256
# JSON-RPC 2.0 error codes, and geth's code for a reverted call.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
SERVER_ERROR = -32000
EXECUTION_REVERTED = 3
# The selector of Solidity's Error(string), the revert of require(condition, "reason").
ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")


def _quantity(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


class BlockClock:
    """The node's block times: each new block is stamped with the current time, plus the time
    travelled (hardhat's `evm_increaseTime`, `evm_mine(timestamp)`), and at least one second after
    its parent.

    py-evm stamps the pending block when the previous one is mined, so on a quiet chain the next
    block would carry that old time (a block mined 86 s later said 1 s later), and the chess clocks
    and challenge windows, which run on block time, would stand still between blocks. So the
    pending block is stamped again before every request, while it holds no transaction."""

    def __init__(self, tester: EthereumTester) -> None:
        self.chain = tester.backend.chain
        self.tester = tester
        self.offset = 0  # seconds travelled ahead of the wall clock

    def now(self) -> int:
        return int(time.time()) + self.offset

    def stamp_pending(self) -> None:
        if self.chain.get_block().transactions:  # a block being filled keeps its time
            return
        parent = self.chain.get_canonical_head().timestamp
        self.chain.header = self.chain.header.copy(timestamp=max(parent + 1, self.now()))

    def increase_time(self, params: list[Any]) -> int:
        """hardhat's evm_increaseTime: every later block is `seconds` later than it would have
        been, and a block is mined at once, at least `seconds` after the latest one; its time is
        returned."""
        seconds = _quantity(params[0])
        if seconds < 0:
            raise ValueError("evm_increaseTime needs a non-negative number of seconds")
        latest = self.chain.get_canonical_head().timestamp
        self.offset = max(self.offset + seconds, latest + seconds - int(time.time()))
        self.stamp_pending()
        self.tester.mine_blocks(1)
        return self.chain.get_canonical_head().timestamp

    def mine(self, params: list[Any]) -> int:
        """hardhat's evm_mine: mine one block now, or at the given timestamp (later blocks then
        follow on from it)."""
        if params:
            timestamp = _quantity(params[0])
            parent = self.chain.get_canonical_head().timestamp
            if timestamp <= parent:
                raise ValueError(f"evm_mine: {timestamp} is not after the latest block's time ({parent})")
            self.offset = timestamp - int(time.time())
        self.stamp_pending()
        self.tester.mine_blocks(1)
        return 0


def _api_endpoints(clock: BlockClock) -> dict[str, dict[str, Callable[..., Any]]]:
    endpoints = {namespace: dict(methods) for namespace, methods in API_ENDPOINTS.items()}
    endpoints["evm"]["increaseTime"] = lambda _tester, params: clock.increase_time(params)
    endpoints["evm"]["mine"] = lambda _tester, params: clock.mine(params)
    return endpoints


def to_wire(value: Any, key: str | None = None) -> Any:
    """A provider result as JSON-RPC puts it on the wire: integers are hex quantities, bytes are
    hex data. eth-tester reports a block's logs bloom as an integer; the wire form is 256 bytes."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        if key == "logsBloom":
            return "0x" + value.to_bytes(LOGS_BLOOM_BYTES, "big").hex()
        return hex(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: to_wire(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    raise TypeError(f"cannot put a {type(value).__name__} on the wire")


def _revert_data(exc: TransactionFailed) -> str:
    """The raw revert data of a failed call or transaction, as hex.

    web3's provider re-raises eth-tester's exception with a readable text and keeps the original as
    context. For a transaction the original holds py-evm's Revert with the bytes. For eth_call
    eth-tester keeps only text: the decoded reason of an Error(string) revert (encoded back here),
    or the repr of the raw bytes (a custom error; parsed back as the Python literal it is)."""
    original = exc.__context__ if isinstance(exc.__context__, TransactionFailed) else exc
    payload = original.args[0] if original.args else b""
    if isinstance(payload, Exception):
        payload = payload.args[0] if payload.args else b""
    if isinstance(payload, str):
        if re.fullmatch(r"b'.*'|b\".*\"", payload, flags=re.DOTALL):
            payload = ast.literal_eval(payload)
        else:
            payload = ERROR_STRING_SELECTOR + abi.encode(["string"], [payload])
    return "0x" + payload.hex()


_scan_for_transaction = pyevm_backend._get_transaction_by_hash


def _find_transaction(chain: Any, transaction_hash: bytes) -> tuple[Any, Any, int]:
    """eth-tester's lookup of a transaction by hash (block, transaction, index), through py-evm's
    index of the canonical chain's transactions.

    eth-tester looks at the pending block, then scans every block from the head down, for every
    receipt; eth_getLogs fetches the receipt of every transaction in its block range. A node that
    has served a few games holds hundreds of blocks, and receipts and logs took most of its time
    (0.1 s per eth_getLogs). The pending block's transactions are not in the index: for them, and
    for a hash the index does not know, eth-tester's own scan answers as before."""
    try:
        number, index = chain.chaindb.get_transaction_index(transaction_hash)
    except CanonicalTransactionNotFound:
        return _scan_for_transaction(chain, transaction_hash)
    block = chain.get_canonical_block_by_number(number)
    if index >= len(block.transactions) or block.transactions[index].hash != transaction_hash:
        return _scan_for_transaction(chain, transaction_hash)
    return block, block.transactions[index], index


class _ReceiptCache:
    """eth-tester's receipt lookup, remembering the receipts of mined transactions. eth_getLogs
    reads the receipt of every transaction in its block range, so a party that looks up its
    game's events reads the same receipts again and again; each costs a block decoding and a
    signature recovery in pure Python. A remembered receipt is served only while its block is
    still the canonical one at its height (evm_revert can replace blocks)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.lookup = backend.get_transaction_receipt
        self.receipts: dict[bytes, dict[str, Any]] = {}

    def __call__(self, transaction_hash: bytes) -> dict[str, Any]:
        receipt = self.receipts.get(transaction_hash)
        if receipt is not None and self._canonical(receipt):
            return receipt
        receipt = self.lookup(transaction_hash)
        if receipt["block_number"] is not None:  # None: still in the pending block
            self.receipts[transaction_hash] = receipt
        return receipt

    def _canonical(self, receipt: dict[str, Any]) -> bool:
        chaindb = self.backend.chain.chaindb
        try:
            return chaindb.get_canonical_block_hash(receipt["block_number"]) == receipt["block_hash"]
        except HeaderNotFound:  # no block at that height any more
            return False


class ChainNode:
    """One embedded chain answering JSON-RPC request objects (dicts), one request at a time."""

    def __init__(self) -> None:
        self.tester = LocalChain().tester
        # Both of eth-tester's lookups by hash (transactions and receipts) call this function.
        pyevm_backend._get_transaction_by_hash = _find_transaction
        self.tester.backend.get_transaction_receipt = _ReceiptCache(self.tester.backend)
        self.clock = BlockClock(self.tester)
        provider = EthereumTesterProvider(self.tester, api_endpoints=_api_endpoints(self.clock))
        w3 = Web3(provider, middleware=[])
        # The provider's request function includes web3's eth-tester formatting middleware.
        self._request = provider.request_func(w3, w3.middleware_onion)
        self._lock = threading.Lock()

    def handle(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, INVALID_REQUEST, "invalid request: expected an object with a method")
        request_id = request.get("id")
        params = request.get("params", [])
        try:
            with self._lock:
                self.clock.stamp_pending()
                response = self._request(request["method"], params)
        except TransactionFailed as exc:
            return _error(request_id, EXECUTION_REVERTED, "execution reverted", _revert_data(exc))
        except Exception as exc:  # a bad parameter must not take the node down
            return _error(request_id, SERVER_ERROR, f"{type(exc).__name__}: {exc}")
        if "error" in response:
            code = (
                METHOD_NOT_FOUND if "Unknown RPC Endpoint" in response["error"]["message"] else SERVER_ERROR
            )
            return _error(request_id, code, response["error"]["message"])
        return {"jsonrpc": "2.0", "id": request_id, "result": to_wire(response["result"])}


def _error(request_id: Any, code: int, message: str, data: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def make_server(node: ChainNode, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                request = json.loads(body)
            except json.JSONDecodeError as exc:
                reply: Any = _error(None, PARSE_ERROR, f"parse error: {exc}")
            else:
                is_batch = isinstance(request, list)
                reply = [node.handle(r) for r in request] if is_batch else node.handle(request)
            encoded = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: one line per request would drown the node's own output."""

    try:
        return ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise ProverError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
