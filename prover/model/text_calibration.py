"""Text for a language model's int8 calibration and its perplexity: token-id windows of the
forward pass's length, cut evenly from a text tokenized with the model's own vocabulary.

    windows = text_windows(graph, vocabulary, default_text(), count=64)    # (count, T) i32 ids
    int8 = quantize(graph, windows)
    perplexity(int8, windows)                                              # exp(mean next-token NLL)

The default text needs no download: the docstrings of a fixed list of the running interpreter's
standard-library modules (English prose with some code), read where they lie.
"""

from __future__ import annotations

import importlib
import math

import numpy as np

from prover.errors import ProverError
from prover.model import engine
from prover.model.graph import DType, Graph
from prover.model.vocabulary import Vocabulary

DEFAULT_MODULES = ("argparse", "collections", "json", "logging", "pathlib", "typing", "unittest", "zipfile")


def default_text() -> str:
    """The docstrings of DEFAULT_MODULES, in that order."""
    return "\n\n".join(importlib.import_module(name).__doc__ or "" for name in DEFAULT_MODULES)


def text_windows(graph: Graph, vocabulary: Vocabulary, text: str, count: int) -> np.ndarray:
    """`count` evenly spaced windows of T token ids of `text` (fewer when the text has fewer
    distinct windows; one zero-padded window when it is shorter than T)."""
    ids_tensor = graph.tensors[graph.input]
    if ids_tensor.dtype != DType.I32 or len(ids_tensor.dims) != 1:
        raise ProverError("--calibration-text: the model is not a language model (i32 token ids in)")
    length = ids_tensor.dims[0]
    ids = vocabulary.encode(text)
    if not ids:
        raise ProverError("--calibration-text: the text has no tokens")
    if max(ids) >= graph.tensors[graph.output].dims[0]:
        raise ProverError("--calibration-text: the vocabulary has ids beyond the model's logits")
    if len(ids) <= length:
        return np.array([ids + [0] * (length - len(ids))], np.int32)
    starts = np.unique(np.linspace(0, len(ids) - length, count).astype(int))
    return np.array([ids[s : s + length] for s in starts], np.int32)


def perplexity(graph: Graph, windows: np.ndarray) -> float:
    """exp of the mean negative log-likelihood of each window's next tokens (positions 0..T-2
    predicting 1..T-1), from the logits the graph outputs (int8 ones through their scale)."""
    vocab = graph.tensors[graph.output].dims[0]
    logits = engine.dequantized(graph, engine.run(graph, windows)).astype(np.float64)
    logits = logits.reshape(len(windows), windows.shape[1], vocab)[:, :-1]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    targets = windows[:, 1:]
    nll = -np.take_along_axis(log_probs, targets[..., None], axis=-1).mean()
    return math.exp(float(nll))
