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

from vm.errors import SnapshotError, VmError
from vm.files import write_atomically
from vm.hashing import keccak
from vm.machine import Machine
from vm.memory import PAGE_SIZE, Memory, page_root
from vm.snapshot import decode_snapshot, encode_snapshot
from vm.state import State
from vm.witness import STEP_PROOF_SIZE, step_proof

DEFAULT_INTERVAL = 20_000
INDEX_FILE = "trace.json"
INDEX_FORMAT = "vm-trace-2"
_ZERO_PAGE = bytes(PAGE_SIZE)


@dataclass(frozen=True)
class Checkpoint:
    state_data: bytes  # the 226-byte state encoding at step `index * interval`
    pages: dict[int, bytes]  # every page of memory (shared page objects)


# runner(machine, n) runs n steps (fewer if the machine exits) and returns the steps run. The native
# executor by default: its states are bit-identical to the reference stepper's (tests/test_vm_native.py).
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
        `interval` steps. `runner` runs the chunks and later replays (default: Machine.run, the
        native executor). `progress(steps)` is called per checkpoint."""
        if interval < 1:
            raise VmError(f"checkpoint interval {interval} must be at least 1")
        run = machine.copy()
        runner = runner or Machine.run
        memory = run.memory
        pages = {index: bytes(page) for index, page in memory.pages.items()}
        checkpoints = [Checkpoint(run.state.encode(), dict(pages))]
        done = 0
        while not run.state.exited and (max_steps is None or done < max_steps):
            chunk = interval if max_steps is None else min(interval, max_steps - done)
            executed = runner(run, chunk)
            done += executed
            for index in memory.dirty:
                pages[index] = bytes(memory.pages[index])
            state_data = run.state.encode()  # hashes the dirty pages and clears `dirty`
            if executed == interval:
                checkpoints.append(Checkpoint(state_data, dict(pages)))
            if progress is not None:
                progress(done)
        return cls(interval, checkpoints, run.state.encode(), runner)

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
        return _memory(pages, self._page_roots)

    # ------------------------------------------------------------------ files

    def save(self, directory: str | Path) -> None:
        """Write the checkpoints into `directory` (created): one snapshot per checkpoint, then
        trace.json, every file atomically (the index last: with it, the trace is whole)."""
        directory = Path(directory)
        self._write_checkpoints(directory, 0)
        write_atomically(directory / INDEX_FILE, (json.dumps(self._index(), indent=1) + "\n").encode())

    def _write_checkpoints(self, directory: Path, first: int) -> None:
        """The snapshot files of checkpoints `first`.. (each holds the pages changed since the
        previous checkpoint, zero pages included, so that a page cleared in between is restored)."""
        previous = self.checkpoints[first - 1].pages if first else {}
        for number in range(first, len(self.checkpoints)):
            checkpoint = self.checkpoints[number]
            changed = [
                (index, page)
                for index, page in checkpoint.pages.items()
                if previous.get(index, _ZERO_PAGE) is not page and previous.get(index, _ZERO_PAGE) != page
            ]
            write_atomically(
                directory / checkpoint_name(number), encode_snapshot(checkpoint.state_data, changed)
            )
            previous = checkpoint.pages

    def _index(self) -> dict[str, object]:
        """trace.json: the run's figures, each checkpoint's file and the hash of the state it
        holds (recorded as it is written, checked whenever it is read), and a checksum of all that."""
        index: dict[str, object] = {
            "format": INDEX_FORMAT,
            "interval": self.interval,
            "steps": self.steps,
            "exited": self.exited,
            "final_state": self.final_state.hex(),
            "checkpoints": [
                {"file": checkpoint_name(number), "state_hash": keccak(checkpoint.state_data).hex()}
                for number, checkpoint in enumerate(self.checkpoints)
            ],
        }
        return {**index, "checksum": _checksum(index)}

    @classmethod
    def load(
        cls,
        directory: str | Path,
        runner: Runner = Machine.run,
        start: Machine | None = None,
        report: Callable[[str], None] | None = None,
    ) -> Trace:
        """The trace saved by `save`, every checkpoint checked: its state against the hash the
        index recorded, its pages against that state's memRoot. SnapshotError for an unreadable
        index, or for a checkpoint that fails its check when there is no `start`.

        With `start`, the machine the run began from (already checked by the caller), a
        checkpoint that fails is recomputed with the rest of the run from the last good one (or
        from `start`), its files rewritten, and `report` told in one line."""
        directory = Path(directory)
        index = read_index(directory)
        interval = int(index["interval"])
        final_state = bytes.fromhex(index["final_state"])
        recorded = [bytes.fromhex(entry["state_hash"]) for entry in index["checkpoints"]]
        checkpoints: list[Checkpoint] = []
        roots: dict[bytes, bytes] = {}
        problem = None
        for number, expected in enumerate(recorded):
            path = directory / checkpoint_name(number)
            try:
                checkpoint = _read_checkpoint(path, checkpoints[-1].pages if checkpoints else {})
                _check_checkpoint(path, checkpoint, expected, roots)
            except SnapshotError as exc:
                problem = str(exc)
                break
            checkpoints.append(checkpoint)
        if problem is not None:
            if start is None:
                raise SnapshotError(problem)
            base = f"checkpoint {len(checkpoints) - 1}" if checkpoints else "the start"
            checkpoints = _recompute(
                checkpoints, start, interval, recorded, final_state, runner, directory, roots
            )
            if report is not None:
                report(f"{problem}; recomputed from {base}")
        trace = cls(interval, checkpoints, final_state, runner)
        if trace.steps != index["steps"]:
            raise SnapshotError(
                f"{directory / INDEX_FILE}: {index['steps']} steps, the states say {trace.steps}"
            )
        trace._page_roots = roots
        return trace


def checkpoint_name(number: int) -> str:
    return f"checkpoint-{number:06d}.snap"


def _checksum(index: dict[str, object]) -> str:
    return keccak(json.dumps(index, sort_keys=True).encode()).hex()


def read_index(directory: Path) -> dict:
    """trace.json, checked against its checksum; SnapshotError if missing, malformed or changed."""
    path = directory / INDEX_FILE
    try:
        index = json.loads(path.read_text())
        body = {key: value for key, value in index.items() if key != "checksum"}
        intact = index.get("format") == INDEX_FORMAT and index.get("checksum") == _checksum(body)
        if intact:
            int(index["interval"]), bytes.fromhex(index["final_state"])
            [bytes.fromhex(entry["state_hash"]) for entry in index["checkpoints"]]
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no trace index") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"{path}: not a readable trace index ({type(exc).__name__})") from None
    if not intact or not index["checkpoints"]:
        raise SnapshotError(f"{path}: not an intact {INDEX_FORMAT} index (its checksum does not match)")
    return index


def _read_checkpoint(path: Path, previous: dict[int, bytes]) -> Checkpoint:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read ({exc.strerror})") from None
    state_data, changed = decode_snapshot(data, str(path))
    return Checkpoint(state_data, {**previous, **changed})


def _memory(pages: dict[int, bytes], roots: dict[bytes, bytes]) -> Memory:
    """Memory holding `pages`, their roots taken from (and added to) `roots`, a cache by content."""
    for page in pages.values():
        if page not in roots:
            roots[page] = page_root(page)
    return Memory.from_pages(pages, {index: roots[page] for index, page in pages.items()})


def _check_checkpoint(path: Path, checkpoint: Checkpoint, expected: bytes, roots: dict[bytes, bytes]) -> None:
    """The checkpoint's state is the one the index recorded and its pages hash to its memRoot."""
    if keccak(checkpoint.state_data) != expected:
        raise SnapshotError(f"{path}: its state is not the one the trace index recorded")
    if _memory(checkpoint.pages, roots).merkle_root() != State.decode(checkpoint.state_data).mem_root:
        raise SnapshotError(f"{path}: its pages do not hash to its state's memRoot")


def _recompute(
    good: list[Checkpoint],
    start: Machine,
    interval: int,
    recorded: list[bytes],
    final_state: bytes,
    runner: Runner,
    directory: Path,
    roots: dict[bytes, bytes],
) -> list[Checkpoint]:
    """The checkpoints after the `good` ones run again from the last good one (or from `start`),
    checked against the recorded hashes and the final state, and their files rewritten."""
    if good:
        base = Machine(State.decode(good[-1].state_data), _memory(good[-1].pages, roots))
    else:
        base = start
        if keccak(start.state.encode()) != recorded[0]:
            raise SnapshotError(f"{directory / INDEX_FILE}: the run did not start from the given machine")
    run = Trace.record(base, interval=interval, runner=runner)
    checkpoints = good + run.checkpoints[1 if good else 0 :]
    states = [keccak(checkpoint.state_data) for checkpoint in checkpoints]
    if states != recorded or run.final_state != final_state:
        raise SnapshotError(f"{directory}: the run computed again is not the recorded one")
    Trace(interval, checkpoints, final_state, runner)._write_checkpoints(directory, len(good))
    return checkpoints
