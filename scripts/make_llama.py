"""Generate LLaMA-shaped int8 models with random weights for benchmarks/bench_llm.py, cached on disk
(never committed): ~/.cache/opml-prover/llama/llama-{size}-t{positions}.ggml.

    .venv/bin/python scripts/make_llama.py 125m [--positions 16] [--seed 0] [--force]

Sizes: 125m (dim 768, 12 layers, 12 heads, ffn 2048), 1b (TinyLlama's shape: dim 2048, 22 layers,
32 heads, 4 key / value heads, ffn 5632), 7b (LLaMA-2-7B's: dim 4096, 32 layers, 32 heads, ffn
11008); vocabulary 32,000 each. One forward pass computes `positions` tokens (a prompt and the
tokens generated after it, prover/task/generation.py).

How: quantizing a 7 B f32 graph would need 28 GB of f32 weights, so one block is built in f32 at
full width (prover/model/llama.py, random weights), calibrated and quantized by the project's
quantizer, and its int8 block is repeated `layers` times with fresh random int8 weights (the
same per-channel scales and requantization), a REQUANTIZE between blocks bringing each block's
output to the first block's input scale. Every integer the file holds is one the guest executes
(docs/arithmetic.md); the model is random, not trained, and that is all the benchmarks need.

The repeated blocks' weights are never all in memory (7 B of them would be 6.5 GB): the graph
holds zero-stride placeholders for them, and each is drawn from one seeded generator as the file
is written, tensor by tensor in index order (save_model's `fill`), so the file is the same
whatever the memory, and the peak is the full-width f32 block's quantization (about 4 GB at 7 B).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from prover.model.graph import DType, Graph, Node, Op
from prover.model.llama import LlamaConfig, llama_graph, random_weights
from prover.model.modelfile import Fill, save_model
from prover.model.quantize import quantize, quantize_multiplier

SIZES = {
    "125m": LlamaConfig(vocab=32000, dim=768, layers=12, heads=12, kv_heads=12, ffn_dim=2048),
    "1b": LlamaConfig(vocab=32000, dim=2048, layers=22, heads=32, kv_heads=4, ffn_dim=5632),
    "7b": LlamaConfig(vocab=32000, dim=4096, layers=32, heads=32, kv_heads=32, ffn_dim=11008),
}
WEIGHT_SPREAD = 40  # fresh int8 weights are uniform in -40..40 (the quantized N(0, 1/in) rows' spread)


def cache_path(size: str, positions: int) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "opml-prover" / "llama" / f"llama-{size}-t{positions}.ggml"


def one_block(config: LlamaConfig, positions: int, seed: int) -> Graph:
    """The int8 graph of the config with one block, quantized from random f32 weights."""
    single = replace(config, layers=1)
    f32 = llama_graph(single, random_weights(single, seed), positions, name="llama")
    calibration = np.random.default_rng(seed).integers(0, config.vocab, (4, positions)).astype(np.int32)
    return quantize(f32, calibration)


def repeated(block: Graph, config: LlamaConfig) -> tuple[Graph, list[int]]:
    """`block`'s single block repeated config.layers times, and the indices of the tensors that get
    fresh int8 LINEAR weights (the blocks after the first): placeholders until `fresh_weights`."""
    fresh: list[int] = []
    g = Graph(metadata={**block.metadata, **config.metadata(), "source": "make_llama (random int8)"})
    mapped: dict[int, int] = {}

    def tensor(index: int, prefix: str) -> int:
        """A block tensor's copy under `prefix` (shared tensors, outside the block, once)."""
        t = block.tensors[index]
        shared = not t.name.startswith("blk.0.")
        key = index if shared else (index, prefix)
        if key not in mapped:
            data = t.data
            if (
                data is not None
                and not shared
                and t.dtype == DType.I8
                and len(t.dims) == 2
                and prefix != "blk.0."
            ):
                data = np.broadcast_to(np.int8(0), t.shape)
                fresh.append(len(g.tensors))
            name = t.name if shared else prefix + t.name[len("blk.0.") :]
            mapped[key] = len(g.tensors)
            g.tensors.append(replace(t, name=name, data=data))
        return mapped[key]

    in_block = [n for n in block.nodes if block.tensors[n.output].name.startswith("blk.0.")]
    before = block.nodes[: block.nodes.index(in_block[0])]
    after = block.nodes[block.nodes.index(in_block[-1]) + 1 :]
    for node in before:
        g.nodes.append(
            Node(
                node.op,
                [None if t is None else tensor(t, "") for t in node.inputs],
                tensor(node.output, ""),
                node.attrs,
            )
        )
    block_in, block_out = in_block[0].inputs[0], in_block[-1].output
    (in_scale,), in_zp = block.tensors[block_in].scales, block.tensors[block_in].zero_point
    (out_scale,), out_zp = block.tensors[block_out].scales, block.tensors[block_out].zero_point
    x = mapped[block_in]
    for i in range(config.layers):
        prefix = f"blk.{i}."
        mapped[(block_in, prefix)] = x
        for node in in_block:
            inputs = [None if t is None else (x if t == block_in else tensor(t, prefix)) for t in node.inputs]
            g.nodes.append(Node(node.op, inputs, tensor(node.output, prefix), node.attrs))
        x = mapped[(block_out, prefix)]
        if i + 1 < config.layers:  # to the next block's input scale
            m0, shift = quantize_multiplier(out_scale / in_scale)
            x = g.add_node(
                Op.REQUANTIZE, [x], f"{prefix}rescale", DType.I8, g.tensors[x].dims, (in_scale,), in_zp,
                X_ZP=out_zp, Y_ZP=in_zp, MULT=m0, SHIFT=shift,
            )  # fmt: skip
    for node in after:
        inputs = [None if t is None else (x if t == block_out else tensor(t, "")) for t in node.inputs]
        g.nodes.append(Node(node.op, inputs, tensor(node.output, ""), node.attrs))
    g.input, g.output = mapped[block.input], mapped[block.output]
    return g, fresh


def fresh_weights(graph: Graph, fresh: list[int], seed: int) -> Fill:
    """save_model's `fill`: the `fresh` tensors' uniform int8 weights, drawn from one generator in
    index order (the order the writer asks for them), one tensor in memory at a time."""
    rng = np.random.default_rng(seed + 1)
    wanted, order = set(fresh), iter(fresh)

    def fill(index: int) -> np.ndarray | None:
        if index not in wanted:
            return None
        if index != next(order):  # another order would draw other weights: another model
            raise RuntimeError(f"tensor {index}'s fresh weights asked for out of index order")
        return rng.integers(-WEIGHT_SPREAD, WEIGHT_SPREAD + 1, graph.tensors[index].shape, dtype=np.int8)

    return fill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("size", choices=SIZES)
    parser.add_argument("--positions", type=int, default=16, help="tokens of one forward pass [16]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="generate again even if cached")
    args = parser.parse_args()
    path = cache_path(args.size, args.positions)
    if path.exists() and not args.force:
        print(path)
        return
    config = SIZES[args.size]
    start = time.perf_counter()
    graph, fresh = repeated(one_block(config, args.positions, args.seed), config)
    save_model(graph, path, fresh_weights(graph, fresh, args.seed))
    print(
        f"{path}: {config.parameters / 1e9:.2f} G parameters, {len(graph.nodes)} nodes, "
        f"{path.stat().st_size / 1e9:.2f} GB, {time.perf_counter() - start:.0f} s",
        file=sys.stderr,
    )
    print(path)


if __name__ == "__main__":
    main()
