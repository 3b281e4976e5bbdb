"""A graph task's answer (docs/dispute-game.md, "The claim's answer"): an ANSWER node appended to
the model, whose output is the class (the first index of the output's maximum, big-endian u32)
and then the output tensor's bytes. That is exactly the payload the whole-graph program writes
to its output region, so a multi-phase claim posts the same bytes as a single-phase claim of the
same model and input, and the contract binds them as it binds every node's output: the claim's
output is proven at the last position of the tensor tree, and node n is disputable like any other.
"""

from prover.errors import ProverError
from prover.model.graph import DType, Graph, Node, Op

ANSWER_SIZE = 4  # the class, a big-endian u32, before the output tensor's bytes


def with_answer(graph: Graph) -> Graph:
    """`graph` with an ANSWER node after its last one, producing the new graph output."""
    output = graph.tensors[graph.output]
    if output.dtype != DType.I8:
        raise ProverError(f"a graph task's output must be int8 to be answered, not {output.dtype.name}")
    answered = Graph(list(graph.tensors), list(graph.nodes), graph.input, graph.output, dict(graph.metadata))
    answer = answered.add_tensor("answer", DType.U8, (ANSWER_SIZE + output.nbytes,))
    answered.nodes.append(Node(Op.ANSWER, [graph.output], answer))
    answered.output = answer
    return answered


def answered_class(answer: bytes) -> int:
    """The class an answer's bytes (a claim's output) say."""
    return int.from_bytes(answer[:ANSWER_SIZE], "big")
