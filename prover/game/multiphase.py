"""A party of a multi-phase game (docs/dispute-game.md, "Multi-phase games"): its graph trace for
the graph phase, its VM run of the one node the game reaches, the opening that links them, and an
in-process match that plays both sides of a game to its end (tests, benchmarks).

A dishonest party is one whose graph trace corrupts a node's output (`trace_graph(fault_node=)`),
or whose VM run of a node lies from some step on (`vm_fault_step`). A party whose own output of
the disputed node differs from what the VM computes has no honest VM run to show for it: its run
is the honest one with its states changed from the fault step on, ending in the honest final
state with its own output written into the output region (a liar's states; the contract's step
proof refutes them).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from eth_hash.auto import keccak

from prover.chain.contracts import DisputeGame, Receipt
from prover.chain.game_view import GameView, NodeOpening, Side
from prover.errors import ProverError
from prover.game.agent import (
    Bisect,
    ClaimTimeout,
    Move,
    OpenNode,
    PhasedTrace,
    Select,
    Step,
    Trace,
    Wait,
    corrupt,
    next_move,
    phase_trace,
    with_opening,
)
from prover.model.graph import Graph
from prover.task.commitments import ModelCommitment
from prover.task.golden import OUTPUT_BASE, region_bytes, top_tree_siblings
from prover.task.graph_trace import GraphTrace
from prover.task.node import node_file, node_image, node_output, node_program_root
from vm.trace import Trace as VmTrace

CHECKPOINT_INTERVAL = 10_000  # steps between a node run's checkpoints: a query replays fewer


@dataclass(frozen=True)
class NodeRun:
    """A party's VM run of one node task: its trace, final state and the output's slot proof."""

    trace: Trace
    steps: int
    final_state: bytes
    output_proof: tuple[bytes, ...]  # slot 3's 4 top-tree siblings in the final memRoot
    honest: bool


class LyingTrace:
    """An honest VM trace with every state from `fault_step` on changed ($k0 flipped, as the
    agent's FaultyTrace), ending in `final_state` (the liar's claimed final state)."""

    def __init__(self, honest: VmTrace, fault_step: int, final_state: bytes) -> None:
        self.honest = honest
        self.fault_step = fault_step
        self.final_state = final_state

    def state_at(self, step: int) -> bytes:
        if step >= self.honest.steps:
            return self.final_state
        state = self.honest.state_at(step)
        return corrupt(state) if step >= self.fault_step else state

    def state_hash_at(self, step: int) -> bytes:
        return keccak(self.state_at(step))

    def witness_at(self, step: int) -> tuple[bytes, bytes]:
        state_data, proof = self.honest.witness_at(step)
        return self.state_at(step) if step >= self.fault_step else state_data, proof


@dataclass
class GraphParty:
    """One side's knowledge: the model, its commitment, its graph trace, and its node runs."""

    graph: Graph
    commitment: ModelCommitment
    trace: GraphTrace
    vm_fault_step: int | None = None
    _runs: dict[int, NodeRun] = field(default_factory=dict)

    def node_run(self, node: int) -> NodeRun:
        """The party's VM run of node `node` (1-based), made once."""
        if node not in self._runs:
            self._runs[node] = self._run(node)
        return self._runs[node]

    def _run(self, node: int) -> NodeRun:
        image = node_image(node_file(self.graph, node - 1), self.trace.node_inputs(node))
        honest = VmTrace.record(image.machine, interval=CHECKPOINT_INTERVAL)
        final = honest.machine_at(honest.steps)
        own_output = self.trace.payload(self.graph.nodes[node - 1].output)
        if node_output(final) == own_output and self.vm_fault_step is None:
            proof = top_tree_siblings(final.memory.proof(OUTPUT_BASE))
            return NodeRun(honest, honest.steps, honest.final_state, tuple(proof), True)
        # No honest run ends with this party's output: lie from the fault step on (the last by default).
        final.memory.write(OUTPUT_BASE, region_bytes(own_output))
        final_state = final.state.encode()
        if final_state == honest.final_state:
            final_state = corrupt(final_state)
        fault_step = min(self.vm_fault_step or honest.steps, honest.steps)
        proof = top_tree_siblings(final.memory.proof(OUTPUT_BASE))
        return NodeRun(
            LyingTrace(honest, fault_step, final_state), honest.steps, final_state, tuple(proof), False
        )

    def opening(self, node: int) -> NodeOpening:
        """The defender's openNode argument for node `node`, from its own trace and run."""
        run = self.node_run(node)
        agreed = self.trace.tree_at(node - 1)
        positions = self.commitment.positions[node - 1]
        return NodeOpening(
            node_root=self.commitment.node_roots[node - 1],
            inputs=positions,
            node_proof=tuple(self.commitment.node_proof(node)),
            input_roots=tuple(self.trace.commitments[p] for p in positions),
            input_proofs=tuple(tuple(agreed.proof(p)) for p in positions),
            output_root=self.trace.commitments[node],
            output_proof=tuple(agreed.proof(node)),
            final_state=run.final_state,
            final_output_proof=run.output_proof,
        )

    def trace_for(self, game: GameView) -> Trace:
        """The trace a move in `game` is judged by: the graph trace, or the run of its node."""
        return self.trace if game.graph_phase else self.node_run(game.node).trace

    def state_hash_at(self, node: int) -> bytes:
        """G_node: the party's state in the graph phase (its claim is G_n)."""
        return self.trace.state_hash_at(node)


