"""Generation claims (docs/dispute-game.md, "Generation claims"): GREEDY gives each position's id
and greedy token alike in the engine and the VM's single-node program (ties: the first index);
`generation` reads a claim's answer and refuses one whose tokens are not the model's greedy
choices; `prover generate --claim` writes the task of the KV-cached decode, whose K and V are node
outputs of the graph; a claim of other tokens is found out by the checker; and on the chain a
defender lying about the answer or a KV-cache tensor loses, as does a challenger lying about them."""

from pathlib import Path

import numpy as np
import pytest
from contract_fixtures import deploy
from test_contract_multiphase import play

from prover.errors import ProverError
from prover.game.multiphase import GraphParty
from prover.model.answer import generation, with_answer
from prover.model.graph import DType, Graph, GraphError, Op, check_graph
from prover.model.llama import LlamaConfig, llama_graph, random_weights
from prover.model.modelfile import load_model, save_model
from prover.model.quantize import quantize
from prover.task.commitments import commit_model, task_graph
from prover.task.generation import GENERATION_JSON, claim_window, write_generation_claim
from prover.task.graph_trace import trace_graph
from prover.task.node import node_file, node_image, node_output
from vm.trace import Trace

CONFIG = LlamaConfig(vocab=40, dim=32, layers=2, heads=4, kv_heads=2, ffn_dim=48, context=64)
PROMPT = [3, 1, 4, 1, 5]


TABLE = np.random.default_rng(8).integers(-2, 3, (64, 7))  # 64 rows of 7 logits in -2..2: ties


def greedy_graph() -> Graph:
    """Logits GATHERed from TABLE by the ids (V = 7), then GREEDY."""
    graph = Graph()
    graph.input = graph.add_tensor("ids", DType.I32, (5,))
    table = graph.add_tensor("table", DType.I8, (7, 64), TABLE)
    graph.output = graph.add_node(Op.GATHER, [graph.input, table], "logits", DType.I8, (7, 5))
    return with_answer(graph)


def test_greedy_is_the_same_in_the_engine_and_the_vm() -> None:
    graph = greedy_graph()
    ids = np.array([3, 0, 63, 9, 8], np.int32)
    trace = trace_graph(graph, ids.astype(">i4").tobytes())
    pairs = np.frombuffer(trace.output, ">u4").reshape(-1, 2)
    assert pairs[:, 0].tolist() == ids.tolist()
    assert pairs[:, 1].tolist() == [int(np.flatnonzero(r == r.max())[0]) for r in TABLE[ids]]
    image = node_image(  # the single-node program on GREEDY's inputs, as the VM phase runs it
        node_file(graph, len(graph.nodes) - 1),
        [TABLE[ids].astype(np.int8).tobytes(), ids.astype(">i4").tobytes()],
    )
    vm = Trace.record(image.machine, interval=10_000)
    final = vm.machine_at(vm.steps)
    assert final.state.exited and final.state.exit_code == 0
    assert node_output(final) == trace.output


def test_greedy_rules() -> None:
    graph = greedy_graph()
    graph.tensors[graph.output].dims = (39,)
    with pytest.raises(GraphError, match=r"GREEDY gives u8 \(40,\)"):
        check_graph(graph)


def answer(ids: list[int], greedy: list[int]) -> bytes:
    return np.array([ids, greedy]).T.astype(">u4").tobytes()


def test_generation_reads_the_claim_and_refuses_a_non_greedy_one() -> None:
    ids, greedy = [7, 8, 2, 5, 0, 0], [1, 2, 5, 9, 4, 3]
    assert generation(answer(ids, greedy), 2, 3) == ([7, 8], [2, 5, 9])
    assert generation(answer(ids, greedy), 3, 2) == ([7, 8, 2], [5, 9])
    with pytest.raises(ProverError, match="position 4 holds 0, the model's token there is 9"):
        generation(answer(ids, greedy), 2, 4)
    with pytest.raises(ProverError, match="do not fit the answer's 6 positions"):
        generation(answer(ids, greedy), 4, 4)
    with pytest.raises(ProverError, match="need 7 positions"):
        claim_window([1, 2, 3], [4, 5, 6, 7, 8], 6)


