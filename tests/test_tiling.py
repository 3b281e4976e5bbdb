"""Tiles (prover/model/tiling.py): a tiled graph, its LINEARs and CONV2Ds split by output channels,
computes the original's values bit for bit, in the numpy engine and in the guest (whole graph
natively, each tile, RESHAPE and CONCAT node in the VM); CONCAT's rules; and multi-phase games
decided at a tile."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from contract_fixtures import deploy

from prover.chain.game_view import Side
from prover.game.multiphase import GraphParty, Match, create_task, submit
from prover.model import engine
from prover.model.graph import Attr, DType, Graph, GraphError, Op, check_graph
from prover.model.modelfile import load_model, write_model
from prover.model.tiling import tile_graph, tiled_values
from prover.task.commitments import commit_model
from prover.task.graph_trace import trace_graph
from prover.task.guest.native import NativeGuest, build_library
from prover.task.node import node_file, node_image, node_output

REPO = Path(__file__).resolve().parent.parent
TILE_MACS = 50_000  # the MLP's 784 x 500 layer: 9 tiles of 60 or 20 channels, 3 CONCATs


@pytest.fixture(scope="module")
def mlp() -> Graph:
    return load_model(REPO / "models" / "mlp_int8.ggml")


@pytest.fixture(scope="module")
def tiled(mlp: Graph) -> Graph:
    return tile_graph(mlp, TILE_MACS)


def pixels(count: int = 4) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (count, 784)).astype(np.uint8)


def test_the_tiled_graph_computes_the_same_values(mlp: Graph, tiled: Graph) -> None:
    ops = [node.op for node in tiled.nodes]
    assert ops.count(Op.LINEAR) == 10 and ops.count(Op.CONCAT) == 3 and len(ops) == 14
    assert np.array_equal(engine.run(tiled, pixels()), engine.run(mlp, pixels()))
    macs = [
        tiled.tensors[n.inputs[0]].count * tiled.tensors[n.inputs[1]].dims[1]
        for n in tiled.nodes
        if n.op == Op.LINEAR
    ]
    assert max(macs[:-1]) <= TILE_MACS  # the 500 x 10 head is small enough as it is


def test_tiles_view_the_models_weights(mlp: Graph, tiled: Graph) -> None:
    tile = tiled.tensors[tiled.nodes[1].inputs[1]]
    assert np.shares_memory(tile.data, mlp.tensors[mlp.nodes[1].inputs[1]].data)


@pytest.mark.parametrize("model", ["tiled", "lenet_tiled"])
def test_the_guest_runs_the_tiled_graph_like_the_engine(model: str, request: pytest.FixtureRequest) -> None:
    """The MLP with tiled LINEARs, LeNet-5 with tiled CONV2Ds."""
    graph = request.getfixturevalue(model)
    guest = NativeGuest(build_library(Path(tempfile.mkdtemp())))
    expected = engine.run(graph, pixels())
    for image, values in zip(pixels(), expected, strict=True):
        result = guest.run(write_model(graph), image.tobytes())
        assert result.exit_code == 0 and np.array_equal(np.frombuffer(result.output[4:], np.int8), values)


def test_tile_and_concat_nodes_in_the_vm_equal_the_engine(tiled: Graph) -> None:
    trace = trace_graph(tiled, pixels(1)[0].tobytes())
    for node in (2, 11, 13):  # a tile, a CONCAT of 6 tiles, the CONCAT of the CONCATs
        image = node_image(node_file(tiled, node - 1), trace.node_inputs(node))
        image.machine.run()
        assert node_output(image.machine) == trace.payload(tiled.nodes[node - 1].output), node


def test_concat_rules() -> None:
    """The tiles join through the transformer ops' CONCAT (op 21) along AXIS 0, dims[0]."""
    g = Graph()
    g.input = g.add_tensor("x", DType.I8, (4, 2))
    a = g.add_node(Op.RELU, [g.input], "a", DType.I8, (4, 2))
    g.output = g.add_node(Op.CONCAT, [a, g.input], "y", DType.I8, (7, 2), AXIS=0)
    with pytest.raises(GraphError, match=r"should be \(8, 2, 1, 1\)"):
        check_graph(g)
    g.tensors[g.output].dims = (8, 2)
    check_graph(g)
    x = np.arange(-4, 4, dtype=np.int8)
    expected = np.concatenate([np.maximum(x, 0).reshape(2, 4), x.reshape(2, 4)], axis=1).reshape(-1)
    assert np.array_equal(engine.run(g, x[None])[0], expected)


def game_decided_at(graph: Graph, node: int, faulty: str, k: int) -> None:
    """A whole multi-phase game on `graph` whose faulty side corrupts node `node`: the honest side
    wins at that node."""
    commitment = commit_model(graph)
    image = pixels(1)[0].tobytes()
    honest = GraphParty(graph, commitment, trace_graph(graph, image))
    liar = GraphParty(graph, commitment, trace_graph(graph, image, fault_node=node))
    defender, challenger = (liar, honest) if faulty == "submitter" else (honest, liar)
    d = deploy(k=k)
    task = create_task(d.game, defender, d.submitter)
    game_id = d.game.challenge(submit(d.game, task, defender, d.submitter), d.challenger)
    match = Match(
        d.game, game_id, {Side.DEFENDER: (defender, d.submitter), Side.CHALLENGER: (challenger, d.challenger)}
    )
    assert match.play() == ("challenger won" if faulty == "submitter" else "defender won")
    assert d.game.game(game_id).node == node


@pytest.mark.parametrize(("faulty", "node"), [("submitter", 5), ("challenger", 12)])
def test_a_multiphase_game_on_the_tiled_model(tiled: Graph, faulty: str, node: int) -> None:
    game_decided_at(tiled, node, faulty, k=4)


