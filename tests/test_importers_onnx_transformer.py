"""The ONNX importer on torch.onnx exports of the transformer modules of
prover.model.importers.torch_transformer (random weights): the same layers and weights as the torch
importer, so the same f32 .ggml file, and the engine equals torch; a graph with a branch that is not
a transformer block is refused with one line naming the ONNX node."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402
from transformer_modules import small_lm, small_vit  # noqa: E402

from prover.errors import ProverError  # noqa: E402
from prover.model import engine  # noqa: E402
from prover.model.importers.onnx_import import import_onnx  # noqa: E402
from prover.model.importers.torch_import import import_torch  # noqa: E402
from prover.model.modelfile import write_model  # noqa: E402

# torch.onnx.export's ways of writing the same module: the TorchScript exporter at its default
# opset 20 (GELU as Gelu, q/k/v by Split) and at opset 17 (GELU as x * (Erf(x / sqrt 2) + 1) * 0.5);
# the default exporter (dynamo: q/k/v by Slices, the causal mask one constant) needs onnxscript,
# which is not one of the project's dependencies: without it, that case is skipped.
EXPORTERS = ["torchscript", "torchscript-opset17", "dynamo"]


MODELS = {
    "vit": (small_vit, (1, 28, 28), torch.float32),
    "lm": (small_lm, (16,), torch.int64),
}


def export(
    kind: str, directory: Path, exporter: str = "torchscript", dynamic_batch: bool = False
) -> tuple[torch.nn.Module, Path]:
    build, shape, dtype = MODELS[kind]
    module, path = build(), directory / f"{kind}.onnx"
    options: dict = {"dynamo": exporter == "dynamo"}
    if exporter == "dynamo":
        pytest.importorskip("onnxscript")
    if exporter == "torchscript-opset17":
        options["opset_version"] = 17
    if dynamic_batch:  # the exporter then computes the reshapes' shapes with Shape nodes
        names = {"input_names": ["x"], "output_names": ["y"]}
        options |= names | {"dynamic_axes": {"x": {0: "batch"}, "y": {0: "batch"}}}
    torch.onnx.export(module, (torch.zeros((1, *shape), dtype=dtype),), str(path), **options)
    return module, path


def inputs(kind: str, count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    if kind == "vit":
        return rng.integers(0, 256, (count, 784)).astype(np.uint8)
    return rng.integers(0, 256, (count, 16)).astype(np.int32)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("kind", ["vit", "lm"])
def test_export_imports_as_the_torch_importer_does(tmp_path: Path, kind: str, exporter: str) -> None:
    module, path = export(kind, tmp_path, exporter)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    written_as = {"torchscript": {"Gelu", "Split"}, "torchscript-opset17": {"Erf", "Split"}}
    assert written_as.get(exporter, {"Gelu", "Slice"}) <= ops
    assert ("Where" in ops) >= (kind == "lm")  # the causal mask
    through_onnx = import_onnx(path)
    through_torch = import_torch(module, MODELS[kind][1])
    assert [layer.kind for layer in through_onnx.layers] == [layer.kind for layer in through_torch.layers]
    for ours, theirs in zip(through_onnx.layers, through_torch.layers, strict=True):
        assert ours.same_as(theirs), ours.kind
    graph = through_onnx.to_graph({"name": kind})
    assert write_model(graph) == write_model(through_torch.to_graph({"name": kind}))
    values = inputs(kind, 4)
    if kind == "vit":
        want = module(torch.from_numpy(values.astype(np.float32)).reshape(-1, 1, 28, 28))
    else:
        want = module(torch.from_numpy(values.astype(np.int64)))
    want = want.detach().numpy()
    np.testing.assert_allclose(engine.run(graph, values).reshape(want.shape), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["vit", "lm"])
def test_an_export_with_a_dynamic_batch_gives_the_same_file(tmp_path: Path, kind: str) -> None:
    module, path = export(kind, tmp_path, dynamic_batch=True)
    assert "Shape" in {node.op_type for node in onnx.load(str(path)).graph.node}
    want = write_model(import_torch(module, MODELS[kind][1]).to_graph())
    assert write_model(import_onnx(path).to_graph()) == want


def refusal(model: onnx.ModelProto) -> str:
    with pytest.raises(ProverError) as error:
        import_onnx(model)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_an_add_of_two_different_activations_is_refused_naming_it(tmp_path: Path) -> None:
    _, path = export("lm", tmp_path)
    model = onnx.load(str(path))
    head = model.graph.node[-1]  # MatMul(final LayerNorm, head weight)
    norm = next(node for node in model.graph.node if node.output[0] == head.input[0])
    extra = helper.make_node("Add", [head.input[0], norm.input[0]], ["mixed"], name="extra")
    head.input[0] = "mixed"
    model.graph.node.insert(len(model.graph.node) - 1, extra)
    message = refusal(model)
    assert message.startswith("Add node 'extra': ")
    assert "a branch that does not fit a pre-norm transformer block (expected the MatMul of qkv)" in message


def test_a_mask_that_is_not_causal_is_refused_naming_the_where(tmp_path: Path) -> None:
    _, path = export("lm", tmp_path)
    model = onnx.load(str(path))
    where = next(node for node in model.graph.node if node.op_type == "Where")
    hides_too_little = np.triu(np.ones((16, 16), bool), 2)
    model.graph.initializer.append(numpy_helper.from_array(hides_too_little, "not_causal"))
    where.input[0] = "not_causal"
    assert refusal(model).startswith(f"Where node {where.name!r}: ")


def test_a_second_use_of_the_attention_scores_is_refused(tmp_path: Path) -> None:
    _, path = export("vit", tmp_path)
    model = onnx.load(str(path))
    softmax = next(node for node in model.graph.node if node.op_type == "Softmax")
    # The attention probabilities also go to a second output: a branch out of the block.
    model.graph.node.append(helper.make_node("Relu", [softmax.output[0]], ["leak"], name="leak"))
    model.graph.output.append(helper.make_tensor_value_info("leak", onnx.TensorProto.FLOAT, None))
    assert refusal(model).startswith("Relu node 'leak': a branch that does not fit a pre-norm transformer")


def test_other_spellings_of_the_block_give_the_same_file(tmp_path: Path) -> None:
    """q, k, v by Gathers instead of Split + Squeeze, the scale as a Mul by 1/sqrt(head_dim), the
    causal mask as an Add of a 0 / -inf constant: the same layers."""
    module, path = export("lm", tmp_path)
    model = onnx.load(str(path))
    graph, nodes = model.graph, list(model.graph.node)
    rewritten, replaced = [], []
    for node in nodes:
        if node in replaced:
            continue
        if node.op_type == "Split":
            squeezes = [next(n for n in nodes if n.input and n.input[0] == part) for part in node.output]
            for index, squeeze in enumerate(squeezes):
                name = f"{node.output[0]}_index_{index}"
                graph.initializer.append(numpy_helper.from_array(np.array(index, np.int64), name))
                rewritten.append(
                    helper.make_node("Gather", [node.input[0], name], [squeeze.output[0]], axis=0)
                )
            replaced += squeezes
        elif node.op_type == "Div":
            name = f"{node.output[0]}_factor"
            graph.initializer.append(numpy_helper.from_array(np.array(1 / np.sqrt(8), np.float32), name))
            rewritten.append(helper.make_node("Mul", [name, node.input[0]], [node.output[0]]))
        elif node.op_type == "Where":
            name = f"{node.output[0]}_mask"
            mask = np.where(np.triu(np.ones((16, 16), bool), 1), -np.inf, 0).astype(np.float32)
            graph.initializer.append(numpy_helper.from_array(mask, name))
            rewritten.append(helper.make_node("Add", [node.input[2], name], [node.output[0]]))
        else:
            rewritten.append(node)
    del graph.node[:]
    graph.node.extend(rewritten)
    ops = {node.op_type for node in graph.node}
    assert "Split" not in ops and "Div" not in ops and "Where" not in ops
    want = write_model(import_torch(module, (16,)).to_graph())
    assert write_model(import_onnx(model).to_graph()) == want