@pytest.fixture(scope="module")
def llama_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    f32 = llama_graph(CONFIG, random_weights(CONFIG, seed=5), 12)
    calibration = np.random.default_rng(6).integers(0, CONFIG.vocab, (24, 12)).astype(np.int32)
    path = tmp_path_factory.mktemp("llama") / "llama_int8.ggml"
    save_model(quantize(f32, calibration), path)
    return path


def test_a_claim_is_the_cached_decode_and_a_false_one_is_found_out(llama_file: Path, tmp_path: Path) -> None:
    honest = write_generation_claim(tmp_path / "a", llama_file, PROMPT, 6, progress=False)
    assert honest["greedy"] and honest["agrees"] and honest["answered"] == honest["tokens"]
    assert (tmp_path / "a" / GENERATION_JSON).exists()
    lie = [(t + 1) % CONFIG.vocab for t in honest["tokens"]]
    checked = write_generation_claim(tmp_path / "b", llama_file, PROMPT, 6, claimed=lie, progress=False)
    assert not checked["greedy"] and not checked["agrees"] and checked["tokens"] == honest["tokens"]
    # only the last token differs: the forward pass is the honest one's, the answer says otherwise
    last = [*honest["tokens"][:-1], (honest["tokens"][-1] + 1) % CONFIG.vocab]
    checked = write_generation_claim(tmp_path / "c", llama_file, PROMPT, 6, claimed=last, progress=False)
    assert not checked["greedy"] and checked["answered"] == honest["tokens"]


def test_a_claim_of_the_wrong_length_or_fault_node_is_refused_with_nothing_written(
    llama_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(ProverError, match="the claim states 5 tokens, not 6"):
        write_generation_claim(tmp_path / "a", llama_file, PROMPT, 6, claimed=[1] * 5, progress=False)
    with pytest.raises(ProverError, match="--fault-node 100000: the model has nodes 1"):
        write_generation_claim(tmp_path / "a", llama_file, PROMPT, 6, fault_node=100_000, progress=False)
    assert not (tmp_path / "a").exists()


class Claim:
    def __init__(self, path: Path, tokens: list[int]) -> None:
        self.graph = task_graph(load_model(path))
        self.input = claim_window(PROMPT, tokens, 12).astype(">i4").tobytes()
        self.commitment = commit_model(self.graph)

    def node_of(self, name: str) -> int:
        """The 1-based node computing tensor `name`."""
        return next(
            i + 1 for i, n in enumerate(self.graph.nodes) if self.graph.tensors[n.output].name == name
        )

    def party(self, fault_node: int | None = None) -> GraphParty:
        return GraphParty(self.graph, self.commitment, trace_graph(self.graph, self.input, fault_node))


@pytest.mark.parametrize("faulty", ["submitter", "challenger"])
@pytest.mark.parametrize("lie", ["greedy", "blk.1.k", "blk.0.v.heads"])
def test_the_honest_side_wins_a_lie_about_the_answer_or_the_kv_cache(
    llama_file: Path, tmp_path: Path, faulty: str, lie: str
) -> None:
    tokens = write_generation_claim(tmp_path, llama_file, PROMPT, 6, progress=False)["tokens"]
    claim = Claim(llama_file, tokens)
    node = claim.node_of(lie)
    honest, liar = claim.party(), claim.party(fault_node=node)
    defender, challenger = (liar, honest) if faulty == "submitter" else (honest, liar)
    d = deploy(k=4)
    result, match = play(d, defender, challenger)
    assert result == ("challenger won" if faulty == "submitter" else "defender won")
    assert d.game.game(match.game_id).node == node
