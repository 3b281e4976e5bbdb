"""Greedy decoding with a KV cache, on the graph of one causal forward pass (a LLaMA graph of
prover/model/llama.py or the byte-level LM of scripts/train_lm.py; f32 or int8):

    decoder = CachedDecoder(load_model("models/lm_int8.ggml"))
    tokens = decoder.generate(prompt_ids, 8)     # prefill the prompt, then one position per token

The graph computes T positions at once. Here each node is evaluated only on the new positions
(the prompt's, then one per token): the graph's tensors are viewed with the new positions along
their position axis, found by following the ids through the nodes (RESHAPE keeps it as the
outermost dim, TRANSPOSE moves it, MATMUL gives queries along dims[1] and keys along dims[0]),
and stored tensors indexed by position (ROPE's cos / sin, learned positional embeddings) are
sliced to them. The operands b of the attention MATMULs (the keys and the values) are the KV
cache: their new positions are appended to the earlier ones, and the attention of a new query
reads every cached key (causal SOFTMAX with more keys than queries, docs/model-format.md).

Every int8 op computes each position from that position's inputs and the cached keys only
(integer arithmetic, no dependence on the other positions' values or on the order of sums), so
the cached decode gives bit for bit the rows of the full forward pass over the same tokens: the
generation claim's forward pass (docs/dispute-game.md, "Generation claims") costs the same
multiply-accumulates as prefill plus decode, and its K and V tensors are this cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from prover.errors import ProverError
from prover.model.engine import node_value
from prover.model.graph import Attr, DType, Graph, Op, Tensor, permutation

# Ops whose output has the positions of their first input where it had them.
_POSITIONWISE = {
    Op.LINEAR,
    Op.RELU,
    Op.TANH,
    Op.SIGMOID,
    Op.LOOKUP,
    Op.ADD,
    Op.MUL,
    Op.CLIP,
    Op.SOFTMAX,
    Op.QUANTIZE,
    Op.DEQUANTIZE,
    Op.REQUANTIZE,
    Op.LAYERNORM,
    Op.RMSNORM,
    Op.GELU,
    Op.SILU,
    Op.ROPE,
    Op.SLICE,
    Op.CONCAT,
}


@dataclass(frozen=True)
class Axes:
    """Where a tensor's positions run: `query` (the forward pass's positions) and `key` (the
    attended positions of attention scores and probabilities), dim indices or None."""

    query: int | None
    key: int | None = None


def position_axes(graph: Graph) -> dict[int, Axes]:
    """The position axes of every tensor that has them (activations from the ids, and stored
    tensors indexed by position); raises ProverError on a node the cached decode cannot split."""
    axes: dict[int, Axes] = {graph.input: Axes(0)}
    for index, node in enumerate(graph.nodes):
        where = f"node {index} ({node.op.name})"
        x = axes.get(node.inputs[0])
        if x is None:
            continue
        out = graph.tensors[node.output]
        if node.op == Op.GATHER:
            result = Axes(x.query + 1)
        elif node.op == Op.RESHAPE:
            source = graph.tensors[node.inputs[0]]
            if x.key is not None or x.query != len(source.dims) - 1:
                raise ProverError(f"{where}: a reshape that does not keep the positions outermost")
            result = Axes(len(out.dims) - 1)
        elif node.op == Op.TRANSPOSE:
            order = permutation(node.attr(Attr.PERM))
            assert order is not None
            result = Axes(order.index(x.query), None if x.key is None else order.index(x.key))
        elif node.op == Op.MATMUL:
            b = axes.get(node.inputs[1])
            keys_first = node.attr(Attr.TRANSPOSE_B) == 1
            if x.query != 1 or b is None or b.query != 1 or (not keys_first and x.key != 0):
                raise ProverError(f"{where}: not an attention product over the positions")
            result = Axes(1, 0 if keys_first else None)
        elif node.op in _POSITIONWISE:
            if node.op in (Op.SLICE, Op.CONCAT) and node.attr(Attr.AXIS) in (x.query, x.key):
                raise ProverError(f"{where}: joins or cuts along the positions")
            result = x
            for t in node.inputs[1:]:
                stored = None if t is None else graph.tensors[t]
                if stored is not None and stored.data is not None and node.op == Op.ROPE:
                    axes[t] = Axes(1)
                elif (
                    stored is not None
                    and stored.data is not None
                    and node.op in (Op.ADD, Op.MUL)
                    and stored.dims4 == out.dims4
                ):
                    axes[t] = Axes(x.query)  # a positional embedding
        else:
            raise ProverError(f"{where}: no cached decode through this op")
        axes[node.output] = result
    return axes


def _resized(tensor: Tensor, axes: Axes, queries: tuple[int, int], keys: int) -> Tensor:
    """The tensor at positions queries = (start, stop), with `keys` attended positions."""
    dims = list(tensor.dims)
    start, stop = queries
    if axes.query is not None:
        dims[axes.query] = stop - start
    if axes.key is not None:
        dims[axes.key] = keys
    data = tensor.data
    if data is not None:
        data = np.ascontiguousarray(np.take(data, range(start, stop), axis=len(dims) - 1 - axes.query))
    return replace(tensor, dims=tuple(dims), data=data)


class CachedDecoder:
    """A causal forward-pass graph evaluated position by position with a KV cache."""

    def __init__(self, graph: Graph, record: bool = False) -> None:
        """`record`: keep every step's rows, for `forward_values` (the claim's forward pass)."""
        ids, logits = graph.tensors[graph.input], graph.tensors[graph.output]
        if ids.dtype != DType.I32 or len(ids.dims) != 1 or logits.dims4[1:] != (ids.dims[0], 1, 1):
            raise ProverError("not a language model: i32 ids (T,) in, logits (V, T) out are needed")
        self.graph = graph
        self.context = ids.dims[0]
        self.vocabulary = logits.dims[0]
        self.axes = position_axes(graph)
        self.cached = {
            n.inputs[1] for n in graph.nodes if n.op == Op.MATMUL and graph.tensors[n.inputs[1]].data is None
        }
        self.record = record
        self.reset()

    def reset(self) -> None:
        self.cache: dict[int, np.ndarray] = {}
        self.rows: dict[int, list[np.ndarray]] = {}  # per position tensor, each step's (dims4[::-1])
        self.ids: list[int] = []
        self.length = 0

    def step(self, ids: list[int]) -> np.ndarray:
        """Append `ids` to the sequence; their positions' logits, (len(ids), V)."""
        start, stop = self.length, self.length + len(ids)
        if not ids or stop > self.context:
            raise ProverError(f"positions {start}..{stop - 1}: the model computes {self.context}")
        if any(not 0 <= t < self.vocabulary for t in ids):
            raise ProverError(f"a token outside the vocabulary 0..{self.vocabulary - 1}")
        g = self.graph
        new = [
            t if i not in self.axes else _resized(t, self.axes[i], (start, stop), stop)
            for i, t in enumerate(g.tensors)
        ]
        view = Graph(new, g.nodes, g.input, g.output, g.metadata)
        values: list[np.ndarray | None] = [None] * len(new)
        values[g.input] = np.asarray(ids, np.int32).reshape(1, -1)
        for node in g.nodes:
            out = node.output
            if out not in self.cached:
                values[out] = node_value(view, node, values)
                if self.record and out in self.axes and self.axes[out].key is None:
                    self.rows.setdefault(out, []).append(values[out].reshape(new[out].dims4[::-1]))
                continue
            axis = self.axes[out].query
            part = node_value(view, node, values).reshape(new[out].dims4[::-1])
            joined = part if start == 0 else np.concatenate([self.cache[out], part], axis=3 - axis)
            self.cache[out] = joined
            new[out] = replace(new[out], dims=_with(new[out].dims, axis, stop))
            values[out] = joined.reshape(1, -1)
        self.length = stop
        self.ids += ids
        return values[g.output].reshape(len(ids), self.vocabulary)

    def forward_values(self, ids: list[int]) -> list[np.ndarray | None]:
        """Every tensor's value, (1, count), in the forward pass of the whole graph over `ids` (all
        `context` positions; a recording decoder): the positions decoded so far are kept when they
        are a prefix of `ids`, the others decoded in one step. Each position's rows are the ones
        the steps computed (bit for bit the full pass's, see above), the KV cache is taken as it
        is, and only the tensors that span key positions (attention scores and probabilities,
        whose rows hold future keys in the full pass) are computed again, from those."""
        if not self.record or len(ids) != self.context:
            raise ProverError(f"a forward pass is over all {self.context} positions, of a recording decoder")
        if list(ids[: self.length]) != self.ids:
            self.reset()
        if self.length < self.context:
            self.step(list(ids[self.length :]))
        g = self.graph
        values: list[np.ndarray | None] = [None] * len(g.tensors)
        values[g.input] = np.asarray(self.ids, np.int32).reshape(1, -1)
        for node in g.nodes:
            out = node.output
            if out in self.cache:
                values[out] = self.cache[out].reshape(1, -1)
            elif out in self.rows:
                values[out] = np.concatenate(self.rows[out], axis=3 - self.axes[out].query).reshape(1, -1)
            else:
                values[out] = node_value(g, node, values)
        return values

    def generate(self, prompt: list[int], count: int) -> list[int]:
        """The `count` greedy tokens after `prompt` (first index of the maximum, as the claim's
        check reads them): one prefill step, then one position per token."""
        return list(self.greedy(prompt, count))

    def greedy(self, prompt: list[int], count: int) -> Iterator[int]:
        """`generate`'s tokens one by one, as each is decoded (`prover generate` streams them)."""
        if not prompt:
            raise ProverError("the prompt is empty: a language model needs at least one token")
        if len(prompt) + max(count, 1) - 1 > self.context:
            raise ProverError(
                f"a prompt of {len(prompt)} and {count} tokens need {len(prompt) + count - 1} positions; "
                f"the model computes {self.context}"
            )
        self.reset()
        logits = self.step(list(prompt))
        for index in range(count):
            token = int(np.argmax(logits[-1]))
            yield token
            if index + 1 < count:
                logits = self.step([token])


def rows_are_exact(graph: Graph) -> bool:
    """Whether a step's rows are bit for bit the full pass's: integer graphs only (f32 products
    sum in an order that depends on how many positions are computed together)."""
    return all(t.dtype != DType.F32 for t in graph.tensors)


def _with(dims: tuple[int, ...], axis: int | None, size: int) -> tuple[int, ...]:
    return dims if axis is None else (*dims[:axis], size, *dims[axis + 1 :])
