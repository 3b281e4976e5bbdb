"""Tiles (prover/model/tiling.py): a tiled graph computes the original's values bit for bit, in
the numpy engine and in the guest (whole graph natively, each tile and CONCAT node in the VM);
CONCAT's rules; and a multi-phase game decided at a tile."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from contract_fixtures import deploy

from prover.chain.game_view import Side
from prover.game.multiphase import GraphParty, Match, create_task, submit
from prover.model import engine
from prover.model.graph import DType, Graph, GraphError, Op, check_graph
from prover.model.modelfile import load_model, write_model
from prover.model.tiling import tile_graph
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


def test_the_guest_runs_the_tiled_graph_like_the_engine(tiled: Graph) -> None:
    guest = NativeGuest(build_library(Path(tempfile.mkdtemp())))
    expected = engine.run(tiled, pixels())
    for image, values in zip(pixels(), expected, strict=True):
        result = guest.run(write_model(tiled), image.tobytes())
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


@pytest.mark.parametrize(("faulty", "node"), [("submitter", 5), ("challenger", 12)])
def test_a_multiphase_game_on_the_tiled_model(tiled: Graph, faulty: str, node: int) -> None:
    commitment = commit_model(tiled)
    image = pixels(1)[0].tobytes()
    honest = GraphParty(tiled, commitment, trace_graph(tiled, image))
    liar = GraphParty(tiled, commitment, trace_graph(tiled, image, fault_node=node))
    defender, challenger = (liar, honest) if faulty == "submitter" else (honest, liar)
    d = deploy(k=4)
    task = create_task(d.game, defender, d.submitter)
    game_id = d.game.challenge(submit(d.game, task, defender, d.submitter), d.challenger)
    match = Match(
        d.game, game_id, {Side.DEFENDER: (defender, d.submitter), Side.CHALLENGER: (challenger, d.challenger)}
    )
    assert match.play() == ("challenger won" if faulty == "submitter" else "defender won")
    assert d.game.game(game_id).node == node
