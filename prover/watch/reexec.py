"""Re-executing a claim's task: its data fetched from the store by the task's roots, then
- a single-phase task: its golden image laid out and run in the VM with checkpoints;
- a graph task (multi-phase games): its graph.json laid out (the model tiled and committed per
  node) and its graph run computed natively, as `prover golden` and `prover run` do for a party;
  the VM runs of single nodes are made later, by the game that reaches one (prover/game/multiphase.py);
in a directory of its own. Runs in a worker (a process of the local pool, or a Ray actor:
prover/watch/pool.py, prover/watch/ray_pool.py).

The directory is the task's, shared by every claim on it, and resumable: final.json (graph.json
with its claim) is written last (atomically), so a run killed before it is simply run again; one
that has it is reused (a single-phase run checked file by file, prover/task/verified.py; a graph
run is recomputed and checked when a game loads its trace, prover/game/party.py)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eth_hash.auto import keccak

from prover.errors import ProverError
from prover.files import write_atomically
from prover.model.modelfile import load_model
from prover.task.basedir import FINAL_JSON, GRAPH_JSON, read_json
from prover.task.graph_run import run_graph, write_graph_task
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


def _graph_execution(graph: dict) -> Execution:
    """A graph run's claim: G_n after n nodes (what a multi-phase claim posts as its final state
    and steps)."""
    return Execution(bytes.fromhex(graph["final_state"][2:]), graph["node_count"], graph["class"])


def _check_roots(task: dict, roots: Roots) -> None:
    for name, root in zip(ROOT_NAMES, roots, strict=True):
        if task[name] != "0x" + root.hex():
            raise ProverError(f"the store's data for {name} 0x{root.hex()} lays out as {task[name]}")


def reexecute(
    roots: Roots, workdir: Path, fetch: Callable[[], TaskData], interval: int = DEFAULT_CHECKPOINT_INTERVAL
) -> Execution:
    """Our run of the task `roots` in `workdir`: found there and checked, or made from the data
    `fetch` brings (the store's MissingData when it lacks some). A ProverError when that data is
    not the task's (its golden image, or its graph task, has other roots)."""
    if (workdir / FINAL_JSON).exists():
        return _execution(verified_run(workdir, lambda _: None).final)
    graph_json = workdir / GRAPH_JSON
    if graph_json.exists():
        graph = read_json(graph_json, "a graph task")
        if "final_state" in graph:
            _check_roots(graph, roots)
            return _graph_execution(graph)
    data = fetch()
    if data.tile_macs is not None:
        return _graph_execution(_run_graph_task(roots, workdir, data.model, data.data, data.tile_macs))
    golden = write_golden(workdir, data.model, data.data, data.program)
    _check_roots(golden, roots)
    return _execution(run_task(workdir, interval, progress=False))


def _run_graph_task(roots: Roots, workdir: Path, model: bytes, data: bytes, tile_macs: int) -> dict:
    """graph.json of the task laid out in `workdir` from the model file's bytes and the input,
    checked against the task's roots, and its run."""
    workdir.mkdir(parents=True, exist_ok=True)
    model_path = workdir / "model.ggml"
    if not model_path.exists() or model_path.read_bytes() != model:
        write_atomically(model_path, model)
    task = write_graph_task(
        workdir, model_path, load_model(model_path), data, tile_macs, lambda _: None, progress=False
    )
    _check_roots(task, roots)
    return run_graph(workdir, warn=lambda _: None, progress=False)
