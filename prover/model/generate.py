"""Greedy decoding with the numpy reference engine for a causal language model graph: i32 token
ids (T,) in, logits (V, T) out (x[t][v]: position t's scores for the next token), as
prover.model.sequence_layers writes it.

    lm = LanguageModel(load_model("models/lm_int8.ggml"))
    ids = lm.window(tokens)            # the forward pass's input: the last T tokens, zero-padded
    token = lm.next_token(tokens)      # argmax (first index) of the logits at the last real position

A forward pass always takes the full context of T positions: shorter histories are padded with
token 0 after their end, which the causal mask keeps from reaching the positions before; longer
ones keep their last T tokens. One forward pass is one task (its input the T ids), so each
generated token can be computed, and disputed, on its own.
"""

from __future__ import annotations

import numpy as np

from prover.errors import ProverError
from prover.model.engine import run
from prover.model.graph import DType, Graph


class LanguageModel:
    def __init__(self, graph: Graph) -> None:
        ids, logits = graph.tensors[graph.input], graph.tensors[graph.output]
        if ids.dtype != DType.I32 or len(ids.dims) != 1 or logits.dims4[1:] != (ids.dims[0], 1, 1):
            raise ProverError(
                f"not a language model: the input must be i32 token ids (T,) and the output logits "
                f"(V, T); this graph maps {ids.dtype.name} {ids.dims} to {logits.dtype.name} {logits.dims}"
            )
        self.graph = graph
        self.context = ids.dims[0]
        self.vocabulary = logits.dims[0]

    def window(self, tokens: list[int]) -> np.ndarray:
        """The forward pass's input for a history: its last T tokens, then zeros."""
        if not tokens:
            raise ProverError("the prompt is empty: a language model needs at least one token")
        if any(not 0 <= t < self.vocabulary for t in tokens):
            raise ProverError(f"a token outside the vocabulary 0..{self.vocabulary - 1}")
        kept = tokens[-self.context :]
        return np.array(kept + [0] * (self.context - len(kept)), np.int32)

    def position(self, tokens: list[int]) -> int:
        """The window position whose logits predict the next token."""
        return min(len(tokens), self.context) - 1

    def logits_at(self, outputs: np.ndarray, tokens: list[int]) -> np.ndarray:
        """The next-token logits from a forward pass's output (any dtype, (V * T,) values)."""
        return outputs.reshape(self.context, self.vocabulary)[self.position(tokens)]

    def next_token(self, tokens: list[int]) -> tuple[int, np.ndarray]:
        """The greedy next token and the forward pass's whole output."""
        outputs = run(self.graph, self.window(tokens)[None])[0]
        return int(np.argmax(self.logits_at(outputs, tokens))), outputs
