"""Multi-phase games on the contract (docs/dispute-game.md, "Multi-phase games"): whole games in
both directions with a lie at the first, a middle and the last node, in the graph phase or inside
the node's VM run, k = 2 and 16, on the trained MLP and on a DAG (two-input ADD); and every forged
link refused: another input commitment, another node root or input positions, an output that is
not the defender's, an output proof for another region, a final state that did not exit cleanly,
moves out of phase, a defender that never opens."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from contract_fixtures import CLOCK, Deployment, deploy, top_tree_root_of
from test_guest_models import int8_convnet

from prover.chain.game_view import NodeOpening, Side
from prover.errors import ProverError
from prover.game.agent import OpenNode, next_move
from prover.game.multiphase import GraphParty, Match, create_task, submit
from prover.model.graph import Graph, Op
from prover.model.modelfile import load_model, read_model
from prover.task.commitments import ModelCommitment, commit_model
from prover.task.golden import SLOT_COUNT, SLOT_LEVEL, ZERO_HASHES, region_root, top_tree_root
from prover.task.graph_trace import GraphTrace, trace_graph
from vm import State

REPO = Path(__file__).resolve().parent.parent


class Model:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        tensor = graph.tensors[graph.input]
        pixels = (np.arange(tensor.count) * 37 % 256).astype(np.uint8)
        self.input = pixels.astype(tensor.dtype.numpy.newbyteorder(">")).tobytes()
        self.commitment: ModelCommitment = commit_model(graph)
        self.honest: GraphTrace = trace_graph(graph, self.input)

    def party(self, fault_node: int | None = None, vm_fault_step: int | None = None) -> GraphParty:
        trace = self.honest if fault_node is None else trace_graph(self.graph, self.input, fault_node)
        return GraphParty(self.graph, self.commitment, trace, vm_fault_step)


@pytest.fixture(scope="module")
def mlp() -> Model:
    return Model(load_model(REPO / "models" / "mlp_int8.ggml"))


@pytest.fixture(scope="module")
def dag() -> Model:
    return Model(read_model(int8_convnet()))


def start(d: Deployment, defender: GraphParty, challenger: GraphParty) -> Match:
    task = create_task(d.game, defender, d.submitter)
    claim = submit(d.game, task, defender, d.submitter)
    game_id = d.game.challenge(claim, d.challenger)
    return Match(
        d.game, game_id, {Side.DEFENDER: (defender, d.submitter), Side.CHALLENGER: (challenger, d.challenger)}
    )


def play(d: Deployment, defender: GraphParty, challenger: GraphParty) -> tuple[str, Match]:
    match = start(d, defender, challenger)
    return match.play(), match


@pytest.mark.parametrize(
    ("k", "faulty", "node"),
    [
        (2, "challenger", 1),
        (16, "challenger", 2),
        (2, "challenger", 3),
        (16, "submitter", 1),
        (2, "submitter", 2),
        (16, "submitter", 3),
    ],
)
def test_the_honest_side_wins_a_graph_phase_lie(mlp: Model, k: int, faulty: str, node: int) -> None:
    d = deploy(k=k)
    honest, liar = mlp.party(), mlp.party(fault_node=node)
    defender, challenger = (honest, liar) if faulty == "challenger" else (liar, honest)
    result, match = play(d, defender, challenger)
    assert result == ("defender won" if faulty == "challenger" else "challenger won")
    view = d.game.game(match.game_id)
    assert (view.graph_phase, view.node) == (False, node)  # the VM game ran on the lied-about node
    claim = d.game.claim(1)
    assert claim.status == ("pending" if faulty == "challenger" else "refuted")


@pytest.mark.parametrize("faulty", ["challenger", "submitter"])
def test_a_lie_at_a_random_step_inside_the_nodes_vm_run_loses(mlp: Model, faulty: str) -> None:
    step = int(np.random.default_rng(12).integers(1, 400_000))
    d = deploy(k=16)
    honest, liar = mlp.party(), mlp.party(fault_node=2, vm_fault_step=step)
    defender, challenger = (honest, liar) if faulty == "challenger" else (liar, honest)
    result, _ = play(d, defender, challenger)
    assert result == ("defender won" if faulty == "challenger" else "challenger won")
    run = liar.node_run(2)
    assert not run.honest and run.trace.fault_step == step


def test_a_defender_honest_in_the_graph_phase_that_lies_in_the_vm_loses(mlp: Model) -> None:
    d = deploy(k=16)
    defender = mlp.party(vm_fault_step=1234)  # right about every node, wrong about its VM run
    challenger = mlp.party(fault_node=3)  # a liar too: disputes a true claim
    result, _ = play(d, defender, challenger)
    assert result == "challenger won"


@pytest.mark.parametrize(("faulty", "k"), [("challenger", 2), ("submitter", 16)])
def test_the_honest_side_wins_at_a_node_with_two_activation_inputs(dag: Model, faulty: str, k: int) -> None:
    add = next(i for i, node in enumerate(dag.graph.nodes, start=1) if node.op == Op.ADD)
    assert len(dag.commitment.positions[add - 1]) == 2
    d = deploy(k=k)
    honest, liar = dag.party(), dag.party(fault_node=add)
    defender, challenger = (honest, liar) if faulty == "challenger" else (liar, honest)
    result, match = play(d, defender, challenger)
    assert result == ("defender won" if faulty == "challenger" else "challenger won")
    assert d.game.game(match.game_id).node == add


# ---------------------------------------------------------------- forged links


def at_the_link(d: Deployment, model: Model, node: int) -> tuple[Match, GraphParty]:
    """A game whose graph phase is narrowed to `node`: the honest submitter is to open it."""
    honest = model.party()
    match = start(d, honest, model.party(fault_node=node))
    while True:
        view = d.game.game(match.game_id)
        if view.graph_phase and view.right - view.left == 1:
            return match, honest
        match.move(view)


Link = tuple[Deployment, Match, NodeOpening]


@pytest.fixture
def link(mlp: Model) -> Link:
    d = deploy(k=4)
    match, honest = at_the_link(d, mlp, 2)
    return d, match, honest.opening(2)


def open_with(link: Link, **changes: object) -> None:
    d, match, opening = link
    d.game.open_node(match.game_id, replace(opening, **changes), sender=d.submitter)


def flip(word: bytes) -> bytes:
    return bytes([word[0] ^ 1]) + word[1:]


def test_another_input_commitment_is_refused(link: Link) -> None:
    opening = link[2]
    with pytest.raises(ProverError, match=r"InputNotAgreed\(index=0\)"):
        open_with(link, input_roots=(flip(opening.input_roots[0]),))


def test_another_input_position_is_refused(link: Link) -> None:
    with pytest.raises(ProverError, match=r"NodeNotInModel\(node=2\)"):
        open_with(link, inputs=(0,))


def test_another_weight_root_is_refused(link: Link) -> None:
    with pytest.raises(ProverError, match=r"NodeNotInModel\(node=2\)"):
        open_with(link, node_root=flip(link[2].node_root))


def test_an_output_other_than_the_defenders_posted_one_is_refused(link: Link) -> None:
    with pytest.raises(ProverError, match=r"OutputNotLinked\(node=2\)"):
        open_with(link, output_root=flip(link[2].output_root))


def test_an_output_proof_for_another_region_is_refused(link: Link) -> None:
    """A final state holding the posted output commitment, but in the input slot: its siblings
    prove slot 1, and the contract reads them as slot 3's."""
    opening = link[2]
    slots = [ZERO_HASHES[SLOT_LEVEL]] * SLOT_COUNT
    slots[0], slots[1], slots[2] = region_root(b"program"), opening.output_root, region_root(b"node")
    mem_root = top_tree_root(slots)
    siblings = (
        slots[0],
        top_tree_root_of(slots[2:4]),
        top_tree_root_of(slots[4:8]),
        top_tree_root_of(slots[8:16]),
    )
    state = State.decode(opening.final_state)
    state.mem_root = mem_root
    with pytest.raises(ProverError, match="OutputNotProven"):
        open_with(link, final_state=state.encode(), final_output_proof=siblings)


