"""GGUF models as f32 .ggml graphs (`prover convert --from gguf`):

    graph = import_gguf(Path("model.gguf"))              # over the file's context_length positions
    graph = import_gguf(Path("model.gguf"), positions=128)

- `llama`: prover.model.llama's graph from the file's `llama.*` keys and tensors. Refused: a
  partial rotary dimension (rope.dimension_count != head_dim), RoPE scaling, experts.
- `gpt2`: the pre-norm transformer chain of prover.model.sequence_layers (learned positions,
  LayerNorm with bias, fused qkv, GELU MLP), the form of the byte-level LM of scripts/train_lm.py
  (prover.model.importers.gguf_export writes it). Its GELU is erf's (llama.cpp's gpt2 uses the tanh
  approximation, a difference of up to ~1e-3 in an activation), and an `output.bias`, which our LM
  has and llama.cpp's gpt2 has not, is read when present.
Q8_0 and F16 tensors come in dequantized exactly; `prover quantize` then makes the int8 graph.

`import_gguf_deferred` gives a `llama` file's graph with its F16 and Q8_0 weights as zero-stride
placeholders and the `fill` that converts each when save_model writes it (`prover convert`): a
7 B F16 file is 27 GB in f32, more than this machine's memory, so the conversion holds one
converted tensor at a time (F32 tensors are views of the mapped file either way).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from prover.errors import ProverError
from prover.model.graph import Graph
from prover.model.importers.gguf import GGUFModel, GGUFTensors, open_gguf
from prover.model.importers.gguf_export import BLOCK_NAMES
from prover.model.importers.imported import ImportedLayer, ImportedModel
from prover.model.llama import GGUF_KEYS, LlamaConfig, llama_graph
from prover.model.modelfile import Fill
from prover.model.sequence_layers import LAYERNORM_EPS


def import_gguf(path: Path, positions: int | None = None) -> Graph:
    """The f32 graph of the GGUF file at `path` over `positions` token positions (default: the
    file's context_length), every tensor converted."""
    graph, fill = import_gguf_deferred(path, positions)
    for index, tensor in enumerate(graph.tensors):
        data = fill(index)
        if data is not None:
            tensor.data = data
    return graph


def import_gguf_deferred(path: Path, positions: int | None = None) -> tuple[Graph, Fill]:
    """import_gguf's graph with a `llama` file's F16 and Q8_0 weights still to convert: zero-stride
    placeholders of their shape, and save_model's `fill` that converts them one at a time."""
    model = open_gguf(path)
    name = str(model.value("general.name", path.stem))[:200]
    if model.architecture == "llama":
        deferred = Deferred(model.tensors)
        graph = _llama(model, deferred, positions, name)
        fill = deferred.fill(graph)
    else:
        graph, fill = _gpt2(model, positions, name), _nothing
    graph.metadata["source"] = "gguf"
    return graph, fill


def _nothing(index: int) -> None:
    """A graph with nothing deferred: every tensor written as it is."""


class Deferred(Mapping[str, np.ndarray]):
    """The file's tensors for the LLaMA graph builder (which stores them as they are): F32 ones
    as read (views of the mapped file), the others as zero-stride f32 placeholders."""

    def __init__(self, tensors: GGUFTensors) -> None:
        self.tensors = tensors
        self.placeholders: set[str] = set()

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.tensors and self.tensors.type_name(name) != "F32":
            self.placeholders.add(name)
            return np.broadcast_to(np.float32(0), self.tensors.shape(name))
        return self.tensors[name]

    def __contains__(self, name: object) -> bool:
        return name in self.tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def fill(self, graph: Graph) -> Fill:
        """save_model's `fill` for `graph`: a placeholder tensor's conversion, None for the others."""

        def converted(index: int) -> np.ndarray | None:
            name = graph.tensors[index].name
            return self.tensors[name] if name in self.placeholders else None

        return converted


def _positions(positions: int | None, context: int) -> int:
    if positions is not None and not 1 <= positions <= context:
        raise ProverError(f"--positions {positions}: the model's context is 1..{context}")
    return positions or context


def llama_config(model: GGUFModel) -> LlamaConfig:
    """The LLaMA hyper-parameters of a `llama` GGUF file (llama.cpp's keys and defaults)."""
    fields = {key: model.value(key) for key in GGUF_KEYS.values() if key in model.reader.fields}
    config = LlamaConfig.from_gguf(fields, model.tensors.shape("token_embd.weight")[0])
    rotary = model.value("llama.rope.dimension_count", config.head_dim)
    if rotary != config.head_dim:
        raise ProverError(f"llama.rope.dimension_count {rotary}: needs head_dim, {config.head_dim}")
    scaling = model.value("llama.rope.scaling.type", "none")
    if scaling != "none":
        raise ProverError(f"llama.rope.scaling.type {scaling!r}: RoPE scaling is not supported")
    if model.value("llama.expert_count", 0):
        raise ProverError("llama.expert_count: mixture-of-experts models are not supported")
    return config


def _llama(model: GGUFModel, weights: Mapping[str, np.ndarray], positions: int | None, name: str) -> Graph:
    config = llama_config(model)
    return llama_graph(config, weights, _positions(positions, config.context), name)


def _gpt2(model: GGUFModel, positions: int | None, name: str) -> Graph:
    eps = model.number("attention.layer_norm_epsilon")
    if not np.isclose(eps, LAYERNORM_EPS, rtol=1e-6):
        raise ProverError(f"gpt2.attention.layer_norm_epsilon {eps}: only {LAYERNORM_EPS} is supported")
    count = _positions(positions, model.integer("context_length"))
    heads, t = model.integer("attention.head_count"), model.tensors
    if model.value("gpt2.attention.head_count_kv", heads) != heads:
        raise ProverError("gpt2.attention.head_count_kv: grouped-query attention is not supported for gpt2")
    layers = [
        ImportedLayer("embedding", {"weight": t["token_embd.weight"]}),
        ImportedLayer("positions", {"weight": t["position_embd.weight"][:count]}),
    ]
    for i in range(model.integer("block_count")):
        b = f"blk.{i}."
        arrays = {
            f"{ours}.{kind}": t[f"{b}{theirs}.{kind}"]
            for ours, theirs in BLOCK_NAMES.items()
            for kind in ("weight", "bias")
        }
        layers.append(ImportedLayer("transformer_block", arrays, {"heads": heads, "causal": 1}))
    final = {"weight": t["output_norm.weight"], "bias": t["output_norm.bias"]}
    layers.append(ImportedLayer("layernorm", final))
    head = t["output.weight"] if "output.weight" in t else t["token_embd.weight"]
    bias = t["output.bias"] if "output.bias" in t else np.zeros(len(head), np.float32)
    layers.append(ImportedLayer("linear", {"weight": head, "bias": bias}))
    imported = ImportedModel((count,), 1.0, 0.0, layers)
    return imported.to_graph({"name": name, "arch": "gpt2", "mode": "f32"})
