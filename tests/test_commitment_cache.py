"""The commitment cache (prover/task/commitment_cache.py): a model's commitment is computed once per
model file and tile size, found again by content (a copy of the file too), and checked on load: a
stale, truncated or corrupted cache file is one warning line, and the commitment is recomputed and
written again; a cache that cannot be written is one warning line, never an error."""

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from dispute_helpers import MODELS, ok, prover_here

from prover.model.data import sample_digit
from prover.model.graph import Attr
from prover.model.modelfile import load_model
from prover.model.tiling import tile_graph
from prover.task import commitment_cache
from prover.task.commitment_cache import HEADER, SCHEME_SOURCES, cache_dir, cached_commitment, file_digest
from prover.task.commitments import ModelCommitment, commit_model

TILE = 1 << 18


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROVER_COMMITMENT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class Counted:
    """commit_model of a graph, counting the calls; and the warnings given."""

    def __init__(self, path: Path, tile: int = TILE) -> None:
        self.path, self.tile = path, tile
        self.model = load_model(path)
        self.graph = tile_graph(self.model, tile)
        self.computed = 0
        self.warnings: list[str] = []

    def compute(self) -> ModelCommitment:
        self.computed += 1
        return commit_model(self.graph)

    def __call__(self, task_root: bytes | None = None, beside: bool = False) -> ModelCommitment:
        return cached_commitment(
            self.path,
            self.model,
            self.graph,
            self.tile,
            self.warnings.append,
            self.compute,
            task_root,
            beside=beside,
        )


def same(a: ModelCommitment, b: ModelCommitment) -> bool:
    return (a.node_roots, a.positions, a.model_root, a.nodes_root) == (
        b.node_roots,
        b.positions,
        b.model_root,
        b.nodes_root,
    )


def the_cache_file(cache: Path) -> Path:
    (found,) = cache.glob("*.commit")
    return found


