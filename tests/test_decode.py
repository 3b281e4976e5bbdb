"""The KV-cached decode (prover/model/decode.py) equals the full forward pass bit for bit in int8:
every step's logits are the full pass's rows at the same positions and the cache is the full
pass's K and V tensors there, for the trained byte-level LM (learned positions, multi-head) and an
int8 LLaMA graph (RoPE, grouped-query attention); in f32 the tokens agree. A graph the cached
decode cannot split and a sequence longer than the graph are refused."""

from pathlib import Path

import numpy as np
import pytest

from prover.errors import ProverError
from prover.model import engine
from prover.model.decode import CachedDecoder, rows_are_exact
from prover.model.graph import DType, Graph, Op
from prover.model.llama import LlamaConfig, llama_graph, random_weights
from prover.model.modelfile import load_model
from prover.model.quantize import quantize
from prover.model.tiling import tile_graph, tiled_values

REPO = Path(__file__).resolve().parent.parent
CONFIG = LlamaConfig(vocab=40, dim=32, layers=2, heads=4, kv_heads=2, ffn_dim=48, context=64)


def llama_int8(tokens: int = 16) -> Graph:
    f32 = llama_graph(CONFIG, random_weights(CONFIG, seed=5), tokens)
    calibration = np.random.default_rng(6).integers(0, CONFIG.vocab, (24, tokens)).astype(np.int32)
    return quantize(f32, calibration)


def check_against_full_pass(graph: Graph, prompt: list[int], steps: list[list[int]]) -> None:
    decoder = CachedDecoder(graph)
    sequence = list(prompt)
    rows = [decoder.step(prompt)]
    for ids in steps:
        rows.append(decoder.step(ids))
        sequence += ids
    window = np.array(sequence + [0] * (decoder.context - len(sequence)), np.int32)
    values = engine.activations(graph, window[None])
    full = values[graph.output].reshape(decoder.context, -1)
    assert np.array_equal(np.concatenate(rows), full[: len(sequence)])
    assert decoder.cached
    for tensor, cache in decoder.cache.items():
        axis = decoder.axes[tensor].query
        whole = values[tensor].reshape(graph.tensors[tensor].dims4[::-1])
        assert np.array_equal(cache, np.take(whole, range(len(sequence)), axis=3 - axis))


def test_cached_decode_of_the_trained_lm_is_the_full_pass() -> None:
    graph = load_model(REPO / "models" / "lm_int8.ggml")
    check_against_full_pass(graph, list(b"import os\n\ndef "), [[ord("m")], [ord("a")], list(b"in(")])


def test_cached_decode_of_an_int8_llama_is_the_full_pass() -> None:
    check_against_full_pass(llama_int8(), [3, 1, 4, 1, 5], [[9], [2], [6, 5, 3], [5]])


def test_f32_cached_decode_gives_the_full_pass_tokens() -> None:
    graph = llama_graph(CONFIG, random_weights(CONFIG, seed=7), 12)
    prompt = [1, 2, 3]
    tokens = CachedDecoder(graph).generate(prompt, 6)
    window = np.array(prompt + tokens[:-1] + [0] * 4, np.int32)
    full = engine.run(graph, window[None]).reshape(12, -1)
    assert tokens == [int(np.argmax(full[i])) for i in range(2, 8)]


def test_refusals() -> None:
    decoder = CachedDecoder(llama_int8(8))
    with pytest.raises(ProverError, match="need 9 positions; the model computes 8"):
        decoder.generate([1, 2, 3, 4], 6)
    with pytest.raises(ProverError, match="outside the vocabulary"):
        decoder.generate([40], 1)
    g = Graph()
    g.input = g.add_tensor("ids", DType.I32, (4,))
    x = g.add_node(
        Op.GATHER, [g.input, g.add_tensor("e", DType.F32, (4, 8), np.ones((8, 4)))], "x", DType.F32, (4, 4)
    )
    y = g.add_node(Op.TRANSPOSE, [x], "t", DType.F32, (4, 4), PERM=0b11_10_00_01)
    g.output = g.add_node(Op.RESHAPE, [y], "r", DType.F32, (4, 4))
    with pytest.raises(ProverError, match=r"node 2 \(RESHAPE\): a reshape that does not keep the positions"):
        CachedDecoder(g)


@pytest.mark.parametrize("source", ["llama", "trained"])
def test_a_recording_decode_gives_every_value_of_the_tiled_forward_pass(source: str) -> None:
    """The forward pass a generation claim runs, assembled from a recording decode and carried to
    the tiled graph's tiles: every tensor equals the tiled graph's full pass, for the decoded
    sequence padded with zeros (the padding decoded in one step) and for another sequence (decoded
    afresh)."""
    graph = llama_int8() if source == "llama" else load_model(REPO / "models" / "lm_int8.ggml")
    tiled = tile_graph(graph, 64)
    assert len(tiled.nodes) > len(graph.nodes)
    decoder = CachedDecoder(graph, record=True)
    prompt = [3, 1, 4, 1, 5]
    tokens = decoder.generate(prompt, 4)
    decoded = prompt + tokens[:-1]
    for sequence in (decoded, [*decoded[:-1], (decoded[-1] + 1) % CONFIG.vocab]):
        window = sequence + [0] * (decoder.context - len(sequence))
        want = engine.activations(tiled, np.array(window, np.int32)[None])
        got = tiled_values(tiled, decoder.forward_values(window))
        for tensor, value in enumerate(want):
            if tensor != tiled.input:
                assert (value is None) == (got[tensor] is None)
                assert value is None or np.array_equal(got[tensor], value), tiled.tensors[tensor].name
    with pytest.raises(ProverError, match="all"):
        CachedDecoder(graph).forward_values(window)
    # only integer graphs' rows are the full pass's: an f32 claim is not assembled from its decode
    assert rows_are_exact(graph) and not rows_are_exact(
        llama_graph(CONFIG, random_weights(CONFIG, seed=7), 12)
    )