def create_task(game: DisputeGame, party: GraphParty, sender: str) -> int:
    """The graph task of the party's model on its input (the single-node program's root)."""
    return game.create_graph_task(
        node_program_root(),
        party.trace.commitments[0],
        party.commitment.nodes_root,
        party.commitment.node_count,
        sender=sender,
    )


def submit(game: DisputeGame, task_id: int, party: GraphParty, sender: str) -> int:
    """The party's claim: G_n, the output tensor and its proof at position n."""
    n = party.commitment.node_count
    proof = party.trace.tree_at(n).proof(n)
    return game.submit_graph(task_id, party.trace.state_hash_at(n), party.trace.output, proof, sender=sender)


@dataclass
class Match:
    """Both sides of one game played in this process (tests, benchmarks): each side's trace is a
    VM trace (single-phase games) or a GraphParty (multi-phase games)."""

    game: DisputeGame
    game_id: int
    parties: dict[Side, tuple[Trace | PhasedTrace, str]]  # each side's trace and account
    gas: dict[Side, int] = field(default_factory=lambda: {Side.DEFENDER: 0, Side.CHALLENGER: 0})
    moves: int = 0

    def move(self, view: GameView) -> tuple[Side, Move]:
        """Make the next move on `view` (the side to move first; the other may prove a last step)."""
        k = self.game.k
        for side in (view.turn, view.turn.other()):
            trace, account = self.parties[side]
            move = with_opening(next_move(side, view, phase_trace(trace, view), k), trace)
            if isinstance(move, Wait):
                continue
            self.gas[side] += self._send(account, view, move).gas_used
            self.moves += 1
            return side, move
        raise ProverError(f"game {self.game_id}: neither side can move on {view}")

    def play(self, on_move: Callable[[Side, Move], None] | None = None) -> str:
        """Play until the game is over; returns its status ("defender won" / "challenger won")."""
        while not (view := self.game.game(self.game_id)).over:
            side, move = self.move(view)
            if on_move is not None:
                on_move(side, move)
        return self.game.game_status(self.game_id)

    def _send(self, account: str, view: GameView, move: Move) -> Receipt:
        if isinstance(move, Bisect):
            return self.game.bisect(self.game_id, list(move.hashes), sender=account, state=view.state)
        if isinstance(move, Select):
            return self.game.select(
                self.game_id, move.index, sender=account, posted=view.posted, state=view.state
            )
        if isinstance(move, Step):
            return self.game.step(self.game_id, move.state_data, move.proof, sender=account, state=view.state)
        if isinstance(move, OpenNode) and move.opening is not None:
            return self.game.open_node(self.game_id, move.opening, sender=account, state=view.state)
        if isinstance(move, ClaimTimeout):
            return self.game.claim_timeout(self.game_id, sender=account, state=view.state)
        raise ProverError(f"game {self.game_id}: cannot send {move!r}")
