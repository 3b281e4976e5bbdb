"""The network description: shape inference, errors naming the layer, parameters, and the
conversion to and from the f32 .ggml graph."""

import numpy as np
import pytest
from test_modelfile import C3_LIKE_MASK, small_convnet

from prover.errors import ProverError
from prover.model.engine import run
from prover.model.graph import Op
from prover.model.importers.imported import LayerChain
from prover.model.modelfile import read_model, write_model
from prover.model.network import (
    AvgPool2D,
    Conv2D,
    Flatten,
    Linear,
    MaxPool2D,
    Network,
    ReLU,
    Softmax,
    Subsample,
    Tanh,
    network_from_imported,
)

LENET5_C3 = np.array(
    [[1 if s2 in maps else 0 for s2 in range(6)] for maps in [
        (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5), (0, 1, 2, 3), (1, 2, 3, 4),
        (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5), (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
        (0, 1, 2, 3, 4, 5),
    ]],
    np.uint8,
)  # fmt: skip


def lenet5() -> Network:
    return Network(
        (1, 28, 28),
        [
            Conv2D(6, 5, padding=2), Tanh(), Subsample(2), Tanh(),
            Conv2D(16, 5, mask=LENET5_C3), Tanh(), Subsample(2), Tanh(),
            Conv2D(120, 5), Tanh(), Flatten(), Linear(84), Tanh(), Linear(10),
        ],
        input_scale=1 / 255,
        input_offset=-1.0,
    )  # fmt: skip


def test_lenet5_shapes_and_parameters():
    net = lenet5()
    shapes = net.shapes()
    assert shapes[0] == (6, 28, 28)
    assert shapes[2] == (6, 14, 14)
    assert shapes[4] == (16, 10, 10)
    assert shapes[6] == (16, 5, 5)
    assert shapes[8] == (120, 1, 1)
    assert shapes[10] == (120,)
    assert shapes[-1] == (10,)
    params = net.parameter_shapes()
    assert params["0.weight"] == (6, 1, 5, 5)
    assert params["2.coef"] == params["2.bias"] == (6,)
    assert params["4.weight"] == (16, 6, 5, 5)
    assert params["11.weight"] == (84, 120)
    assert params["13.bias"] == (10,)


def test_shape_inference_of_strides_padding_and_groups():
    net = Network(
        (4, 11, 9),
        [Conv2D(8, (3, 2), stride=(2, 1), padding=(1, 0, 0, 1), groups=2), MaxPool2D(3, 2, 1), AvgPool2D(2)],
    )
    # conv: h = (11 + 1 + 0 - 3) // 2 + 1 = 5, w = (9 + 0 + 1 - 2) // 1 + 1 = 9
    # maxpool k3 s2 p1: h = (5 + 2 - 3) // 2 + 1 = 3, w = (9 + 2 - 3) // 2 + 1 = 5; avgpool k2: 1 x 2
    assert net.shapes() == [(8, 5, 9), (8, 3, 5), (8, 1, 2)]
    assert net.parameter_shapes()["0.weight"] == (8, 2, 3, 2)


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([Conv2D(6, 29)], "layer 0 \\(Conv2D\\): kernel 29x29 does not fit"),
        ([Conv2D(6, 3, groups=4)], "layer 0 \\(Conv2D\\): groups 4 must divide"),
        (
            [Conv2D(6, 3, mask=C3_LIKE_MASK)],
            "layer 0 \\(Conv2D\\): mask shape \\(4, 3\\) should be \\(6, 1\\)",
        ),
        ([Conv2D(6, 3), Linear(10)], "layer 1 \\(Linear\\): needs a flat input"),
        ([Flatten(), Conv2D(2, 3)], "layer 1 \\(Conv2D\\): needs a \\(channels, height, width\\) input"),
        ([MaxPool2D(2, padding=2)], "layer 0 \\(MaxPool2D\\): .* each pad below the kernel"),
        (
            [Subsample(2), Subsample(2), Subsample(2), Subsample(2), Subsample(2)],
            "layer 4 \\(Subsample\\): window",
        ),
        ([Softmax()], "layer 0 \\(Softmax\\): softmax needs a flat input"),
        ([Flatten(), Linear(0)], "layer 1 \\(Linear\\): out_features"),
    ],
)
def test_shapes_that_do_not_fit_name_the_layer(layers, message):
    with pytest.raises(ProverError, match=message):
        Network((1, 28, 28), layers).shapes()


def test_bad_input_shape():
    with pytest.raises(ProverError, match="input shape"):
        Network((28, 28), [Flatten()]).shapes()


