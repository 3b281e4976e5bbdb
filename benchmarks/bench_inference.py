"""Inference in the VM: wall time of `prover golden` + `prover run` (checkpoints and final.json
included), its CPU time, steps per inference and steps per multiply-accumulate, for the int8 MNIST
MLP, LeNet-5 and vision transformer and the byte-level language model (one forward pass); then the
language model's tokens per second in the numpy engine.

    python benchmarks/bench_inference.py [--model NAME=PATH ...] [--repeat 3]

Without --model it uses the trained int8 models in models/ when they exist, otherwise random-weight
models of the same shapes (MLP 784-500-10; LeNet-5 with C3's partial connectivity; the ViT and LM
of scripts/train_vit.py and train_lm.py), which take the same number of steps. The input is MNIST
test image 0 (the shipped examples/mnist/test_0000_label_7.png); the LM's is the bytes of
"def main():" padded to its context. Targets (issue 4): MLP <= 1 s, LeNet-5 <= 2 s.
MACs count the products of LINEAR, CONV2D (connected pairs) and MATMUL.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the spec-written random-weight models

from test_guest_models import I8, U8, Graph, int8_convnet_lenet5, int8_linear  # noqa: E402

from prover.model.data import mnist_test_digit  # noqa: E402
from prover.model.generate import LanguageModel  # noqa: E402
from prover.model.graph import DType, Op  # noqa: E402
from prover.model.graph import Graph as ModelGraph  # noqa: E402
from prover.model.modelfile import read_model, write_model  # noqa: E402
from prover.model.network import Conv2D, Linear, Network  # noqa: E402
from prover.model.quantize import quantize  # noqa: E402
from prover.model.sequence_layers import (  # noqa: E402
    ClassToken,
    Embedding,
    LayerNorm,
    PositionalEmbedding,
    TakeToken,
    Tokens,
    TransformerBlock,
)
from prover.task.run import run_task, write_golden  # noqa: E402

LM_PROMPT = b"def main():"

TARGETS = {"mlp-int8": 1.0, "lenet5-int8": 2.0}


def random_mlp() -> bytes:
    rng = np.random.default_rng(0)
    g = Graph()
    pixels = g.tensor("pixels", U8, [784])
    x = g.node(17, [pixels], I8, [784], X_ZP=0, Y_ZP=-128, MULT=1 << 30, SHIFT=0)  # REQUANTIZE
    hidden = int8_linear(rng, g, x, 784, 500, ACT_MIN=5)
    return g.write(pixels, int8_linear(rng, g, hidden, 500, 10))


def random_network(net: Network, calibration: np.ndarray) -> bytes:
    return write_model(quantize(net.to_graph(net.init_parameters(0)), calibration))


def random_vit() -> bytes:
    layers = [Conv2D(64, 7, stride=7), Tokens(), ClassToken(), PositionalEmbedding()]
    layers += [
        TransformerBlock(4, 64, 128),
        TransformerBlock(4, 64, 128),
        LayerNorm(),
        TakeToken(0),
        Linear(10),
    ]
    pixels = np.random.default_rng(0).integers(0, 256, (50, 784))
    return random_network(Network((1, 28, 28), layers, 1 / 255, -1.0), pixels)


def random_lm() -> bytes:
    layers = [Embedding(256, 160), PositionalEmbedding()]
    layers += [TransformerBlock(4, 160, 640, causal=True) for _ in range(4)] + [LayerNorm(), Linear(256)]
    return random_network(Network((32,), layers), np.random.default_rng(0).integers(0, 256, (20, 32)))


def macs(graph: ModelGraph) -> int:
    """Multiply-accumulates of the LINEAR, CONV2D (connected pairs only) and MATMUL nodes."""
    total = 0
    for node in graph.nodes:
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.output]
        if node.op == Op.LINEAR:
            total += y.count * x.dims[0]
        elif node.op == Op.CONV2D:
            w = graph.tensors[node.inputs[1]]
            mask = node.input(5)
            connected = 1.0 if mask is None else float(np.mean(graph.tensors[mask].data == 1))
            total += int(y.count * w.count // w.dims4[3] * connected)
        elif node.op == Op.MATMUL:
            total += y.count * x.dims[0]
    return total


def task_input(graph: ModelGraph, image: bytes) -> bytes:
    if graph.tensors[graph.input].dtype == DType.I32:
        return LanguageModel(graph).window(list(LM_PROMPT)).astype(">i4").tobytes()
    return image


def default_models() -> dict[str, bytes]:
    models = {}
    choices = [
        ("mlp-int8", "mlp*int8*.ggml", random_mlp),
        ("lenet5-int8", "lenet*int8*.ggml", int8_convnet_lenet5),
        ("vit-int8", "vit*int8*.ggml", random_vit),
        ("lm-int8", "lm*int8*.ggml", random_lm),
    ]
    for name, pattern, fallback in choices:
        found = sorted((ROOT / "models").glob(pattern))
        models[name if found else f"{name} (random weights)"] = found[0].read_bytes() if found else fallback()
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--repeat", type=int, default=3, help="runs per model; the best is reported")
    args = parser.parse_args()
    models = {n: Path(p).read_bytes() for n, p in (m.split("=", 1) for m in args.model)} or default_models()
    image = mnist_test_digit(0)[0].tobytes()
    # The wall time is the target's measure; the CPU time shows how much of it a busy machine added.
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; best of {args.repeat}")
    columns = ("golden s", "run s", "total s", "cpu s", "steps", "Msteps/s", "MACs", "steps/MAC", "target")
    print(f"{'model':32}", *(f"{column:>9}" for column in columns))
    language_models = {}
    for name, model in models.items():
        graph = read_model(model)
        data = task_input(graph, image)
        if graph.tensors[graph.input].dtype == DType.I32:
            language_models[name] = graph
        best = None
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as basedir:
                cpu = time.process_time()
                start = time.perf_counter()
                write_golden(Path(basedir), model, data)
                golden_done = time.perf_counter()
                final = run_task(Path(basedir), progress=False)
                end = time.perf_counter()
                cpu = time.process_time() - cpu
            timing = (end - start, golden_done - start, end - golden_done, cpu, final["steps"])
            best = timing if best is None or timing < best else best
        total, golden, run, cpu, steps = best
        target = TARGETS.get(name.split(" ")[0])
        verdict = "" if target is None else f"{'ok' if total <= target else 'MISS'} {target:.0f}s"
        figures = (
            f"{golden:9.3f}",
            f"{run:9.3f}",
            f"{total:9.3f}",
            f"{cpu:9.3f}",
            f"{steps:9d}",
            f"{steps / run / 1e6:9.2f}",
            f"{macs(graph):9d}",
            f"{steps / macs(graph):9.2f}",
        )
        print(f"{name:32}", *figures, f"{verdict:>9}")
    for name, graph in language_models.items():
        lm, tokens, count = LanguageModel(graph), list(LM_PROMPT), 32
        start = time.perf_counter()
        for _ in range(count):
            tokens.append(lm.next_token(tokens)[0])
        seconds = time.perf_counter() - start
        print(f"{name}: numpy engine, greedy decoding: {count / seconds:.1f} tokens/s ({count} tokens)")


if __name__ == "__main__":
    main()
