"""Re-execution on a Ray cluster (`prover watch --ray ADDRESS`; the optional extra `ray`): an actor
per task (the claims on one task share it) runs the task on whichever node Ray places it, and keeps
its trace there. The watcher gets back only the run's result and, while it plays a game, the
state hashes and the one-step witnesses it asks for: the checkpoints never leave the actor's node.

The task's data is read from the store by the watcher and shipped to the actor, so the cluster's
nodes need no shared file system."""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from prover.chain.game_view import GameView, NodeOpening
from prover.errors import ProverError
from prover.game.party import load_run
from prover.watch.reexec import Execution, Roots, reexecute, task_key
from prover.watch.store import Store, TaskData

try:
    import ray
except ImportError:  # the optional extra is not installed: said when --ray is used
    ray = None


class TaskRun:
    """The actor's body: one task's run in a directory of the actor's node, and its trace."""

    def __init__(
        self, roots: Roots, program: bytes, model: bytes, data: bytes, tile_macs: int | None
    ) -> None:
        self.roots = roots
        self.workdir = Path(tempfile.mkdtemp(prefix="prover-watch-task-"))
        self.task = (program, model, data, tile_macs)
        self.trace: Any = None

    def _data(self) -> TaskData:
        program, model, data, tile_macs = self.task
        path = self.workdir / "program.elf"
        path.write_bytes(program)
        return TaskData(path, model, data, tile_macs)

    def run(self) -> Execution:
        execution = reexecute(self.roots, self.workdir / "run", self._data)
        self.trace = load_run(self.workdir / "run", lambda _: None)[1]
        self.task = None  # the run holds the data now
        return execution

    def _phase(self, node: int) -> Any:
        """The trace of a single-phase task (node 0); a graph task's graph trace (node 0) or its
        VM run of node `node` (made here, on the actor's node, the first time it is asked for)."""
        return self.trace if node == 0 else self.trace.node_run(node).trace

    def state_at(self, step: int, node: int = 0) -> bytes:
        return self._phase(node).state_at(step)

    def state_hash_at(self, step: int, node: int = 0) -> bytes:
        return self._phase(node).state_hash_at(step)

    def witness_at(self, step: int, node: int = 0) -> tuple[bytes, bytes]:
        return self._phase(node).witness_at(step)

    def opening(self, node: int) -> NodeOpening:
        return self.trace.opening(node)

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class RemoteTrace:
    """A trace kept by an actor (the prover.game.agent.Trace protocol): each query is a call. For
    a graph task, `node` 0 is its graph trace and node i its VM run of node i."""

    def __init__(self, actor: Any, node: int = 0) -> None:
        self.actor = actor
        self.node = node

    def state_at(self, step: int) -> bytes:
        return ray.get(self.actor.state_at.remote(step, self.node))

    def state_hash_at(self, step: int) -> bytes:
        return ray.get(self.actor.state_hash_at.remote(step, self.node))

    def witness_at(self, step: int) -> tuple[bytes, bytes]:
        return ray.get(self.actor.witness_at.remote(step, self.node))


class RemotePhasedTrace:
    """A graph task's traces kept by an actor (prover.game.agent.PhasedTrace): the graph trace in
    the graph phase, the VM run of the game's node after it; the node's opening built there."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def trace_for(self, game: GameView) -> RemoteTrace:
        return RemoteTrace(self.actor, 0 if game.graph_phase else game.node)

    def opening(self, node: int) -> NodeOpening:
        return ray.get(self.actor.opening.remote(node))


class RayPool:
    """Tasks run by actors on the Ray cluster at `address` ("local": a Ray instance started here
    for this watcher)."""

    def __init__(self, store: Store, address: str) -> None:
        if ray is None:
            raise ProverError("--ray needs the optional extra: pip install 'opml-prover[ray]'")
        self.store = store
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        # An actor holds its trace for the claim's lifetime, and uses a CPU only while it runs.
        self.actor_class = ray.remote(num_cpus=0)(TaskRun)
        self.actors: dict[str, Any] = {}
        self.runs: dict[str, Any] = {}  # the object reference of each actor's run
        self.graph_tasks: set[str] = set()  # the keys of the multi-phase ones

    def start(self, roots: Roots) -> None:
        key = task_key(roots)
        if key in self.runs:
            return
        data = self.store.task(*roots)  # MissingData here, before anything is shipped
        actor = self.actors.get(key) or self.actor_class.remote(
            roots, data.program.read_bytes(), data.model, data.data, data.tile_macs
        )
        self.actors[key] = actor
        self.runs[key] = actor.run.remote()
        if data.tile_macs is not None:
            self.graph_tasks.add(key)

    def result(self, roots: Roots) -> Execution | None:
        key = task_key(roots)
        reference = self.runs[key]
        ready, _ = ray.wait([reference], timeout=0)
        if not ready:
            return None
        try:
            return ray.get(reference)
        except ray.exceptions.RayError as exc:
            del self.runs[key]
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ProverError):
                raise cause from None
            raise ProverError(f"re-executing task {key} on Ray failed: {exc}") from None

    def trace(self, roots: Roots) -> RemoteTrace | RemotePhasedTrace:
        key = task_key(roots)
        actor = self.actors[key]
        return RemotePhasedTrace(actor) if key in self.graph_tasks else RemoteTrace(actor)

    def release(self, roots: Roots) -> None:
        key = task_key(roots)
        self.runs.pop(key, None)
        actor = self.actors.pop(key, None)
        if actor is not None:
            ray.get(actor.close.remote())
            ray.kill(actor)

    def close(self) -> None:
        """Disconnect: the actors (not detached) end with the watcher's session."""
        ray.shutdown()
