"""`prover commit MODEL` (docs/cli.md): computes the commitment of the model's graph task once and
stores it beside the model and in the cache; a second call reads it (nothing hashed) and gives the
same modelRoot, which is the one commit_model computes; --force computes it again; a model that is
not a model is one error line."""

import json
import shutil
from pathlib import Path

import pytest
from dispute_helpers import MODELS, ok, prover_here

from prover.model.modelfile import load_model
from prover.task.commitments import commit_model, task_graph


def test_commit_caches_the_commitment_of_the_graph_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVER_COMMITMENT_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "mlp.ggml"  # a copy: its .commit file is written beside it
    shutil.copy(MODELS["mlp"], model)
    first = json.loads(ok(prover_here("commit", str(model), "--json")).out)
    want = commit_model(task_graph(load_model(model)))
    assert first["model_root"] == "0x" + want.model_root.hex() and first["node_count"] == want.node_count
    assert first["bytes"] > first["model_bytes"] * 0.9 and Path(first["cache"]).exists()
    assert first["commitment_file"] == str(tmp_path / "mlp.ggml.tile262144.commit")
    assert Path(first["commitment_file"]).read_bytes() == Path(first["cache"]).read_bytes()
    again = json.loads(ok(prover_here("commit", str(model), "--json")).out)
    assert again["model_root"] == first["model_root"] and again["bytes"] == 0
    forced = json.loads(ok(prover_here("commit", str(model), "--force", "--tile-macs", "4096", "--json")).out)
    assert forced["bytes"] > 0 and forced["node_count"] > first["node_count"]
    assert Path(forced["commitment_file"]).name == "mlp.ggml.tile4096.commit"
    Path(first["cache"]).unlink()
    beside = json.loads(ok(prover_here("commit", str(model), "--json")).out)
    assert beside["model_root"] == first["model_root"] and beside["bytes"] == 0  # read beside the model
    bad = tmp_path / "bad.ggml"
    bad.write_bytes(b"not a model")
    result = prover_here("commit", str(bad))
    assert result.code == 1 and result.err.count("\n") == 1 and "bad magic" in result.err
