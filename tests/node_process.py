"""A `prover node --port 0` subprocess for tests: started, its URL read from its first line, and
killed afterwards (never left running)."""

import contextlib
import subprocess
import sys
from collections.abc import Iterator

NODE_START_TIMEOUT_S = 60


@contextlib.contextmanager
def running_node() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "prover.cli", "node", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
        if not first_line.startswith("JSON-RPC node listening on "):
            raise RuntimeError(f"node did not start: {first_line!r} {process.stderr.read()!r}")
        yield first_line.split()[-1]
    finally:
        process.kill()
        process.wait(timeout=NODE_START_TIMEOUT_S)
        process.stdout.close()
        process.stderr.close()