LENET_TILE_MACS = 40_000  # LeNet-5's CONV2Ds (GROUPS 1): C1 in 3 tiles, C3 (masked) in 8, C5 in 2


@pytest.fixture(scope="module")
def lenet() -> Graph:
    return load_model(REPO / "models" / "lenet5_int8.ggml")


@pytest.fixture(scope="module")
def lenet_tiled(lenet: Graph) -> Graph:
    return tile_graph(lenet, LENET_TILE_MACS)


def conv_macs(graph: Graph, node) -> int:
    kw, kh, cin, _ = graph.tensors[node.inputs[1]].dims
    return graph.tensors[node.output].count * cin * kh * kw


def test_conv2d_tiles_compute_the_same_values(lenet: Graph, lenet_tiled: Graph) -> None:
    convs = [n for n in lenet.nodes if n.op == Op.CONV2D]
    tiled_convs = [n for n in lenet_tiled.nodes if n.op == Op.CONV2D]
    grouped = [n for n in convs if n.attrs.get(Attr.GROUPS, 1) > 1]
    assert len(grouped) == 2 and all(n in lenet_tiled.nodes for n in grouped)  # the pools' convs stay
    assert len(tiled_convs) == len(grouped) + 3 + 8 + 2
    assert [n.op for n in lenet_tiled.nodes].count(Op.CONCAT) == 1 + 3 + 1  # C3's 8 tiles: a tree
    assert max(conv_macs(lenet_tiled, n) for n in tiled_convs if n not in grouped) <= LENET_TILE_MACS
    images = pixels(8)
    assert np.array_equal(engine.run(lenet_tiled, images), engine.run(lenet, images))
    # Every tile's weights (and C3's connectivity mask) are views of the model's.
    c3 = next(n for n in lenet.nodes if n.op == Op.CONV2D and n.input(5) is not None)
    c3_tile = next(n for n in lenet_tiled.nodes if n.op == Op.CONV2D and n.input(5) is not None)
    for operand in (1, 5):
        tile, original = lenet_tiled.tensors[c3_tile.inputs[operand]], lenet.tensors[c3.inputs[operand]]
        assert tile.data.shape[0] < original.data.shape[0] and np.shares_memory(tile.data, original.data)


@pytest.mark.parametrize("model", ["mlp", "lenet"])
def test_tile_values_are_read_back_from_the_original_outputs(
    model: str, request: pytest.FixtureRequest
) -> None:
    """`tiled_values`: every tile's value (a LINEAR's; a CONV2D's through its RESHAPEs and the CONCAT
    tree) taken from the untiled graph's values equals the tiled graph's own run."""
    graph, tiled_graph = (
        request.getfixturevalue(model),
        request.getfixturevalue("tiled" if model == "mlp" else "lenet_tiled"),
    )
    image = pixels(1)
    want = engine.activations(tiled_graph, image)
    got = tiled_values(tiled_graph, engine.activations(graph, image))
    assert len(got) == len(want) > len(graph.tensors)
    for tensor, value in enumerate(want):
        assert (value is None) == (got[tensor] is None)
        assert value is None or np.array_equal(got[tensor], value), tiled_graph.tensors[tensor].name


def test_conv_tiles_reshapes_and_concats_in_the_vm_equal_the_engine(lenet_tiled: Graph) -> None:
    trace = trace_graph(lenet_tiled, pixels(1)[0].tobytes())
    ops = [n.op for n in lenet_tiled.nodes]
    first_tile = ops.index(Op.CONV2D) + 1
    concat = ops.index(Op.CONCAT) + 1
    for node in (first_tile, first_tile + 1, concat, concat + 1):  # a tile, its RESHAPE, CONCAT, RESHAPE
        image = node_image(node_file(lenet_tiled, node - 1), trace.node_inputs(node))
        image.machine.run()
        assert node_output(image.machine) == trace.payload(lenet_tiled.nodes[node - 1].output), node


def test_a_batched_conv2d_is_tiled_bit_exactly() -> None:
    rng = np.random.default_rng(9)
    g = Graph()
    g.input = g.add_tensor("x", DType.I8, (6, 5, 3, 2))  # W, H, C, N: two images
    w = g.add_tensor("w", DType.I8, (3, 3, 3, 10), rng.integers(-128, 128, (10, 3, 3, 3)))
    bias = g.add_tensor("b", DType.I32, (10,), rng.integers(-500, 500, 10))
    mult = g.add_tensor("m", DType.I32, (10,), rng.integers(1 << 29, 1 << 30, 10))
    shift = g.add_tensor("s", DType.I32, (10,), rng.integers(-9, -6, 10))
    g.output = g.add_node(Op.CONV2D, [g.input, w, bias, mult, shift], "y", DType.I8, (4, 3, 10, 2), X_ZP=3)
    check_graph(g)
    tiled = tile_graph(g, 4 * 3 * 2 * 27 * 4)  # four channels' MACs: tiles of 4, 4 and 2 channels
    assert [n.op for n in tiled.nodes].count(Op.CONV2D) == 3
    x = rng.integers(-128, 128, (3, g.tensors[g.input].count))
    assert np.array_equal(engine.run(tiled, x), engine.run(g, x))


@pytest.mark.parametrize(("faulty", "op"), [("submitter", Op.CONV2D), ("challenger", Op.RESHAPE)])
def test_a_multiphase_game_decided_at_a_conv_tile(lenet_tiled: Graph, faulty: str, op: Op) -> None:
    node = [n.op for n in lenet_tiled.nodes].index(op, 4) + 1  # C1's third tile, or its second one's RESHAPE
    game_decided_at(lenet_tiled, node, faulty, k=16)
