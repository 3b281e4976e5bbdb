"""The client side of a JSON-RPC node: a Web3 that fails with one clear line when nothing answers
at the URL, and the in-process chain when there is no URL."""

import contextlib
from collections.abc import Iterator

import requests
from web3 import Web3
from web3.types import RPCEndpoint

from prover.chain.local import LocalChain
from prover.errors import ProverError

# What a node that goes away raises through web3's HTTP provider: before its answer, or in the
# middle of it (the body cut short).
CONNECTION_LOST = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)


@contextlib.contextmanager
def reaching(rpc_url: str) -> Iterator[None]:
    """Turns a node that stops answering (before or in the middle of a command) into one line."""
    try:
        yield
    except requests.exceptions.ConnectionError as exc:
        text = str(exc).lower()
        if "refused" in text:
            reason = "connection refused"
        elif any(word in text for word in ("aborted", "reset", "disconnected")):
            reason = "connection closed"  # it went away while answering this request
        else:
            reason = "no answer"
        raise ProverError(f"cannot reach JSON-RPC node at {rpc_url}: {reason}") from None
    except requests.exceptions.ChunkedEncodingError:
        raise ProverError(f"cannot reach JSON-RPC node at {rpc_url}: connection closed") from None
    except requests.exceptions.RequestException as exc:
        raise ProverError(f"cannot reach JSON-RPC node at {rpc_url}: {type(exc).__name__}") from None


def connect(rpc_url: str) -> Web3:
    """A Web3 client of the JSON-RPC node at rpc_url, checked to answer."""
    # web3 asks for the chain id before every call and transaction; it cannot change under a
    # running command, so it is asked once (half of a dispute agent's requests otherwise).
    provider = Web3.HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": 60},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    w3 = Web3(provider)
    with reaching(rpc_url):
        w3.eth.chain_id  # noqa: B018 - the cheapest call that proves a node answers
    return w3


def web3_for(rpc_url: str | None) -> Web3:
    """A Web3 on the node at rpc_url, or on a fresh in-process chain when there is none."""
    return connect(rpc_url) if rpc_url else LocalChain().w3
