"""`prover predict`, `prover eval`, `prover convert` and `prover quantize`: the model files and the
numpy reference engine, without the VM.

    prover predict  --model m.ggml --data digit.png [--json]
    prover eval     --model m.ggml [--mnist-dir DIR] [--limit N] [--json]
    prover convert  --from opml|torch|onnx|keras IN OUT [--module M:F --input-shape S]
    prover quantize --model f32.ggml --out int8.ggml [--mnist-dir DIR] [--calibration N]

Output files are written atomically (temp file + rename): a failed command leaves none behind.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from prover.data import load_input, load_mnist, mnist_dir
from prover.engine import dequantized, run
from prover.errors import ProverError
from prover.files import write_atomically
from prover.graph import Graph
from prover.modelfile import load_model, write_model
from prover.opml import read_opml
from prover.output import Output, Record, json_option
from prover.quantize import quantize

EVAL_BATCH = 1000
SOURCES = ("opml", "torch", "onnx", "keras")  # prover convert --from
# The importers' optional packages and how to get them.
IMPORTER_PACKAGES = {
    "torch": "pip install torch==2.13.0, or the train extra",
    "onnx": "pip install 'opml-prover[import]'",
    "h5py": "pip install 'opml-prover[import]'",
}
DEFAULT_CALIBRATION = 1000


def _milliseconds(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


@click.command("predict")
@click.option(
    "--model", "model_path", required=True, type=click.Path(path_type=Path), help=".ggml model file"
)
@click.option(
    "--data", "data_path", required=True, type=click.Path(path_type=Path), help="PNG/JPEG, .npy or raw"
)
@json_option
def predict_command(model_path: Path, data_path: Path, out: Output) -> None:
    """Classify one input with the numpy reference engine (--json: class, logits and timings)."""
    start = time.perf_counter()
    graph = load_model(model_path)
    loaded = _milliseconds(start)
    start = time.perf_counter()
    pixels = load_input(data_path, graph.tensors[graph.input])
    prepared = _milliseconds(start)
    start = time.perf_counter()
    outputs = run(graph, pixels[None])
    inferred = _milliseconds(start)
    predicted = int(np.argmax(outputs[0]))
    report = {
        "class": predicted,
        "logits": [float(v) for v in dequantized(graph, outputs)[0]],
        "raw_output": outputs[0].tolist(),
        "mode": graph.metadata.get("mode"),
        "timings_ms": {"load_model": loaded, "load_input": prepared, "inference": inferred},
    }
    out.emit(Record(report, f"class {predicted}"))


@click.command("eval")
@click.option(
    "--model", "model_path", required=True, type=click.Path(path_type=Path), help=".ggml model file"
)
@click.option(
    "--mnist-dir",
    "mnist_option",
    type=click.Path(path_type=Path),
    help="default: $MNIST_DIR, ../shared/data/mnist",
)
@click.option("--limit", type=click.IntRange(min=1), help="only the first N test images")
@json_option
def eval_command(model_path: Path, mnist_option: Path | None, limit: int | None, out: Output) -> None:
    """Accuracy on the MNIST test set (10,000 images) with the numpy reference engine (--json:
    accuracy, counts and time)."""
    result = _evaluate(model_path, mnist_dir(mnist_option), limit)
    text = (
        f"accuracy {result['accuracy']:.2f} % ({result['correct']}/{result['total']} test images, "
        f"{result['mode']}, {result['seconds']:.1f} s)"
    )
    out.emit(Record(result, text))


def _evaluate(model_path: Path, directory: Path, limit: int | None) -> dict[str, object]:
    graph = load_model(model_path)
    images, labels = load_mnist(directory, "t10k")
    images, labels = images[:limit], labels[:limit]
    if images.shape[1] != graph.tensors[graph.input].count:
        raise ProverError(
            f"{model_path}: the model input {graph.tensors[graph.input].dims} is not a 28x28 image"
        )
    start = time.perf_counter()
    predictions = []
    for first in tqdm(range(0, len(images), EVAL_BATCH), desc="eval", unit="batch", leave=False):
        predictions.append(run(graph, images[first : first + EVAL_BATCH]).argmax(axis=1))
    correct = int((np.concatenate(predictions) == labels).sum())
    return {
        "accuracy": round(100 * correct / len(labels), 4),
        "correct": correct,
        "total": len(labels),
        "seconds": round(time.perf_counter() - start, 3),
        "mode": graph.metadata.get("mode"),
    }


def _input_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise ProverError(f"--input-shape {text!r}: expected positive integers such as 784 or 1,28,28")
    return shape


def _convert(source: str, in_path: Path, module: str | None, input_shape: str | None) -> Graph:
    if source == "opml":
        try:
            data = in_path.read_bytes()
        except OSError as exc:
            raise ProverError(f"{in_path}: cannot read: {exc.strerror}") from None
        return read_opml(data)
    if source == "onnx":
        from prover.importers.onnx_import import import_onnx

        return import_onnx(in_path).to_graph({"source": "onnx"})
    if source == "keras":
        from prover.importers.keras_import import import_keras

        return import_keras(in_path).to_graph({"source": "keras"})
    if input_shape is None:
        raise ProverError("--from torch needs --input-shape (one input without the batch dimension)")
    from prover.importers.torch_import import load_torch

    return load_torch(in_path, _input_shape(input_shape), module).to_graph({"source": "torch"})


@click.command("convert")
@click.option("--from", "source", required=True, type=click.Choice(SOURCES), help="input format")
@click.option(
    "--module",
    help="torch: MODULE:FUNCTION or FILE.py:FUNCTION building the nn.Module whose state_dict IN holds",
)
@click.option("--input-shape", help="torch: one input without the batch dimension, e.g. 784 or 1,28,28")
@json_option
@click.argument("in_path", type=click.Path(path_type=Path))
@click.argument("out_path", type=click.Path(path_type=Path))
def convert_command(
    source: str, module: str | None, input_shape: str | None, out: Output, in_path: Path, out_path: Path
) -> None:
    """Convert a model to an f32 .ggml file: OPML's legacy MNIST MLP files (opml), a PyTorch
    state_dict or pickled module (torch, needs torch), an ONNX file (onnx, needs onnx) or a Keras 3
    .keras file (keras, needs h5py)."""
    try:
        graph = _convert(source, in_path, module, input_shape)
    except ProverError as exc:
        raise ProverError(f"{in_path}: {exc}") from None
    except ModuleNotFoundError as exc:
        if exc.name not in IMPORTER_PACKAGES:
            raise
        raise ProverError(
            f"--from {source} needs the {exc.name} package ({IMPORTER_PACKAGES[exc.name]})"
        ) from None
    data = write_model(graph)
    write_atomically(out_path, data)
    out.emit(_written(out_path, data, graph, "f32"))


@click.command("quantize")
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path), help="f32 .ggml model")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="int8 .ggml to write")
@click.option("--mnist-dir", "mnist_option", type=click.Path(path_type=Path), help="calibration images")
@click.option("--calibration", type=click.IntRange(min=1), default=DEFAULT_CALIBRATION, show_default=True)
@json_option
def quantize_command(
    model_path: Path, out_path: Path, mnist_option: Path | None, calibration: int, out: Output
) -> None:
    """Post-training int8 quantization, calibrated on the first N MNIST training images."""
    graph = load_model(model_path)
    images, _ = load_mnist(mnist_dir(mnist_option), "train")
    quantized = quantize(graph, images[:calibration])
    data = write_model(quantized)
    write_atomically(out_path, data)
    count = min(calibration, len(images))
    out.emit(_written(out_path, data, quantized, f"int8, calibrated on {count} training images"))


def _written(path: Path, data: bytes, graph: Graph, what: str) -> Record:
    summary = {
        "path": str(path),
        "bytes": len(data),
        "nodes": len(graph.nodes),
        "mode": graph.metadata["mode"],
    }
    return Record(summary, f"wrote {path} ({len(graph.nodes)} nodes, {what})")


MODEL_COMMANDS = (predict_command, eval_command, convert_command, quantize_command)
