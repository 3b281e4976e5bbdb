"""The commitment file beside a model (prover/task/commitment_cache.py, `MODEL.tile<T>.commit`):
written by `prover commit`, used by a party whose cache does not hold the commitment, and never
trusted when it is damaged or stale: a flipped bit anywhere, a truncation, the file of another
model, of another tile size, of the model before it changed, or a self-consistent file of another
modelRoot than the task's are each one warning line naming the file; the commitment is computed
again and the file written again."""

import shutil
from pathlib import Path

import pytest
from dispute_helpers import MODELS
from test_commitment_cache import TILE, Counted

from prover.model.modelfile import load_model
from prover.task.commitment_cache import HEADER, commitment_file
from prover.task.commitments import ModelCommitment, PositionTree, commit_model, model_root, node_leaf
from vm.hashing import keccak


class Party(Counted):
    """A party's view of the model at `path`, with its own cache (`cache`)."""

    def __init__(self, path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, tile: int = TILE) -> None:
        super().__init__(path, tile)
        self.cache, self.monkeypatch = cache, monkeypatch

    def commitment(self, task_root: bytes | None = None, beside: bool = False) -> ModelCommitment:
        self.monkeypatch.setenv("PROVER_COMMITMENT_CACHE", str(self.cache))
        return self(task_root, beside)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.ggml"
    shutil.copy(MODELS["mlp"], path)
    return path


def committed(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tile: int = TILE) -> bytes:
    """`prover commit`'s file for `model` (its own cache), and the commitment's modelRoot."""
    party = Party(model, tmp_path / f"commit-cache-{tile}", monkeypatch, tile)
    root = party.commitment(beside=True).model_root
    assert commitment_file(model, tile).exists() and party.computed == 1
    return root


def test_a_party_uses_the_file_beside_the_model(model: Path, tmp_path: Path, monkeypatch) -> None:
    root = committed(model, tmp_path, monkeypatch)
    party = Party(model, tmp_path / "party-cache", monkeypatch)
    assert party.commitment(task_root=root).model_root == root
    assert party.computed == 0 and party.warnings == []
    assert list((tmp_path / "party-cache").glob("*.commit"))  # and cached from it


def damaged(data: bytes, damage: str, model: Path, tmp_path: Path, monkeypatch) -> bytes:
    if damage.startswith("bit "):
        at = {"magic": 0, "digest": 8, "tile": 48, "scheme": 64, "root": 72, "checksum": 104}
        offset = at.get(damage[4:], HEADER.size + 40)  # else a node root
        return data[:offset] + bytes([data[offset] ^ 1]) + data[offset + 1 :]
    if damage == "truncated":
        return data[:-1]
    if damage == "empty":
        return b""
    if damage == "another model":
        other = tmp_path / "lenet.ggml"
        shutil.copy(MODELS["lenet5"], other)
        committed(other, tmp_path, monkeypatch)
        return commitment_file(other, TILE).read_bytes()
    assert damage == "another tile size"
    committed(model, tmp_path, monkeypatch, tile=1 << 16)
    return commitment_file(model, 1 << 16).read_bytes()


@pytest.mark.parametrize(
    "damage",
    [
        "bit magic",
        "bit digest",
        "bit tile",
        "bit scheme",
        "bit root",
        "bit checksum",
        "bit node root",
        "truncated",
        "empty",
        "another model",
        "another tile size",
    ],
)
def test_a_damaged_commitment_file_is_one_warning_and_derived_again(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    root = committed(model, tmp_path, monkeypatch)
    file = commitment_file(model, TILE)
    good = file.read_bytes()
    file.write_bytes(damaged(good, damage, model, tmp_path, monkeypatch))
    party = Party(model, tmp_path / "party-cache", monkeypatch)
    assert party.commitment(task_root=root).model_root == root and party.computed == 1
    assert len(party.warnings) == 1 and str(file) in party.warnings[0]
    assert "commitment file" in party.warnings[0] and "re-deriving it" in party.warnings[0]
    assert file.read_bytes() == good  # written again
    fresh = Party(model, tmp_path / "another-cache", monkeypatch)
    assert fresh.commitment(task_root=root).model_root == root and fresh.computed == 0
    assert fresh.warnings == []


def test_the_file_of_the_model_before_it_changed_is_stale(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed(model, tmp_path, monkeypatch)
    data = bytearray(model.read_bytes())
    graph = load_model(model)
    weights = next(t for t in graph.tensors if t.data is not None and t.data.size > 1000)
    del graph
    offset = data.find(weights.data.tobytes()[:64])  # an int8 tensor: its bytes as they are stored
    data[offset] ^= 1  # another weight: the same structure, another model
    model.write_bytes(bytes(data))
    party = Party(model, tmp_path / "party-cache", monkeypatch)
    assert party.commitment().model_root == commit_model(party.graph).model_root and party.computed == 1
    assert len(party.warnings) == 1 and "another model file" in party.warnings[0]


def test_a_self_consistent_file_of_another_model_root_is_not_trusted(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every check of the file passes (its node roots give its modelRoot, its checksum is right):
    only the task's modelRoot (graph.json's, matched on chain) tells that it is not the model's."""
    root = committed(model, tmp_path, monkeypatch)
    file = commitment_file(model, TILE)
    data = bytearray(file.read_bytes())
    party = Party(model, tmp_path / "party-cache", monkeypatch)
    honest = commit_model(party.graph)
    forged = list(honest.node_roots)
    forged[0] = keccak(b"forged")
    tree = PositionTree()
    for index, node_root in enumerate(forged):
        tree.set(index + 1, node_leaf(node_root, list(honest.positions[index])))
    data[HEADER.size : HEADER.size + 32] = forged[0]
    data[72:104] = model_root(tree.root(), len(forged))
    data[104:136] = keccak(bytes(data[:104]) + bytes(data[136:]))
    file.write_bytes(bytes(data))
    assert Party(model, tmp_path / "other-cache", monkeypatch).commitment().model_root != root  # believed
    assert party.commitment(task_root=root).model_root == root and party.computed == 1
    assert len(party.warnings) == 1 and "is not the task's" in party.warnings[0]
