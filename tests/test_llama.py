"""LLaMA-architecture graphs (prover/model/llama.py): the f32 graph equals a float64 transcription
of llama.cpp's forward pass (written here from its definition, not from the graph), tied and
untied heads, grouped-query attention; the int8 graph (the project's quantizer) keeps the greedy
tokens and runs bit for bit the same in the engine, the native guest and the VM; bad weights are
refused naming the tensor."""

import math

import numpy as np
import pytest
from test_guest_models import native_guest
from test_guest_vm import run_in_vm

from prover.errors import ProverError
from prover.model import engine
from prover.model.llama import LlamaConfig, llama_graph, random_weights
from prover.model.modelfile import read_model, write_model
from prover.model.quantize import quantize
from prover.task.guest.native import NativeGuest

__all__ = ["native_guest"]  # the fixture, imported for this module

CONFIG = LlamaConfig(
    vocab=48, dim=32, layers=2, heads=4, kv_heads=2, ffn_dim=48, context=64, rope_theta=500.0
)
TOKENS = 12


def reference_logits(config: LlamaConfig, w: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """(T, vocab) logits in float64: llama.cpp's llm_build_llama, term by term."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    t, dh, h, kvh = len(ids), config.head_dim, config.heads, config.kv_heads

    def rmsnorm(x: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + config.rms_eps) * gamma

    def rope(x: np.ndarray) -> np.ndarray:  # (T, heads, dh), adjacent pairs (NORM mode)
        theta = config.rope_theta ** (-np.arange(0, dh, 2) / dh)
        angle = np.arange(t)[:, None, None] * theta
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * np.cos(angle) - b * np.sin(angle)
        out[..., 1::2] = a * np.sin(angle) + b * np.cos(angle)
        return out

    x = w["token_embd.weight"][ids]
    for i in range(config.layers):
        p = f"blk.{i}."
        n = rmsnorm(x, w[p + "attn_norm.weight"])
        q = rope((n @ w[p + "attn_q.weight"].T).reshape(t, h, dh))
        k = rope((n @ w[p + "attn_k.weight"].T).reshape(t, kvh, dh))
        v = (n @ w[p + "attn_v.weight"].T).reshape(t, kvh, dh)
        out = np.empty((t, h, dh))
        for head in range(h):
            kv = head // (h // kvh)
            scores = q[:, head] @ k[:, kv].T / math.sqrt(dh)
            scores[np.triu_indices(t, 1)] = -np.inf
            probs = np.exp(scores - scores.max(-1, keepdims=True))
            out[:, head] = (probs / probs.sum(-1, keepdims=True)) @ v[:, kv]
        x = x + out.reshape(t, -1) @ w[p + "attn_output.weight"].T
        m = rmsnorm(x, w[p + "ffn_norm.weight"])
        gate = m @ w[p + "ffn_gate.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * (m @ w[p + "ffn_up.weight"].T)) @ w[p + "ffn_down.weight"].T
    head_weight = w.get("output.weight", w["token_embd.weight"])
    return rmsnorm(x, w["output_norm.weight"]) @ head_weight.T


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_f32_graph_equals_the_reference(tied: bool) -> None:
    weights = random_weights(CONFIG, seed=1, tied=tied)
    graph = read_model(write_model(llama_graph(CONFIG, weights, TOKENS)))
    ids = np.random.default_rng(2).integers(0, CONFIG.vocab, (3, TOKENS)).astype(np.int32)
    got = engine.run(graph, ids).reshape(3, TOKENS, CONFIG.vocab)
    for row, logits in zip(ids, got, strict=True):
        want = reference_logits(CONFIG, weights, row)
        assert np.abs(logits - want).max() <= 1e-4 * np.abs(want).max()
    assert LlamaConfig.from_metadata(graph.metadata) == CONFIG


def test_int8_graph_keeps_tokens_and_is_bit_exact_in_the_guest_and_vm(native_guest: NativeGuest) -> None:
    weights = random_weights(CONFIG, seed=3)
    f32 = llama_graph(CONFIG, weights, TOKENS)
    ids = np.random.default_rng(4).integers(0, CONFIG.vocab, (48, TOKENS)).astype(np.int32)
    int8 = quantize(f32, ids[:32])
    tests = ids[32:]
    want = engine.run(f32, tests).reshape(len(tests), TOKENS, -1).argmax(-1)
    logits = engine.run(int8, tests)
    got = logits.reshape(len(tests), TOKENS, -1).argmax(-1)
    assert (want == got).mean() >= 0.8
    model = write_model(int8)
    payload = lambda row: int(np.argmax(row)).to_bytes(4, "big") + row.astype(np.int8).tobytes()  # noqa: E731
    for row, values in zip(tests[:2], logits[:2], strict=True):
        result = native_guest.run(model, row.astype(">i4").tobytes())
        assert (result.exit_code, result.output) == (0, payload(values))
    assert run_in_vm(model, tests[0].astype(">i4").tobytes()) == (0, payload(logits[0]))


def test_bad_weights_and_shapes_are_refused() -> None:
    weights = random_weights(CONFIG)
    del weights["blk.1.ffn_up.weight"]
    with pytest.raises(ProverError, match=r"blk\.1\.ffn_up\.weight is missing"):
        llama_graph(CONFIG, weights, 4)
    weights = random_weights(CONFIG)
    weights["blk.0.attn_k.weight"] = weights["blk.0.attn_q.weight"]
    with pytest.raises(ProverError, match=r"blk\.0\.attn_k\.weight has shape \(32, 32\), not \(16, 32\)"):
        llama_graph(CONFIG, weights, 4)
    with pytest.raises(ProverError, match="not a LLaMA shape"):
        LlamaConfig(vocab=8, dim=30, layers=1, heads=4, kv_heads=2, ffn_dim=8)
    with pytest.raises(ProverError, match=r"llama\.embedding_length is missing"):
        LlamaConfig.from_gguf({"llama.block_count": 2}, vocab=8)
    fields = CONFIG.gguf_fields()
    assert LlamaConfig.from_gguf(fields, CONFIG.vocab) == CONFIG
