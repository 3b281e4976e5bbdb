"""A graph task's answer (prover/model/answer.py): its last node, ANSWER, gives the class and the
output tensor's bytes, so a multi-phase claim posts exactly what a single-phase claim of the same
model and input posts; the engine and the single-node program agree on it bit for bit (ties: the
first index of the maximum); the contract binds it (a claim whose class is not its G_n's is
refused; a lie about the class alone is caught at the ANSWER node, in both directions); and the
op's rules are the same in Python and in the guest."""

from pathlib import Path

import numpy as np
import pytest
from contract_fixtures import deploy
from test_contract_multiphase import play
from test_guest_models import native_guest  # noqa: F401 (a fixture)

from prover.errors import ProverError
from prover.game.multiphase import GraphParty, create_task
from prover.model.answer import answered_class, with_answer
from prover.model.graph import DType, Graph, GraphError, Node, Op, check_graph
from prover.model.modelfile import load_model, write_model
from prover.task.commitments import commit_model, task_graph
from prover.task.graph_trace import trace_graph
from prover.task.guest.native import NativeGuest
from prover.task.node import node_image, node_output
from prover.task.run import EXIT_CODES, load_task
from vm.trace import Trace

REPO = Path(__file__).resolve().parent.parent
MODELS = {name: REPO / "models" / f"{name}_int8.ggml" for name in ("mlp", "lenet5")}
DIGIT = REPO / "examples" / "mnist" / "test_0000_label_7.png"


def party(graph: Graph, payload: bytes, fault_node: int | None = None) -> GraphParty:
    return GraphParty(graph, commit_model(graph), trace_graph(graph, payload, fault_node))


@pytest.mark.parametrize("name", MODELS)
def test_a_graph_claim_posts_what_a_single_phase_claim_posts(name: str, native_guest: NativeGuest) -> None:  # noqa: F811
    task = load_task(MODELS[name], DIGIT)
    graph = task_graph(task.graph)
    assert graph.nodes[-1].op == Op.ANSWER and graph.output == graph.nodes[-1].output
    trace = trace_graph(graph, task.data)
    single = native_guest.run(MODELS[name].read_bytes(), task.data)  # the whole-graph program
    assert single.exit_code == 0 and trace.output == single.output
    assert answered_class(trace.output) == single.predicted_class == 7
    # ... and the VM's single-node program computes the same answer from the logits.
    run = party(graph, task.data).node_run(len(graph.nodes))
    assert run.honest and run.steps < 5_000


def answer_node(values: np.ndarray) -> tuple[Graph, bytes]:
    graph = Graph()
    x = graph.add_tensor("x", DType.I8, (len(values),))
    graph.input = x
    graph.output = x
    graph = with_answer(graph)
    return graph, values.astype(np.int8).tobytes()


@pytest.mark.parametrize(
    "values",
    [
        np.array([3, 9, 9, -128, 9]),  # a tie: the first index of the maximum
        np.full(7, -128),  # all equal: class 0
        np.array([127]),
        np.random.default_rng(5).integers(-128, 128, 1000),
    ],
    ids=["tie", "all-equal", "one", "random-1000"],
)
def test_the_engine_and_the_vm_agree_on_the_answer(values: np.ndarray) -> None:
    graph, payload = answer_node(values)
    trace = trace_graph(graph, payload)
    first = int(np.flatnonzero(values == values.max())[0])
    assert trace.output == first.to_bytes(4, "big") + payload
    image = node_image(write_model(graph, single_node=True), [payload])
    trace_vm = Trace.record(image.machine, interval=10_000)
    final = trace_vm.machine_at(trace_vm.steps)
    assert final.state.exited and final.state.exit_code == 0
    assert node_output(final) == trace.output


@pytest.mark.parametrize(
    ("dtype", "dims", "problem"),
    [
        (DType.U8, (6,), r"gives u8 \(9,\)"),
        (DType.I8, (9,), r"gives u8 \(9,\)"),
        (DType.U8, (3, 3), r"gives u8 \(9,\)"),
    ],
)
def test_an_answer_of_another_shape_is_refused_by_python_and_by_the_guest(
    dtype: DType, dims: tuple[int, ...], problem: str
) -> None:
    graph = Graph()
    graph.input = graph.add_tensor("x", DType.I8, (5,))
    graph.output = graph.add_tensor("answer", dtype, dims)
    graph.nodes.append(Node(Op.ANSWER, [graph.input], graph.output))
    with pytest.raises(GraphError, match=problem):
        check_graph(graph)
    image = node_image(write_model(graph, check=False, single_node=True), [bytes(5)])
    trace_vm = Trace.record(image.machine, interval=10_000)
    final = trace_vm.machine_at(trace_vm.steps)
    assert EXIT_CODES[final.state.exit_code] == "ERR_SHAPE"


def test_a_claim_whose_class_is_not_its_state_is_refused() -> None:
    task = load_task(MODELS["mlp"], DIGIT)
    graph = task_graph(task.graph)
    honest = party(graph, task.data)
    d = deploy(k=16)
    task_id = create_task(d.game, honest, d.submitter)
    n = len(graph.nodes)
    lie = bytearray(honest.trace.output)
    lie[3] = 3  # class 3 instead of 7, the logits as they are
    with pytest.raises(ProverError, match="OutputNotProven"):
        d.game.submit_graph(
            task_id,
            honest.trace.state_hash_at(n),
            bytes(lie),
            honest.trace.tree_at(n).proof(n),
            sender=d.submitter,
        )


@pytest.mark.parametrize(("faulty", "k"), [("submitter", 16), ("challenger", 2)])
def test_a_lie_about_the_class_alone_loses_at_the_answer_node(faulty: str, k: int) -> None:
    task = load_task(MODELS["mlp"], DIGIT)
    graph = task_graph(task.graph)
    n = len(graph.nodes)
    honest, liar = party(graph, task.data), party(graph, task.data, fault_node=n)
    assert liar.trace.output[4:] == honest.trace.output[4:]  # the same logits ...
    assert answered_class(liar.trace.output) != answered_class(honest.trace.output)  # ... another class
    defender, challenger = (liar, honest) if faulty == "submitter" else (honest, liar)
    d = deploy(k=k)
    result, match = play(d, defender, challenger)
    assert result == ("challenger won" if faulty == "submitter" else "defender won")
    view = d.game.game(match.game_id)
    assert (view.graph_phase, view.node) == (False, n)


def test_only_an_int8_output_is_answered() -> None:
    graph = load_model(REPO / "models" / "mlp_f32.ggml")
    with pytest.raises(ProverError, match="must be int8 to be answered"):
        with_answer(graph)
