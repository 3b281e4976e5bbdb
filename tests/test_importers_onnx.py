"""The ONNX importer on graphs built with onnx.helper (no torch needed)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from prover.errors import ProverError  # noqa: E402
from prover.model.importers.onnx_import import import_onnx  # noqa: E402


def make_model(nodes, initializers, input_shape=(1, 4), output="y", opset=13):
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(value), name) for name, value in initializers.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


RNG = np.random.default_rng(7)
W1 = RNG.normal(size=(3, 4)).astype(np.float32)
B1 = RNG.normal(size=3).astype(np.float32)
W2 = RNG.normal(size=(3, 2)).astype(np.float32)
B2 = RNG.normal(size=2).astype(np.float32)


def test_mlp_with_normalization_gemm_matmul_and_softmax():
    model = make_model(
        [
            helper.make_node("Div", ["x", "d"], ["x1"]),
            helper.make_node("Add", ["x1", "o"], ["x2"]),
            helper.make_node("Gemm", ["x2", "w1", "b1"], ["h"], transB=1),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "w2"], ["m"]),
            helper.make_node("Add", ["m", "b2"], ["z"]),
            helper.make_node("Softmax", ["z"], ["y"], axis=-1),
        ],
        {"d": np.float32(255), "o": np.float32(-1), "w1": W1, "b1": B1, "w2": W2, "b2": B2},
    )
    imported = import_onnx(model)
    assert imported.input_shape == (4,)
    assert imported.input_scale == pytest.approx(1 / 255)
    assert imported.input_offset == -1
    assert [layer.kind for layer in imported.layers] == ["linear", "relu", "linear", "softmax"]
    np.testing.assert_array_equal(imported.layers[0].arrays["weight"], W1)
    np.testing.assert_array_equal(imported.layers[0].arrays["bias"], B1)
    np.testing.assert_array_equal(imported.layers[2].arrays["weight"], W2.T)
    np.testing.assert_array_equal(imported.layers[2].arrays["bias"], B2)


def test_quantized_weights_fold_and_activation_fake_quantization_is_removed():
    scale = np.float32(0.05)
    quantized = np.clip(np.round(W1 / scale), -127, 127).astype(np.int8)
    model = make_model(
        [
            helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"]),
            helper.make_node("Gemm", ["x", "w", "b1"], ["h"], transB=1),
            helper.make_node("QuantizeLinear", ["h", "s", "z"], ["hq"]),
            helper.make_node("DequantizeLinear", ["hq", "s", "z"], ["y"]),
        ],
        {"wq": quantized, "s": scale, "z": np.int8(0), "b1": B1},
    )
    (layer,) = import_onnx(model).layers
    np.testing.assert_allclose(layer.arrays["weight"], quantized.astype(np.float32) * scale)


def test_round_and_clip_of_raw_pixels_are_no_ops_and_dequantize_linear_normalizes():
    model = make_model(
        [
            helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
            helper.make_node("Round", ["c"], ["r"]),
            helper.make_node("Gemm", ["r", "w1", "b1"], ["y"], transB=1),
        ],
        {"lo": np.float32(0), "hi": np.float32(255), "w1": W1, "b1": B1},
    )
    imported = import_onnx(model)
    assert (imported.input_scale, imported.input_offset) == (1, 0)
    assert [layer.kind for layer in imported.layers] == ["linear"]


def test_conv_with_zero_kernel_slices_gets_a_connectivity_mask_and_pool_mul_add_is_subsampling():
    weight = RNG.normal(size=(3, 2, 3, 3)).astype(np.float32)
    weight[1, 0] = 0
    coef = np.arange(1, 4, dtype=np.float32).reshape(1, 3, 1, 1)
    model = make_model(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("Tanh", ["c"], ["t"]),
            helper.make_node("AveragePool", ["t"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Mul", ["p", "coef"], ["m"]),
            helper.make_node("Add", ["m", "bias"], ["a"]),
            helper.make_node("MaxPool", ["a"], ["q"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Flatten", ["q"], ["y"]),
        ],
        {"w": weight, "b": np.zeros(3, np.float32), "coef": coef, "bias": coef + 1},
        input_shape=(1, 2, 8, 8),
    )
    imported = import_onnx(model)
    assert imported.input_shape == (2, 8, 8)
    conv, _, subsample, pool, _ = imported.layers
    assert conv.options == {"stride": (1, 1), "padding": (1, 1, 1, 1), "groups": 1}
    np.testing.assert_array_equal(conv.arrays["mask"], [[1, 1], [0, 1], [1, 1]])
    assert subsample.kind == "subsample"
    np.testing.assert_array_equal(subsample.arrays["coef"], [1, 2, 3])
    np.testing.assert_array_equal(subsample.arrays["bias"], [2, 3, 4])
    assert pool.kind == "maxpool2d"


def test_unsupported_op_names_the_node():
    model = make_model([helper.make_node("Exp", ["x"], ["y"], name="the_exp")], {})
    with pytest.raises(ProverError, match="unsupported ONNX op Exp node 'the_exp'"):
        import_onnx(model)


def test_old_opset_is_refused():
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {}, opset=11)
    with pytest.raises(ProverError, match="opset 11"):
        import_onnx(model)


def test_a_graph_that_is_not_a_chain_is_refused():
    model = make_model(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Tanh", ["x"], ["t"], name="branch"),
            helper.make_node("Relu", ["t"], ["y"]),
        ],
        {},
    )
    with pytest.raises(ProverError, match="Tanh node 'branch': only a chain"):
        import_onnx(model)


def test_elementwise_scaling_after_a_layer_is_refused():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Mul", ["r", "k"], ["y"], name="late")],
        {"k": np.float32(2)},
    )
    with pytest.raises(ProverError, match="Mul node 'late'"):
        import_onnx(model)


def test_unreadable_bytes_are_a_prover_error():
    with pytest.raises(ProverError, match="not a readable ONNX model"):
        import_onnx(b"not a model")
