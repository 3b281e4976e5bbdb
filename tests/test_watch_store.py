"""The watcher's content-addressed store and re-execution of a graph task (multi-phase games):
`prover golden --store` puts the single-node program, the input and the model file, with the tile
size under the task's modelRoot; re-executing the task from the store gives the graph run's claim
(G_n after n nodes); a store lacking a part, a malformed entry, or data that lays out as another
task are each one clear error, and nothing is run."""

import json
from pathlib import Path

import pytest
from watch_helpers import graph_task

from prover.errors import ProverError
from prover.task.guest.build import NODE_ELF
from prover.watch.reexec import reexecute
from prover.watch.store import MissingData, Store


def _roots(basedir: Path) -> tuple[bytes, bytes, bytes]:
    record = json.loads((basedir / "graph.json").read_text())
    return tuple(bytes.fromhex(record[name][2:]) for name in ("program_root", "input_root", "model_root"))


def test_a_graph_task_from_the_store_re_executes_to_its_claim(tmp_path_factory, tmp_path):
    store = Store(tmp_path / "store")
    task = graph_task(tmp_path_factory, store.directory, tmp_path / "task")
    record = json.loads((task / "graph.json").read_text())
    roots = _roots(task)
    data = store.task(*roots)
    assert data.tile_macs == record["tile_macs"] and data.program.read_bytes() == NODE_ELF.read_bytes()
    assert data.data == bytes.fromhex(record["input"][2:])
    execution = reexecute(roots, tmp_path / "run", lambda: store.task(*roots))
    assert ("0x" + execution.final_hash.hex(), execution.steps) == (
        record["final_state"],
        record["node_count"],
    )
    assert execution.predicted_class == record["class"]
    # Found again, not run again, by a watcher started anew.
    again = reexecute(roots, tmp_path / "run", lambda: pytest.fail("fetched again"))
    assert again == execution


def test_a_store_that_cannot_give_the_graph_task_says_what_is_wrong(tmp_path_factory, tmp_path):
    store = Store(tmp_path / "store")
    task = graph_task(tmp_path_factory, store.directory, tmp_path / "task")
    program_root, input_root, model_root = _roots(task)
    entry = store.directory / f"0x{model_root.hex()}.graph"
    model = store.directory / f"{json.loads(entry.read_text())['model']}.region"
    model.rename(model.with_suffix(".away"))
    with pytest.raises(MissingData, match=r"has no model 0x[0-9a-f]{64}$"):
        store.task(program_root, input_root, model_root)
    model.with_suffix(".away").rename(model)
    # Another input under the task's input root: the task laid out from it has other roots.
    other = graph_task(
        tmp_path_factory, Store(tmp_path / "other").directory, tmp_path / "other-task", data_bytes=bytes(784)
    )
    wrong_input = (tmp_path / "other" / f"0x{_roots(other)[1].hex()}.region").read_bytes()
    (store.directory / f"0x{input_root.hex()}.region").write_bytes(wrong_input)
    with pytest.raises(ProverError, match=r"^the store's data for input_root 0x[0-9a-f]+ lays out as 0x"):
        reexecute(_roots(task), tmp_path / "run", lambda: store.task(program_root, input_root, model_root))
    assert not (tmp_path / "run" / "graph.json").exists() or "final_state" not in json.loads(
        (tmp_path / "run" / "graph.json").read_text()
    )
    entry.write_text("{not json")
    with pytest.raises(ProverError, match=r"not a graph model entry of the store"):
        store.task(program_root, input_root, model_root)
