"""Transformer models end to end with random weights: the torch modules of
prover.model.importers.torch_transformer through the torch importer and the network description
equal torch in the f32 engine; the quantizer's int8 graph keeps the f32 predictions and runs bit for
bit the same in the engine, the native guest and the VM; the network description rejects shapes
that do not fit, naming the layer."""

import numpy as np
import pytest
from test_guest_models import native_guest
from test_guest_vm import run_in_vm

from prover.errors import ProverError
from prover.model import engine
from prover.model.graph import DType, Graph, Op, f32_bits
from prover.model.modelfile import write_model
from prover.model.network import Conv2D, Linear, Network
from prover.model.quantize import quantize
from prover.model.sequence_layers import (
    ClassToken,
    Embedding,
    LayerNorm,
    PositionalEmbedding,
    TakeToken,
    Tokens,
    TransformerBlock,
)
from prover.task.guest.native import NativeGuest

torch = pytest.importorskip("torch")
from transformer_modules import small_lm, small_vit  # noqa: E402

from prover.model.importers.torch_import import import_torch  # noqa: E402
from prover.model.importers.torch_transformer import CausalLM, VisionTransformer  # noqa: E402

__all__ = ["native_guest"]  # the fixture, imported for this module


@pytest.fixture(scope="module")
def vit() -> VisionTransformer:
    return small_vit()


@pytest.fixture(scope="module")
def lm() -> CausalLM:
    return small_lm()


def pixels(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 784)).astype(np.uint8)


def token_ids(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 16)).astype(np.int32)


def payload(values: np.ndarray) -> bytes:
    return int(np.argmax(values)).to_bytes(4, "big") + values.astype(np.int8).tobytes()


def test_vit_f32_graph_equals_torch(vit: VisionTransformer) -> None:
    graph = import_torch(vit, (1, 28, 28)).to_graph({"name": "vit"})
    images = pixels(8)
    want = vit(torch.from_numpy(images.astype(np.float32)).reshape(-1, 1, 28, 28)).detach().numpy()
    np.testing.assert_allclose(engine.run(graph, images), want, rtol=0, atol=1e-5)


def test_lm_f32_graph_equals_torch(lm: CausalLM) -> None:
    graph = import_torch(lm, (16,)).to_graph({"name": "lm"})
    assert graph.tensors[graph.input].dtype == DType.I32
    ids = token_ids(4)
    want = lm(torch.from_numpy(ids.astype(np.int64))).detach().numpy()  # (B, T, V)
    np.testing.assert_allclose(engine.run(graph, ids).reshape(want.shape), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["vit", "lm"])
def test_int8_graph_keeps_predictions_and_is_bit_exact(
    native_guest: NativeGuest, kind: str, vit: VisionTransformer, lm: CausalLM
) -> None:
    if kind == "vit":
        f32, inputs = import_torch(vit, (1, 28, 28)).to_graph(), pixels(120)
    else:
        f32, inputs = import_torch(lm, (16,)).to_graph(), token_ids(60)
    int8 = quantize(f32, inputs[:40])
    tests = inputs[40:]
    classes = engine.run(f32, tests).reshape(len(tests), -1, 10 if kind == "vit" else 256).argmax(-1)
    logits = engine.run(int8, tests)
    int8_classes = logits.reshape((*classes.shape, -1)).argmax(-1)
    assert (classes == int8_classes).mean() >= 0.9
    model = write_model(int8)
    for values, row in zip(tests[:3], logits[:3], strict=True):
        data = values.astype(">i4" if kind == "lm" else np.uint8).tobytes()
        result = native_guest.run(model, data)
        assert (result.exit_code, result.output) == (0, payload(row))
    data = tests[0].astype(">i4" if kind == "lm" else np.uint8).tobytes()
    assert run_in_vm(model, data) == (0, payload(logits[0]))


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([Tokens(), TransformerBlock(4, 30)], "layer 1 .TransformerBlock.: width 30 with 4 heads"),
        ([Tokens(), TransformerBlock(3, 8)], "layer 1 .TransformerBlock.: width 8 with 3 heads"),
        ([TransformerBlock(2, 8)], "layer 0 .TransformerBlock.: needs a .tokens, features. sequence"),
        ([Tokens(), TakeToken(784)], "layer 1 .TakeToken.: token 784 of 784"),
        ([Tokens(), Embedding(10, 8)], "layer 1 .Embedding.: Embedding must be the first layer"),
        ([Tokens(), ClassToken(), LayerNorm(), Linear(4), Conv2D(2, 3)], "layer 4 .Conv2D.: needs a"),
    ],
)
def test_network_shape_errors_name_the_layer(layers: list, message: str) -> None:
    with pytest.raises(ProverError, match=message):
        Network((8, 28, 28), layers).shapes()


