"""A hardhat node (npm `hardhat`, pinned in contracts/package.json) started on 127.0.0.1 for a test
and killed afterwards: the real node the README's commands are also meant for. Its accounts are
funded from explicit private keys (`KEYS`), so the parties sign their own transactions (`--key`)."""

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_hash.auto import keccak

from prover.chain.connect import connect
from prover.errors import ProverError

CONTRACTS = Path(__file__).resolve().parent.parent / "contracts"
HARDHAT = CONTRACTS / "node_modules" / ".bin" / "hardhat"
START_TIMEOUT_S = 60
# Deployer, submitter, challenger, and spares (benchmarks/bench_watch.py plays six parties): keys
# of this project's tests, nobody's funds.
KEYS = ["0x" + keccak(f"opml-prover hardhat test account {index}".encode()).hex() for index in range(6)]

needs_hardhat = pytest.mark.skipif(
    not HARDHAT.exists(), reason=f"no {HARDHAT}: run `npm ci --prefix contracts` (the README's install)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def hardhat_node(interval_ms: int = 0, keys: list[str] = KEYS) -> Iterator[str]:
    """The URL of a fresh hardhat node: automine, or a block every `interval_ms` ms; its accounts
    are `keys`'."""
    port = free_port()
    env = dict(
        os.environ,
        PROVER_HARDHAT_KEYS=",".join(keys),
        PROVER_HARDHAT_INTERVAL_MS=str(interval_ms),
        HARDHAT_DISABLE_TELEMETRY_PROMPT="true",
    )
    process = subprocess.Popen(
        [str(HARDHAT), "node", "--hostname", "127.0.0.1", "--port", str(port)],
        cwd=CONTRACTS,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                connect(url)
                break
            except ProverError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"hardhat did not start: {process.stderr.read()[-2000:]}") from None
                time.sleep(0.2)
        yield url
    finally:
        process.kill()
        process.wait(timeout=START_TIMEOUT_S)
        process.stderr.close()