def test_parameters_are_checked():
    net = Network((4,), [Linear(3)])
    with pytest.raises(ProverError, match=r"parameter 0.bias is missing"):
        net.to_graph({"0.weight": np.zeros((3, 4))})
    with pytest.raises(ProverError, match=r"parameter 0.weight: shape \(4, 3\), expected \(3, 4\)"):
        net.to_graph({"0.weight": np.zeros((4, 3)), "0.bias": np.zeros(3)})
    with pytest.raises(ProverError, match=r"parameters 5.weight belong to no layer"):
        net.to_graph({"0.weight": np.zeros((3, 4)), "0.bias": np.zeros(3), "5.weight": np.zeros(1)})


@pytest.mark.parametrize("build", [lenet5, small_convnet])
def test_graph_round_trip(build):
    net = build()
    params = net.init_parameters(seed=3)
    graph = read_model(write_model(net.to_graph(params)))
    again, again_params = Network.from_graph(graph)
    assert again == net
    assert again_params.keys() == params.keys()
    assert all(np.array_equal(again_params[k], params[k]) for k in params)
    conv = next(layer for layer in again.layers if isinstance(layer, Conv2D) and layer.mask is not None)
    assert conv.mask.dtype == np.uint8


def test_graph_layout():
    net = Network((1, 6, 6), [Conv2D(2, 3), ReLU(), Flatten(), Linear(3)], 0.5, 0.25)
    graph = net.to_graph(net.init_parameters())
    assert [node.op for node in graph.nodes] == [Op.DEQUANTIZE, Op.CONV2D, Op.RELU, Op.RESHAPE, Op.LINEAR]
    assert graph.tensors[graph.input].dims == (6, 6, 1)
    assert graph.tensors[graph.nodes[1].inputs[1]].dims == (3, 3, 1, 2)  # (KW, KH, CIN, COUT)
    assert graph.tensors[graph.nodes[4].inputs[1]].dims == (32, 3)  # (IN, OUT)
    assert graph.tensors[graph.output].dims == (3,)


def test_to_graph_computes_like_numpy():
    """A Linear-Softmax network against a direct numpy computation, through the engine."""
    net = Network((5,), [Linear(4), Tanh(), Linear(3), Softmax()], 0.1, -0.2)
    params = net.init_parameters(seed=1)
    pixels = np.random.default_rng(0).integers(0, 256, (7, 5), dtype=np.uint8)
    x = pixels * np.float32(0.1) - np.float32(0.2)
    h = np.tanh(x @ params["0.weight"].T + params["0.bias"])
    logits = h @ params["2.weight"].T + params["2.bias"]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(run(net.to_graph(params), pixels), expected, rtol=1e-5)


def test_from_graph_refuses_what_is_not_a_chain():
    net = Network((4,), [Linear(3), ReLU()])
    graph = net.to_graph(net.init_parameters())
    graph.nodes[2].inputs[0] = graph.nodes[0].output  # the ReLU reads the input, not the Linear
    with pytest.raises(ProverError, match="node 2 \\(RELU\\): not an f32 layer chain"):
        Network.from_graph(graph)
    graph = net.to_graph(net.init_parameters())
    graph.nodes = graph.nodes[1:]
    with pytest.raises(ProverError, match="node 0: a network graph starts with a DEQUANTIZE"):
        Network.from_graph(graph)


def test_network_from_the_importers_layer_chain():
    chain = LayerChain()
    chain.normalize(1 / 255, -1.0)
    rng = np.random.default_rng(0)
    mask = np.ones((4, 2), np.uint8)
    conv = {"weight": rng.normal(size=(4, 2, 3, 3)), "bias": rng.normal(size=4), "mask": mask}
    chain.add("conv2d", conv, stride=(1, 1), padding=(1, 1, 1, 1), groups=1)
    chain.add("tanh")
    chain.add("subsample", {"coef": np.ones(4), "bias": np.zeros(4)}, kernel=(2, 2), stride=(2, 2))
    chain.add("avgpool2d", kernel=(2, 2), stride=(1, 1), padding=(0, 0, 0, 0))
    chain.add("flatten")
    chain.add("linear", {"weight": rng.normal(size=(3, 36)), "bias": np.zeros(3)})
    chain.add("softmax")
    net, params = network_from_imported(chain.finish((2, 8, 8)))
    assert net.shapes()[-1] == (3,)
    assert net.layers[0] == Conv2D(4, 3, padding=1, mask=mask)
    assert np.array_equal(net.layers[0].mask, mask)
    assert sorted(params) == ["0.bias", "0.weight", "2.bias", "2.coef", "5.bias", "5.weight"]
    assert net.input_offset == -1.0
    read_model(write_model(net.to_graph(params)))
