"""A party's graph run kept on disk (BASEDIR/graph.values, its digest in the sealed graph.json): a
generation claim's run, assembled from the decode, is the trace computed from scratch; the
commands that read the run take it from the file, a damaged or missing file is computed again
(said in one line) and kept again; and a dishonest run reuses the honest run's nodes before its
fault node only, giving the trace computed from scratch with that fault (the outputs of nodes that
only move their inputs' elements are not in the file: they are moved again, a fault included)."""

import os
from pathlib import Path

import numpy as np
import pytest

from prover.model.graph import Op
from prover.model.llama import LlamaConfig, llama_graph, random_weights
from prover.model.modelfile import load_model, save_model
from prover.model.quantize import quantize
from prover.task.basedir import GRAPH_JSON, GRAPH_VALUES
from prover.task.commitments import task_graph
from prover.task.generation import claim_window, write_generation_claim
from prover.task.graph_run import load_graph_run, read_graph_task, run_graph
from prover.task.graph_trace import GraphTrace, trace_graph

CONFIG = LlamaConfig(vocab=40, dim=32, layers=2, heads=4, kv_heads=2, ffn_dim=48, context=64)
PROMPT = [3, 1, 4, 1, 5]
TILE_MACS = 128  # every LINEAR tiled


@pytest.fixture(scope="module")
def claim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    f32 = llama_graph(CONFIG, random_weights(CONFIG, seed=5), 12)
    calibration = np.random.default_rng(6).integers(0, CONFIG.vocab, (24, 12)).astype(np.int32)
    root = tmp_path_factory.mktemp("values")
    save_model(quantize(f32, calibration), root / "llama.ggml")
    record = write_generation_claim(root / "party", root / "llama.ggml", PROMPT, 4, tile_macs=TILE_MACS)
    return root / "llama.ggml", root / "party", record


def scratch(model: Path, tokens: list[int], fault_node: int | None = None) -> GraphTrace:
    graph = task_graph(load_model(model), TILE_MACS)
    return trace_graph(graph, claim_window(PROMPT, tokens, 12).astype(">i4").tobytes(), fault_node)


def same(a: GraphTrace, b: GraphTrace) -> None:
    assert a.states == b.states and a.commitments == b.commitments
    for x, y in zip(a.values, b.values, strict=True):
        assert (x is None) == (y is None)
        assert x is None or np.array_equal(x, y)


def test_the_claims_run_is_kept_and_read_back(claim: tuple[Path, Path, dict]) -> None:
    model, basedir, record = claim
    warnings: list[str] = []
    run = load_graph_run(basedir, warnings.append)
    assert not warnings
    same(run.trace, scratch(model, record["tokens"]))
    assert len(run.graph.nodes) > 2 * CONFIG.layers * 7  # tiled


def test_a_damaged_or_missing_file_is_computed_again(claim: tuple[Path, Path, dict]) -> None:
    model, basedir, record = claim
    path = basedir / GRAPH_VALUES
    good = path.read_bytes()
    for damage in (
        lambda: path.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:]),
        lambda: path.write_bytes(good[: len(good) // 2]),
        lambda: path.write_bytes(b""),  # what a crash of the machine may leave (it is not flushed to disk)
        path.unlink,
    ):
        damage()
        warnings: list[str] = []
        run = load_graph_run(basedir, warnings.append)
        assert len(warnings) == 1 and "computed again" in warnings[0]
        same(run.trace, scratch(model, record["tokens"]))
        assert path.read_bytes() == good


def test_a_dishonest_run_reuses_only_the_honest_nodes(claim: tuple[Path, Path, dict], tmp_path: Path) -> None:
    model, basedir, record = claim
    nodes = read_graph_task(basedir, print)["node_count"]
    graph = task_graph(load_model(model), TILE_MACS)
    moving = [next(i for i, n in enumerate(graph.nodes, 1) if n.op == op) for op in (Op.CONCAT, Op.RESHAPE)]
    # each run starts from a dishonest one; a moving node's output is not in the file, its fault is
    for fault_node in (nodes // 2, 3, *moving):
        run = run_graph(basedir, fault_node, progress=False)
        assert run["fault_node"] == fault_node
        same(load_graph_run(basedir).trace, scratch(model, record["tokens"], fault_node))
    run_graph(basedir, None, progress=False)
    same(load_graph_run(basedir).trace, scratch(model, record["tokens"]))


def test_only_graph_json_is_flushed_to_disk(
    claim: tuple[Path, Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """graph.values is derived and checked against graph.json's values_digest before use (above),
    so its write leaves out the flush to disk (a tenth of a 7 B claim's overhead); graph.json,
    which holds the claim, is flushed."""
    _, basedir, _ = claim
    flushed: list[str] = []
    fsync = os.fsync

    def recording(descriptor: int) -> None:
        flushed.append(Path(os.readlink(f"/proc/self/fd/{descriptor}")).name)
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording)
    run_graph(basedir, None, progress=False)
    assert any(name.startswith(f".{GRAPH_JSON}.") for name in flushed)
    assert not any(GRAPH_VALUES in name for name in flushed)
