"""Re-executing a claim's task: its data fetched from the store by the task's roots, its golden image
laid out and run in the VM with checkpoints, in a directory of its own. Runs in a worker (a
process of the local pool, or a Ray actor: prover/watch/pool.py, prover/watch/ray_pool.py).

The directory is the task's, shared by every claim on it, and resumable: final.json is written
last (atomically), so a run killed before it is simply run again; one that has it is checked file
by file (prover/task/verified.py) and reused."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eth_hash.auto import keccak

from prover.errors import ProverError
from prover.task.basedir import FINAL_JSON
from prover.task.run import DEFAULT_CHECKPOINT_INTERVAL, run_task, write_golden
from prover.task.verified import verified_run
from prover.watch.store import TaskData

Roots = tuple[bytes, bytes, bytes]  # program, input, model: a task as the chain names it
ROOT_NAMES = ("program_root", "input_root", "model_root")


def task_key(roots: Roots) -> str:
    """A short name for a task's directory: the hash of its three roots."""
    return keccak(b"".join(roots)).hex()[:16]


@dataclass(frozen=True)
class Execution:
    """What our own run of a task ends in: what a claim on it is compared with."""

    final_hash: bytes  # SN
    steps: int
    predicted_class: int | None


def _execution(final: dict) -> Execution:
    return Execution(bytes.fromhex(final["SN"][2:]), final["steps"], final["class"])


def reexecute(
    roots: Roots, workdir: Path, fetch: Callable[[], TaskData], interval: int = DEFAULT_CHECKPOINT_INTERVAL
) -> Execution:
    """Our run of the task `roots` in `workdir`: found there and checked, or made from the data
    `fetch` brings (the store's MissingData when it lacks some). A ProverError when that data is
    not the task's (its golden image has other roots)."""
    if (workdir / FINAL_JSON).exists():
        return _execution(verified_run(workdir, lambda _: None).final)
    data = fetch()
    golden = write_golden(workdir, data.model, data.data, data.program)
    for name, root in zip(ROOT_NAMES, roots, strict=True):
        if golden[name] != "0x" + root.hex():
            raise ProverError(f"the store's data for {name} 0x{root.hex()} lays out as {golden[name]}")
    return _execution(run_task(workdir, interval, progress=False))