def test_transformer_block_shapes_and_parameters() -> None:
    net = Network(
        (64,),
        [
            Embedding(256, 32),
            PositionalEmbedding(),
            TransformerBlock(4, 32, causal=True),
            LayerNorm(),
            Linear(256),
        ],
    )
    assert net.shapes() == [(64, 32), (64, 32), (64, 32), (64, 32), (64, 256)]
    shapes = net.parameter_shapes()
    assert shapes["2.qkv.weight"] == (96, 32) and shapes["2.fc1.weight"] == (128, 32)
    assert shapes["1.weight"] == (64, 32) and shapes["4.weight"] == (256, 32)
    graph = net.to_graph(net.init_parameters(0))
    assert engine.run(graph, np.arange(64)[None] % 256).shape == (1, 64 * 256)


def test_llama_style_ops_quantize_and_run_bit_exact(native_guest: NativeGuest) -> None:
    """RMSNORM, ROPE, a SwiGLU-like gate (SILU times a second projection: MUL) and a grouped-query
    MATMUL (one key head for two query heads), built in f32 by hand, quantized: int8 near f32 and
    engine = native guest."""
    rng = np.random.default_rng(0)
    dim, tokens, dh = 8, 6, 4
    g = Graph(metadata={"mode": "f32"})
    g.input = g.add_tensor("ids", DType.I32, (tokens,))

    def stored(name: str, dims: tuple[int, ...], scale: float = 0.5) -> int:
        return g.add_tensor(name, DType.F32, dims, rng.normal(0, scale, dims[::-1]))

    def node(op: Op, inputs: list, name: str, dims: tuple[int, ...], **attrs: int) -> int:
        return g.add_node(op, inputs, name, DType.F32, dims, **attrs)

    x = node(Op.GATHER, [g.input, stored("embed", (dim, 20), 1.0)], "x", (dim, tokens))
    h = node(Op.RMSNORM, [x, stored("gamma", (dim,))], "h", (dim, tokens), EPS_F=f32_bits(1e-5))
    q = node(Op.LINEAR, [h, stored("wq", (dim, dim))], "q", (dim, tokens))
    k = node(Op.LINEAR, [h, stored("wk", (dim, dh))], "k", (dh, tokens))
    q = node(Op.RESHAPE, [q], "q.split", (dh, 2, tokens))
    q = node(Op.TRANSPOSE, [q], "q.heads", (dh, tokens, 2), PERM=0b11_01_10_00)
    angles = np.outer(np.arange(tokens), 10000.0 ** (-np.arange(dh // 2) / (dh // 2)))
    cos = g.add_tensor("cos", DType.F32, (dh // 2, tokens), np.cos(angles))
    sin = g.add_tensor("sin", DType.F32, (dh // 2, tokens), np.sin(angles))
    q = node(Op.ROPE, [q, cos, sin], "q.rope", (dh, tokens, 2))
    k = node(
        Op.ROPE, [node(Op.RESHAPE, [k], "k.heads", (dh, tokens, 1)), cos, sin], "k.rope", (dh, tokens, 1)
    )
    scores = node(Op.MATMUL, [q, k], "scores", (tokens, tokens, 2), TRANSPOSE_B=1, ALPHA=f32_bits(0.5))
    probs = node(Op.SOFTMAX, [scores], "probs", (tokens, tokens, 2), CAUSAL=1)
    flat = node(Op.RESHAPE, [probs], "flat", (tokens, 2 * tokens))
    gate = node(
        Op.SILU,
        [node(Op.LINEAR, [flat, stored("w1", (tokens, dim))], "up1", (dim, 2 * tokens))],
        "silu",
        (dim, 2 * tokens),
    )
    up = node(Op.LINEAR, [flat, stored("w2", (tokens, dim))], "up2", (dim, 2 * tokens))
    g.output = node(Op.MUL, [gate, up], "gated", (dim, 2 * tokens))
    ids = rng.integers(0, 20, (60, tokens)).astype(np.int32)
    int8 = quantize(g, ids[:40])
    want = engine.run(g, ids[40:])
    got = engine.dequantized(int8, engine.run(int8, ids[40:]))
    assert np.abs(got - want).max() <= 0.1 * np.abs(want).max()
    model = write_model(int8)
    for row in ids[40:43]:
        result = native_guest.run(model, row.astype(">i4").tobytes())
        assert (result.exit_code, result.output) == (0, payload(engine.run(int8, row[None])[0]))
