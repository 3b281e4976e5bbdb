"""A content-addressed store of tasks' data: each program, model and input under the root the chain
knows it by (a task names only its three region roots). `prover golden --store DIR` puts the task
it lays out there; `prover watch --store DIR` fetches a claim's task by its roots to re-execute it.

    DIR/0x<root>.program   a guest ELF whose program region (slot 0) has that root
    DIR/0x<root>.region    an input's or a model's payload whose data region has that root
    DIR/0x<root>.graph     a graph task's model (multi-phase games): its modelRoot is
                           keccak256(nodesRoot, n) of the tiled model, so the file names the model
                           file's own region root and the tile size: {"model": "0x..", "tile_macs": t}

A file is named by what its content hashes to, so a store can be filled from anywhere: what is
fetched is checked again (the roots of the golden image built from it must be the task's) before
a claim is judged by it (prover/watch/reexec.py)."""

import json
from dataclasses import dataclass
from pathlib import Path

from prover.errors import ProverError
from prover.files import write_atomically
from prover.task.golden import program_root, region_root


@dataclass(frozen=True)
class TaskData:
    """What the store holds of one task: the program's path, the model's and the input's bytes;
    for a graph task (multi-phase games), the tile size its model is committed at."""

    program: Path
    model: bytes
    data: bytes
    tile_macs: int | None = None  # None: a single-phase task (the model's region is the modelRoot)


class MissingData(ProverError):
    """The store lacks some of a task's data (the message names which roots)."""


def _hex(root: bytes) -> str:
    return "0x" + root.hex()


class Store:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _program_path(self, root: bytes) -> Path:
        return self.directory / f"{_hex(root)}.program"

    def _region_path(self, root: bytes) -> Path:
        return self.directory / f"{_hex(root)}.region"

    def put_program(self, program: Path) -> bytes:
        root = program_root(program)
        self._put(self._program_path(root), program.read_bytes())
        return root

    def put_region(self, payload: bytes) -> bytes:
        root = region_root(payload)
        self._put(self._region_path(root), payload)
        return root

    def _graph_path(self, root: bytes) -> Path:
        return self.directory / f"{_hex(root)}.graph"

    def put_task(self, program: Path, model: bytes, data: bytes) -> tuple[bytes, bytes, bytes]:
        """Put a task's three parts; their roots (program, input, model: the task on chain)."""
        return self.put_program(program), self.put_region(data), self.put_region(model)

    def put_graph_task(
        self, program: Path, model: bytes, data: bytes, model_root: bytes, tile_macs: int
    ) -> None:
        """Put a graph task's parts: the single-node program, the input, the model file, and under
        the task's modelRoot (`model_root`, computed by the caller from the tiled model) the
        model file's root with the tile size."""
        self.put_program(program)
        self.put_region(data)
        entry = {"model": _hex(self.put_region(model)), "tile_macs": tile_macs}
        self._put(self._graph_path(model_root), json.dumps(entry, sort_keys=True).encode())

    def _put(self, path: Path, content: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != content:
            write_atomically(path, content)

    def task(self, program_root: bytes, input_root: bytes, model_root: bytes) -> TaskData:
        """The task's data by its roots (a graph task's when the store knows its modelRoot as a
        graph model); MissingData naming every root the store lacks."""
        paths = {
            "program": self._program_path(program_root),
            "input": self._region_path(input_root),
            "model": self._region_path(model_root),
        }
        tile_macs = None
        graph = self._graph_path(model_root)
        if graph.is_file():
            try:
                entry = json.loads(graph.read_text())
                paths["model"] = self._region_path(bytes.fromhex(entry["model"][2:]))
                tile_macs = int(entry["tile_macs"])
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ProverError(f"{graph}: not a graph model entry of the store ({exc})") from None
        missing = [f"{name} {path.name.split('.')[0]}" for name, path in paths.items() if not path.is_file()]
        if missing:
            raise MissingData(f"the store {self.directory} has no {', no '.join(missing)}")
        model = paths["model"].read_bytes()
        return TaskData(paths["program"], model, paths["input"].read_bytes(), tile_macs)