def test_a_final_state_that_did_not_exit_cleanly_is_refused(link: Link) -> None:
    state = State.decode(link[2].final_state)
    state.exit_code = 3
    with pytest.raises(ProverError, match=r"NotExitedCleanly\(exited=1, exitCode=3\)"):
        open_with(link, final_state=state.encode())


def test_only_the_defender_opens_and_only_at_one_node_of_the_graph_phase(link: Link) -> None:
    d, match, opening = link
    with pytest.raises(ProverError, match="NotDefender"):
        d.game.open_node(match.game_id, opening, sender=d.challenger)
    for move in (
        lambda: d.game.bisect(match.game_id, [], sender=d.submitter),
        lambda: d.game.select(match.game_id, 0, sender=d.challenger, posted=()),
        lambda: d.game.step(match.game_id, opening.final_state, bytes(1792), sender=d.challenger),
    ):
        with pytest.raises(ProverError, match="LinkRequired"):
            move()
    assert d.game.game(match.game_id).turn is Side.DEFENDER
    d.game.open_node(match.game_id, opening, sender=d.submitter)
    with pytest.raises(ProverError, match="NotGraphPhase"):
        d.game.open_node(match.game_id, opening, sender=d.submitter)
    view = d.game.game(match.game_id)
    assert (view.graph_phase, view.node, view.left, view.right) == (
        False,
        2,
        0,
        State.decode(opening.final_state).step,
    )


def test_a_defender_that_never_opens_loses_on_time(link: Link) -> None:
    d, match, _ = link
    d.chain.advance_time(CLOCK + 1)
    d.game.claim_timeout(match.game_id, sender=d.challenger)
    assert d.game.game_status(match.game_id) == "challenger won"
    assert d.game.claim(1).status == "refuted"


def test_claims_go_to_tasks_of_their_kind(mlp: Model) -> None:
    d = deploy(k=2)
    party = mlp.party()
    task = create_task(d.game, party, d.submitter)
    with pytest.raises(ProverError, match="WrongTaskKind"):
        d.game.submit(task, bytes(226), b"", [bytes(32)] * 4, sender=d.submitter)
    plain = d.game.create_task(bytes(32), bytes(32), bytes(32), sender=d.submitter)
    with pytest.raises(ProverError, match="WrongTaskKind"):
        submit(d.game, plain, party, d.submitter)
    n = party.commitment.node_count
    with pytest.raises(ProverError, match="OutputNotProven"):
        d.game.submit_graph(
            task,
            party.trace.states[n],
            flip(party.trace.output),
            party.trace.tree_at(n).proof(n),
            sender=d.submitter,
        )
    with pytest.raises(ProverError, match="BadNodeCount"):
        d.game.create_graph_task(bytes(32), bytes(32), bytes(32), 0, sender=d.submitter)


def test_the_agent_opens_the_node_it_reached(mlp: Model) -> None:
    d = deploy(k=16)
    match, _ = at_the_link(d, mlp, 3)
    view = d.game.game(match.game_id)
    assert next_move(Side.DEFENDER, view, mlp.honest, 16) == OpenNode(3)
