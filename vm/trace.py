"""Checkpointed runs: run a machine once, then get the state, state hash or witness of any step.

`Trace.record` runs a machine to its exit and keeps a checkpoint every `interval` steps: the
state encoding and the memory pages at that step. Pages are immutable bytes shared between
checkpoints (copy-on-write): a checkpoint only holds new page objects for the pages written since
the previous one, so a run of millions of steps costs little more than its working set.

A query for step k restores the nearest checkpoint at or before k and replays at most
`interval - 1` steps. Page roots are cached by page content, so restoring only rehashes the tree
above the pages.

`save(directory)` writes the checkpoints as snapshot files (vm/snapshot.py): the first holds the
non-zero pages, each later one only the pages written since the previous checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vm import fast
from vm.errors import SnapshotError, VmError
from vm.hashing import keccak
from vm.machine import Machine
from vm.memory import PAGE_SIZE, Memory, page_root
from vm.snapshot import decode_snapshot, encode_snapshot
from vm.state import State
from vm.witness import STEP_PROOF_SIZE, step_proof

DEFAULT_INTERVAL = 20_000
INDEX_FILE = "trace.json"
_ZERO_PAGE = bytes(PAGE_SIZE)


@dataclass(frozen=True)
class Checkpoint:
    state_data: bytes  # the 226-byte state encoding at step `index * interval`
    pages: dict[int, bytes]  # every page of memory (shared page objects)


# runner(machine, n) runs n steps (fewer if the machine exits) and returns the steps run. The fast
# executor by default: its states are bit-identical to the reference stepper's (tests/test_vm_fast.py).
Runner = Callable[[Machine, int], int]


class Trace:
    """The checkpoints of one run (the prover.game.agent.Trace protocol)."""

    def __init__(
        self, interval: int, checkpoints: list[Checkpoint], final_state: bytes, runner: Runner
    ) -> None:
        if interval < 1:
            raise VmError(f"checkpoint interval {interval} must be at least 1")
        self.interval = interval
        self.checkpoints = checkpoints
        self.final_state = final_state
        final = State.decode(final_state)
        self.steps = final.step - State.decode(checkpoints[0].state_data).step
        self.exited = bool(final.exited)
        self.runner = runner
        self._page_roots: dict[bytes, bytes] = {}

    # ------------------------------------------------------------------ recording

    @classmethod
    def record(
        cls,
        machine: Machine,
        interval: int = DEFAULT_INTERVAL,
        max_steps: int | None = None,
        runner: Runner | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Trace:
        """Run a copy of `machine` to its exit (or `max_steps` steps) with a checkpoint every
        `interval` steps. `runner` runs the chunks and later replays (default: one FastExecutor for
        the recording, Machine.run per replay). `progress(steps)` is called per checkpoint."""
        if interval < 1:
            raise VmError(f"checkpoint interval {interval} must be at least 1")
        run = machine.copy()
        # One executor for the whole run keeps its compiled blocks from chunk to chunk.
        run_chunk = runner if runner is not None else lambda _, steps: executor.run(steps)
        executor = fast.FastExecutor(run)
        memory = run.memory
        pages = {index: bytes(page) for index, page in memory.pages.items()}
        checkpoints = [Checkpoint(run.state.encode(), dict(pages))]
        done = 0
        while not run.state.exited and (max_steps is None or done < max_steps):
            chunk = interval if max_steps is None else min(interval, max_steps - done)
            executed = run_chunk(run, chunk)
            done += executed
            for index in memory.dirty:
                pages[index] = bytes(memory.pages[index])
            state_data = run.state.encode()  # hashes the dirty pages and clears `dirty`
            if executed == interval:
                checkpoints.append(Checkpoint(state_data, dict(pages)))
            if progress is not None:
                progress(done)
        return cls(interval, checkpoints, run.state.encode(), runner or Machine.run)

    # ------------------------------------------------------------------ queries

    def machine_at(self, step: int) -> Machine:
        """A machine in the state after `step` steps of the run (step counted from the trace start)."""
        if step < 0:
            raise VmError(f"step {step} is negative")
        if step > self.steps and not self.exited:
            raise VmError(f"step {step} is past the end of a trace of {self.steps} steps that did not exit")
        step = min(step, self.steps)
        checkpoint = self.checkpoints[min(step // self.interval, len(self.checkpoints) - 1)]
        machine = Machine(State.decode(checkpoint.state_data), self._memory(checkpoint.pages))
        start = step - (step // self.interval) * self.interval
        if start and self.runner(machine, start) != start:
            raise VmError(f"replay to step {step} ended early: the checkpoints do not match the run")
        return machine

    def state_at(self, step: int) -> bytes:
        """The 226-byte state encoding after `step` steps (the final state past the end)."""
        if step >= self.steps and self.exited:
            return self.final_state
        return self.machine_at(step).state.encode()

    def state_hash_at(self, step: int) -> bytes:
        return keccak(self.state_at(step))

    def witness_at(self, step: int) -> tuple[bytes, bytes]:
        """The pre-state encoding at `step` and the 1792-byte proof of the instruction executed
        from it (past the end: the exited final state and zero proofs)."""
        if step >= self.steps and self.exited:
            return self.final_state, bytes(STEP_PROOF_SIZE)
        machine = self.machine_at(step)
        return machine.state.encode(), step_proof(machine.state, machine.memory)

    def _memory(self, pages: dict[int, bytes]) -> Memory:
        roots = self._page_roots
        for page in pages.values():
            if page not in roots:
                roots[page] = page_root(page)
        return Memory.from_pages(pages, {index: roots[page] for index, page in pages.items()})

    # ------------------------------------------------------------------ files

    def save(self, directory: str | Path) -> None:
        """Write the checkpoints into `directory` (created): trace.json and one snapshot per checkpoint."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        previous: dict[int, bytes] = {}
        names = []
        for number, checkpoint in enumerate(self.checkpoints):
            changed = [
                (index, page)
                for index, page in checkpoint.pages.items()
                if previous.get(index, _ZERO_PAGE) is not page and previous.get(index, _ZERO_PAGE) != page
            ]
            name = f"checkpoint-{number:06d}.snap"
            (directory / name).write_bytes(encode_snapshot(checkpoint.state_data, changed))
            names.append(name)
            previous = checkpoint.pages
        index = {
            "format": "vm-trace-1",
            "interval": self.interval,
            "steps": self.steps,
            "exited": self.exited,
            "final_state": self.final_state.hex(),
            "checkpoints": names,
        }
        (directory / INDEX_FILE).write_text(json.dumps(index, indent=1) + "\n")

    @classmethod
    def load(cls, directory: str | Path, runner: Runner = Machine.run) -> Trace:
        """The trace saved by `save`; SnapshotError for missing or inconsistent files."""
        directory = Path(directory)
        try:
            index = json.loads((directory / INDEX_FILE).read_text())
            names = index["checkpoints"]
            interval = int(index["interval"])
            final_state = bytes.fromhex(index["final_state"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SnapshotError(f"{directory / INDEX_FILE}: not a readable trace index ({exc})") from None
        if index.get("format") != "vm-trace-1" or not names:
            raise SnapshotError(f"{directory / INDEX_FILE}: not a vm-trace-1 index with checkpoints")
        checkpoints = []
        pages: dict[int, bytes] = {}
        for name in names:
            path = directory / name
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise SnapshotError(f"{path}: cannot read ({exc.strerror})") from None
            state_data, changed = decode_snapshot(data, str(path))
            pages = {**pages, **changed}
            checkpoints.append(Checkpoint(state_data, pages))
        trace = cls(interval, checkpoints, final_state, runner)
        if trace.steps != index["steps"]:
            raise SnapshotError(
                f"{directory / INDEX_FILE}: {index['steps']} steps, the states say {trace.steps}"
            )
        return trace
