"""Where the watcher re-executes tasks: by default a local process pool (this file); with --ray, a
Ray cluster (prover/watch/ray_pool.py). Both keep what a game needs of a run (its trace) and answer
the watcher the same way: `start` a task's run, ask for its `result` until it is there, then play
from its `trace`, and `release` it once no game can come for it."""

import ctypes
import ctypes.util
import fcntl
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Protocol

from prover.errors import ProverError
from prover.game.agent import Trace
from prover.game.party import load_run
from prover.watch.reexec import Execution, Roots, reexecute, task_key
from prover.watch.store import Store


class Pool(Protocol):
    def start(self, roots: Roots) -> None:
        """Start the run of the task `roots` unless it is under way or done."""
        ...

    def result(self, roots: Roots) -> Execution | None:
        """The run's result; None while it runs; its ProverError (MissingData: the store lacks the
        task's data) if it failed, after which `start` tries again."""
        ...

    def trace(self, roots: Roots) -> Trace:
        """The finished run's trace, to play a game from."""
        ...

    def release(self, roots: Roots) -> None:
        """Forget the run's trace (no game can come for it any more)."""
        ...

    def close(self) -> None: ...


PR_SET_PDEATHSIG = 1  # prctl(2)


def _die_with_parent(watcher: int) -> None:
    """A worker ends with its watcher (pid `watcher`): a watcher killed with -9 leaves no worker
    running on (its task directory's lock would keep the next watcher's worker waiting). Linux's
    parent-death signal, and a look at the parent's pid every second (a watcher killed while the
    worker was still starting is gone before the signal could be asked for)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch_parent() -> None:
        while os.getppid() == watcher:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch_parent, daemon=True).start()


def _run_task(store_dir: Path, roots: Roots, workdir: Path) -> Execution:
    """A worker process's job (a top-level function: the pool pickles it). The task's directory is
    locked while it runs: a worker of a watcher killed with -9 may still be running there when
    the watcher, started again, asks for the same task; the second one waits, then finds the run."""
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return reexecute(roots, workdir, partial(Store(store_dir).task, *roots))


class LocalPool:
    """Runs on `workers` local processes, each task in BASEDIR/tasks/<key>/ (a run survives the
    watcher: started again, it finds the run there and checks it instead of running it anew). The
    traces are loaded from there, in the watcher's process, when a game needs one."""

    def __init__(self, store: Store, tasks_dir: Path, workers: int) -> None:
        self.store = store
        self.tasks_dir = tasks_dir
        # Spawned, not forked: the watcher has threads (its status server) when it starts workers.
        self.executor = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )
        self.futures: dict[str, Future] = {}
        self.traces: dict[str, Trace] = {}
        self.report: Callable[[str], None] = lambda _: None

    def workdir(self, roots: Roots) -> Path:
        return self.tasks_dir / task_key(roots)

    def start(self, roots: Roots) -> None:
        key = task_key(roots)
        if key not in self.futures:
            self.futures[key] = self.executor.submit(
                _run_task, self.store.directory, roots, self.workdir(roots)
            )

    def result(self, roots: Roots) -> Execution | None:
        key = task_key(roots)
        future = self.futures[key]
        if not future.done():
            return None
        error = future.exception()
        if error is None:
            return future.result()
        del self.futures[key]
        if isinstance(error, ProverError):
            raise error
        raise ProverError(f"re-executing task {key} failed: {type(error).__name__}: {error}") from error

    def trace(self, roots: Roots) -> Trace:
        key = task_key(roots)
        if key not in self.traces:
            self.traces[key] = load_run(self.workdir(roots), self.report)[1]
        return self.traces[key]

    def release(self, roots: Roots) -> None:
        self.traces.pop(task_key(roots), None)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
