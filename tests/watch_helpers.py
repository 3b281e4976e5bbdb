"""Shared by the watcher's tests (test_watch*.py) and its load benchmark: tasks of the tiny model laid
out into a store, `prover watch` as a process whose JSON log lines are collected as they come, and
waiting for the chain to reach a state."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dispute_helpers import REPO, TINY_INTERVAL, made_once, ok, prover_here, tiny_run
from test_guest_models import images, int8_mlp

from prover.chain.connect import connect
from prover.chain.contracts import DisputeGame
from prover.files import write_atomically

WAIT_TIMEOUT_S = 90


def tiny_task(factory, store: Path, basedir: Path, data: bytes) -> Path:
    """A run of the tiny model (tests/dispute_helpers.py) on the four input bytes `data` in
    `basedir`, its program, model and input put in `store` (`prover golden --store`)."""
    model = tiny_run(factory).parent / "tiny.ggml"
    raw = basedir.with_suffix(".raw")
    basedir.parent.mkdir(parents=True, exist_ok=True)
    raw.write_bytes(data)
    golden = ("golden", "--model", str(model), "--data", str(raw), "--basedir", str(basedir))
    ok(prover_here(*golden, "--store", str(store), "--json"))
    ok(prover_here("run", "--basedir", str(basedir), "--interval", str(TINY_INTERVAL), "--json"))
    return basedir


GRAPH_HIDDEN = 4  # the small int8 MLP's hidden layer: 784 -> 4 -> 10, four nodes with ANSWER


def small_int8_model(factory) -> Path:
    """A small int8 MLP (tests/test_guest_models.py's, 4 hidden units) and a 784-byte input, made
    once per session: its graph task has 4 nodes (REQUANTIZE, two LINEARs, ANSWER), each a short
    VM run."""
    with made_once(factory, "small-int8") as root:
        model = root / "small-int8.ggml"
        if not model.exists():
            write_atomically(model.with_suffix(".raw"), images(1)[0])
            write_atomically(model, int8_mlp(seed=0, hidden=GRAPH_HIDDEN))  # last: it says "made"
    return model


def graph_task(
    factory, store: Path | None, basedir: Path, fault_node: str | None = None, data_bytes: bytes | None = None
) -> Path:
    """The small int8 model's graph task and run in `basedir` (`prover golden`, the multi-phase
    game by default, then `prover run`), put in `store` if given; with `fault_node`, a liar's run
    (that node's output corrupted); on the 784 bytes `data_bytes` instead of the model's own input."""
    model = small_int8_model(factory)
    data = str(model.with_suffix(".raw"))
    if data_bytes is not None:
        raw = basedir.with_suffix(".raw")
        basedir.parent.mkdir(parents=True, exist_ok=True)
        raw.write_bytes(data_bytes)
        data = str(raw)
    golden = ("golden", "--model", str(model), "--data", data, "--basedir", str(basedir))
    ok(prover_here(*golden, *(("--store", str(store)) if store else ()), "--json"))
    fault = ("--fault-node", fault_node) if fault_node else ()
    ok(prover_here("run", "--basedir", str(basedir), *fault, "--json"))
    return basedir


class WatcherProcess:
    """`prover watch --json ARGS` in its own process; `lines` are its log's JSON objects so far
    (a thread reads them as they come), `err` its stderr once it has ended."""

    def __init__(self, rpc: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prover.cli", "watch", "--json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PROVER_RPC=rpc),
            cwd=REPO,
        )
        self.lines: list[dict] = []
        self.err_lines: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, False), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, as_json: bool) -> None:
        for line in stream:
            if as_json:
                self.lines.append(json.loads(line))
            else:
                self.err_lines.append(line.rstrip("\n"))

    def events(self, kind: str) -> list[dict]:
        return [line for line in self.lines if line["event"] == kind]

    def wait_for(self, kind: str, timeout: float = WAIT_TIMEOUT_S) -> dict:
        wait_until(lambda: self.events(kind) or self.process.poll() is not None, timeout, f"a {kind} line")
        found = self.events(kind)
        assert found, f"the watcher exited {self.process.returncode}: {self.err_lines[-20:]}"
        return found[0]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """End the process (SIGKILL: as a crash would) and wait for its output."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=60)
        for reader in self.readers:  # they end at the end of the streams
            reader.join(timeout=10)


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.2)


def dispute_game(rpc: str, deployment: Path) -> DisputeGame:
    return DisputeGame(connect(rpc), json.loads(deployment.read_text())["dispute_game"])
