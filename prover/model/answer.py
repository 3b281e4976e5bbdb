"""A graph task's answer (docs/dispute-game.md, "The claim's answer"), the node appended to the
model whose output is the claim's output:

- ANSWER for a classifier: the class (the first index of the output's maximum, big-endian u32)
  and then the output tensor's bytes. That is exactly the payload the whole-graph program writes
  to its output region, so a multi-phase claim posts the same bytes as a single-phase claim of the
  same model and input, and the contract binds them as it binds every node's output: the claim's
  output is proven at the last position of the tensor tree, and node n is disputable like any other.
- GREEDY for a language model (i32 ids (T,) in, int8 logits (V, T) out): per position t, the id
  at t and the greedy token after it (the first index of row t's maximum), both big-endian u32:
  8 T bytes whatever the vocabulary. A generation claim (docs/dispute-game.md, "Generation
  claims") is such a task over the prompt and the generated tokens but the last; its output holds
  the prompt, the continuation and the model's own greedy choices, so whether the continuation is
  greedy is read from the output alone (`generation`).
"""

import numpy as np

from prover.errors import ProverError
from prover.model.graph import DType, Graph, Node, Op

ANSWER_SIZE = 4  # the class, a big-endian u32, before the output tensor's bytes


def is_language_model(graph: Graph) -> bool:
    ids, logits = graph.tensors[graph.input], graph.tensors[graph.output]
    return ids.dtype == DType.I32 and len(ids.dims) == 1 and logits.dims4[1:] == (ids.dims[0], 1, 1)


def with_answer(graph: Graph) -> Graph:
    """`graph` with an ANSWER (or, for a language model, GREEDY) node after its last one,
    producing the new graph output."""
    output = graph.tensors[graph.output]
    if output.dtype != DType.I8:
        raise ProverError(f"a graph task's output must be int8 to be answered, not {output.dtype.name}")
    answered = Graph(list(graph.tensors), list(graph.nodes), graph.input, graph.output, dict(graph.metadata))
    if is_language_model(graph):
        answer = answered.add_tensor("greedy", DType.U8, (8 * output.dims[1],))
        answered.nodes.append(Node(Op.GREEDY, [graph.output, graph.input], answer))
    else:
        answer = answered.add_tensor("answer", DType.U8, (ANSWER_SIZE + output.nbytes,))
        answered.nodes.append(Node(Op.ANSWER, [graph.output], answer))
    answered.output = answer
    return answered


def answered_class(answer: bytes) -> int:
    """The class an answer's bytes (a claim's output) say (for GREEDY, the first id)."""
    return int.from_bytes(answer[:ANSWER_SIZE], "big")


def generation(answer: bytes, prompt_length: int, count: int) -> tuple[list[int], list[int]]:
    """(prompt, continuation) of a GREEDY answer read as a claim of `count` tokens generated from
    the first `prompt_length` ids: the continuation is the greedy tokens of positions
    prompt_length - 1 .. prompt_length + count - 2, and each of them but the last must be the id at
    the next position (the forward pass ran on the tokens it claims to have generated); else a
    ProverError naming the first position that breaks it."""
    pairs = np.frombuffer(answer, ">u4").reshape(-1, 2).astype(np.int64)
    positions = len(pairs)
    if min(prompt_length, count) < 1 or prompt_length + count - 1 > positions:
        raise ProverError(
            f"a prompt of {prompt_length} and {count} tokens do not fit the answer's {positions} positions"
        )
    ids, greedy = pairs[:, 0].tolist(), pairs[:, 1].tolist()
    continuation = greedy[prompt_length - 1 : prompt_length - 1 + count]
    for t in range(prompt_length, prompt_length + count - 1):
        if ids[t] != greedy[t - 1]:
            raise ProverError(
                f"not a greedy generation: position {t} holds {ids[t]}, "
                f"the model's token there is {greedy[t - 1]}"
            )
    return ids[:prompt_length], continuation