def test_computed_once_then_read_back_by_content(cache: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.ggml"
    shutil.copy(MODELS["mlp"], model)
    first = Counted(model)
    expected = commit_model(first.graph)
    assert same(first(), expected) and first.computed == 1
    assert same(first(), expected) and first.computed == 1  # from the cache
    copy = tmp_path / "copy.ggml"
    shutil.copy(model, copy)
    again = Counted(copy)
    assert same(again(), expected) and again.computed == 0  # the same content: the same cache file
    other_tile = Counted(model, tile=1 << 16)
    assert other_tile().model_root != expected.model_root and other_tile.computed == 1
    assert first.warnings == again.warnings == other_tile.warnings == []
    assert len(list(cache.glob("*.commit"))) == 2


def test_a_changed_model_file_is_not_taken_for_the_old_one(cache: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.ggml"
    shutil.copy(MODELS["mlp"], model)
    Counted(model)()
    shutil.copy(MODELS["lenet5"], model)  # another content at the same path (the stat index is stale)
    changed = Counted(model)
    assert same(changed(), commit_model(changed.graph)) and changed.computed == 1
    assert changed.warnings == []  # another digest: another cache file, nothing stale was read


def test_a_cache_of_another_model_graph_is_not_taken(cache: Path, tmp_path: Path) -> None:
    """The same model file and tile size, but its graph read otherwise (another version of the
    reader, say): its own cache file, never the other's commitment, which would pass every check
    of the file and still be another modelRoot."""
    model = tmp_path / "m.ggml"
    shutil.copy(MODELS["mlp"], model)
    first = Counted(model)
    first()
    other = Counted(model)
    other.model.nodes[0].attrs = {**other.model.nodes[0].attrs, Attr.Y_ZP: 1}  # as another reader would
    other.graph = tile_graph(other.model, other.tile)
    assert same(other(), commit_model(other.graph)) and other.computed == 1 and other.warnings == []
    assert len(list(cache.glob("*.commit"))) == 2


@pytest.mark.parametrize(
    "source", ["model/modelfile.py", "model/tiling.py", "model/answer.py", "task/node.py", "task/merkle.c"]
)
def test_a_cache_of_another_version_of_the_task_code_is_not_taken(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    """The task graph is a function of the model graph, the tile size and the code that tiles it
    and lays out node files: another version of that code (here: one more line in `source`) has
    its own cache file, though the model graph is the same."""
    model = tmp_path / "m.ggml"
    shutil.copy(MODELS["mlp"], model)
    Counted(model)()
    changed = tmp_path / Path(source).name
    changed.write_bytes(next(s for s in SCHEME_SOURCES if s.as_posix().endswith(source)).read_bytes() + b"\n")
    monkeypatch.setattr(
        commitment_cache,
        "SCHEME_SOURCES",
        tuple(changed if s.as_posix().endswith(source) else s for s in SCHEME_SOURCES),
    )
    other = Counted(model)
    assert same(other(), commit_model(other.graph)) and other.computed == 1 and other.warnings == []
    assert len(list(cache.glob("*.commit"))) == 2


@pytest.mark.parametrize(
    "damage", ["flip a root byte", "truncate", "forge a root and its checksum", "swap header"]
)
def test_a_damaged_cache_file_is_one_warning_and_recomputed(cache: Path, tmp_path: Path, damage: str) -> None:
    model = tmp_path / "m.ggml"
    shutil.copy(MODELS["mlp"], model)
    counted = Counted(model)
    expected = counted()
    path = the_cache_file(cache)
    data = bytearray(path.read_bytes())
    if damage == "flip a root byte":
        data[HEADER.size + 40] ^= 1
    elif damage == "truncate":
        data = data[: HEADER.size + 10]
    elif damage == "forge a root and its checksum":
        # A consistent checksum over a changed root: the rebuilt nodes tree does not give modelRoot.
        from vm.hashing import keccak

        data[HEADER.size] ^= 1
        data[HEADER.size - 32 : HEADER.size] = keccak(bytes(data[HEADER.size :]))
    else:
        other = Counted(MODELS["lenet5"])
        other()
        lenet = next(p for p in cache.glob("*.commit") if p != path)
        data = bytearray(lenet.read_bytes())
    path.write_bytes(bytes(data))
    assert same(counted(), expected) and counted.computed == 2
    assert len(counted.warnings) == 1 and str(path) in counted.warnings[0]
    assert "re-deriving it" in counted.warnings[0]
    assert same(counted(), expected) and counted.computed == 2  # written again: good from now on
    assert len(counted.warnings) == 1


def test_a_cache_that_cannot_be_written_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("PROVER_COMMITMENT_CACHE", str(blocked / "cache"))
    counted = Counted(MODELS["mlp"])
    assert same(counted(), commit_model(counted.graph))
    assert len(counted.warnings) == 1 and "cannot write the commitment cache" in counted.warnings[0]


def test_the_commands_use_it_and_repair_it_with_one_line(cache: Path, tmp_path: Path) -> None:
    digit = sample_digit(0)
    task = ("--model", str(MODELS["mlp"]), "--data", str(digit), "--basedir", str(tmp_path / "a"))
    ok(prover_here("golden", *task))
    path = the_cache_file(cache)
    assert path.parent == cache_dir()
    made = path.stat().st_mtime_ns
    ran = ok(prover_here("run", "--basedir", str(tmp_path / "a")))
    assert "warning" not in ran.err and path.stat().st_mtime_ns == made  # read, not written again
    path.write_bytes(path.read_bytes()[:-1])
    repaired = ok(prover_here("run", "--basedir", str(tmp_path / "a")))
    warnings = [line for line in repaired.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "commitment cache" in warnings[0] and "re-deriving it" in warnings[0]
    assert repaired.out.splitlines()[-1] == "class 7"


def test_an_unchanged_file_is_not_read_again_for_its_digest(cache: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.ggml"
    shutil.copy(MODELS["mlp"], model)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert file_digest(model) == digest and not list(cache.glob("path-*"))  # just written: racy
    os.utime(model, ns=(10**18, 10**18))
    assert file_digest(model) == digest
    (index,) = cache.glob("path-*")
    index.write_text(index.read_text().replace(digest, "ab" * 32))
    assert file_digest(model) == "ab" * 32  # the stat matches: the index is believed
    os.utime(model, ns=(10**18 + 1, 10**18 + 1))
    assert file_digest(model) == digest  # another stat: the file is read again
