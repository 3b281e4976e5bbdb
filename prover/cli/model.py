"""`prover predict`, `prover eval`, `prover convert` and `prover quantize`: the model files and the
numpy reference engine, without the VM.

    prover predict  --model m.ggml --data digit.png [--background auto|light|dark] [--json]
    prover eval     --model m.ggml [--mnist-dir DIR] [--limit N] [--background ...] [--json]
    prover convert  --from opml|torch|onnx|keras|tflite|gguf IN OUT [--module M:F --input-shape S]
                    [--input-background dark|light] [--pixel-scale A --pixel-offset B] [--positions N]
    prover quantize --model f32.ggml --out int8.ggml [--mnist-dir DIR | --calibration-text FILE]
                    [--calibration N] [--calibration-method minmax|percentile|mse]
    prover generate --model lm.ggml|lm.gguf --prompt TEXT [--tokens N] [--verify [--basedir D]] [--json]

Inputs and image sets of either polarity are brought to the model's input convention
(prover/model/convention.py) before inference; --background says the input's instead of detecting it.

Output files are written atomically (temp file + rename): a failed command leaves none behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np

from prover.cli.options import background_option, json_option
from prover.cli.run import fault_node_option, tile_macs_option
from prover.errors import ProverError
from prover.files import write_atomically
from prover.model.convention import DARK, LIGHT, Prepared
from prover.model.convert import SOURCES, convert_gguf, convert_model
from prover.model.data import load_mnist, mnist_dir, prepare_input, prepare_set
from prover.model.decode import CachedDecoder
from prover.model.engine import dequantized, run
from prover.model.evaluate import evaluate
from prover.model.generate import LanguageModel
from prover.model.graph import DType, Graph
from prover.model.modelfile import load_model, save_model
from prover.model.quantize import CALIBRATION_METHODS, quantize
from prover.model.text_calibration import default_text, text_windows
from prover.model.vocabulary import TextStream, tokenizer_path, vocabulary_for
from prover.output import Output, Record

DEFAULT_CALIBRATION = 1000
DEFAULT_TEXT_WINDOWS = 64


def _milliseconds(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


@click.command("predict")
@click.option(
    "--model", "model_path", required=True, type=click.Path(path_type=Path), help=".ggml model file"
)
@click.option(
    "--data", "data_path", required=True, type=click.Path(path_type=Path), help="PNG/JPEG, .npy or raw"
)
@background_option
@json_option
def predict_command(model_path: Path, data_path: Path, background: str, out: Output) -> None:
    """Classify one input with the numpy reference engine (--json: class, logits, how the input
    was prepared and timings)."""
    start = time.perf_counter()
    graph = load_model(model_path)
    loaded = _milliseconds(start)
    start = time.perf_counter()
    pixels, preparation = prepare_input(data_path, graph, background)
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
        "input": preparation.to_json() if preparation else None,
        "timings_ms": {"load_model": loaded, "load_input": prepared, "inference": inferred},
    }
    _tell(out, preparation)
    out.emit(Record(report, f"class {predicted}"))


def _tell(out: Output, preparation: Prepared | None) -> None:
    """How the input was prepared, if worth a line (in --json, the record's "input" field)."""
    if preparation is not None and preparation.note:
        out.note(preparation.note)


@click.command("eval")
@click.option(
    "--model", "model_path", required=True, type=click.Path(path_type=Path), help=".ggml model file"
)
@click.option(
    "--mnist-dir",
    "mnist_option",
    type=click.Path(path_type=Path),
    help="default: $MNIST_DIR, else ../shared/data/mnist if it exists, else data/mnist",
)
@click.option("--limit", type=click.IntRange(min=1), help="only the first N test images")
@background_option
@json_option
def eval_command(
    model_path: Path, mnist_option: Path | None, limit: int | None, background: str, out: Output
) -> None:
    """Accuracy on the MNIST test set (10,000 images, of either polarity) with the numpy reference
    engine (--json: accuracy, counts, time and how the set was prepared)."""
    result = evaluate(model_path, mnist_dir(mnist_option), limit, background)
    if result["input"] and result["input"]["note"]:
        out.note(result["input"]["note"])
    text = (
        f"accuracy {result['accuracy']:.2f} % ({result['correct']}/{result['total']} test images, "
        f"{result['mode']}, {result['seconds']:.1f} s)"
    )
    out.emit(Record(result, text))


@click.command("convert")
@click.option("--from", "source", required=True, type=click.Choice(SOURCES), help="input format")
@click.option(
    "--module",
    help="torch: MODULE:FUNCTION or FILE.py:FUNCTION building the nn.Module whose state_dict IN holds",
)
@click.option("--input-shape", help="torch: one input without the batch dimension, e.g. 784 or 1,28,28")
@click.option(
    "--input-background",
    type=click.Choice((DARK, LIGHT)),
    default=DARK,
    show_default=True,
    help="background of the images the model was trained on, recorded in the file: dark (canonical "
    "MNIST, torchvision, Keras) or light (this project's MNIST copy)",
)
@click.option(
    "--pixel-scale", help="tflite: the model's input is pixel * SCALE + OFFSET (default 1/255, offset -1)"
)
@click.option("--pixel-offset", help="tflite: see --pixel-scale (a whole number of pixel steps)")
@click.option(
    "--positions",
    type=click.IntRange(min=1),
    help="gguf: token positions of the forward pass (default: the file's context_length)",
)
@json_option
@click.argument("in_path", type=click.Path(path_type=Path))
@click.argument("out_path", type=click.Path(path_type=Path))
def convert_command(
    source: str,
    module: str | None,
    input_shape: str | None,
    input_background: str,
    pixel_scale: str | None,
    pixel_offset: str | None,
    positions: int | None,
    out: Output,
    in_path: Path,
    out_path: Path,
) -> None:
    """Convert a model to a .ggml file: to f32 from OPML's legacy MNIST MLP files (opml), a PyTorch
    state_dict or pickled module (torch, needs torch), an ONNX file (onnx, needs onnx) or a Keras 3
    .keras file (keras, needs h5py); to int8 from a full-integer quantized TFLite file (tflite, needs
    tflite), with the file's own scales and zero points, bit-exact with LiteRT's reference kernels;
    to f32 from a llama.cpp GGUF file (gguf: llama or gpt2 architecture, F32 / F16 / Q8_0 tensors),
    whose vocabulary goes beside OUT as OUT's name .tokenizer.json (int8 through `prover quantize`).
    An image input's convention is recorded in the file."""
    pixel = None if pixel_scale is None and pixel_offset is None else (pixel_scale, pixel_offset)
    if source == "gguf":  # F16 / Q8_0 weights converted as they are written: one at a time in memory
        graph, fill = convert_gguf(in_path, positions)
    else:
        graph, fill = convert_model(source, in_path, module, input_shape, input_background, pixel), None
    vocabulary = vocabulary_for(in_path).to_json().encode() if source == "gguf" else None
    save_model(graph, out_path, fill)  # streamed tensor by tensor (a converted LLM can be gigabytes)
    if vocabulary is not None:
        write_atomically(tokenizer_path(out_path), vocabulary)
    out.emit(_written(out_path, graph, str(graph.metadata["mode"])))


@click.command("quantize")
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path), help="f32 .ggml model")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="int8 .ggml to write")
@click.option("--mnist-dir", "mnist_option", type=click.Path(path_type=Path), help="calibration images")
@click.option(
    "--calibration-text",
    "text_path",
    type=click.Path(path_type=Path),
    help="language models: calibrate on windows of this UTF-8 text (default: standard-library docstrings)",
)
@click.option(
    "--calibration",
    type=click.IntRange(min=1),
    help=f"images (default {DEFAULT_CALIBRATION}) or text windows (default {DEFAULT_TEXT_WINDOWS})",
)
@click.option(
    "--calibration-method",
    type=click.Choice(CALIBRATION_METHODS),
    default="minmax",
    show_default=True,
    help="each activation's range: min / max, 0.01-99.99th percentiles, or least quantization MSE",
)
@json_option
def quantize_command(
    model_path: Path,
    out_path: Path,
    mnist_option: Path | None,
    text_path: Path | None,
    calibration: int | None,
    calibration_method: str,
    out: Output,
) -> None:
    """Post-training int8 quantization, calibrated on the first N MNIST training images (brought
    to the model's input convention), or for a language model (i32 token ids in) on N windows of
    a text tokenized with the model's vocabulary (NAME.tokenizer.json beside it, else bytes)."""
    graph = load_model(model_path)
    if graph.tensors[graph.input].dtype == DType.I32:
        text = default_text() if text_path is None else _read_text(text_path)
        windows = text_windows(graph, vocabulary_for(model_path), text, calibration or DEFAULT_TEXT_WINDOWS)
        quantized = quantize(graph, windows, calibration_method)
        source = "the default text" if text_path is None else str(text_path)
        what = f"int8, calibrated ({calibration_method}) on {len(windows)} windows of {source}"
        beside = tokenizer_path(model_path)
        if beside.exists():
            write_atomically(tokenizer_path(out_path), beside.read_bytes())
    else:
        calibration = calibration or DEFAULT_CALIBRATION
        directory = mnist_dir(mnist_option)
        images, _ = load_mnist(directory, "train")
        images, preparation = prepare_set(images[:calibration], graph, "auto", f"{directory} (train)")
        _tell(out, preparation)
        quantized = quantize(graph, images[:calibration], calibration_method)
        count = min(calibration, len(images))
        what = f"int8, calibrated ({calibration_method}) on {count} training images"
    save_model(quantized, out_path)
    out.emit(_written(out_path, quantized, what))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProverError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ProverError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _written(path: Path, graph: Graph, what: str) -> Record:
    summary = {
        "path": str(path),
        "bytes": path.stat().st_size,
        "nodes": len(graph.nodes),
        "mode": graph.metadata["mode"],
    }
    return Record(summary, f"wrote {path} ({len(graph.nodes)} nodes, {what})")


MODEL_COMMANDS = (predict_command, eval_command, convert_command, quantize_command)


@click.command("generate")
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(path_type=Path),
    help="language model: .ggml (its NAME.tokenizer.json beside, else byte tokens) or .gguf",
)
@click.option("--prompt", required=True, help="the text to continue (tokenized with the model's vocabulary)")
@click.option("--tokens", "count", type=click.IntRange(min=0), default=32, show_default=True)
@click.option("--verify", is_flag=True, help="also run each token's forward pass in the VM and compare")
@click.option(
    "--claim",
    is_flag=True,
    help="write the generation claim (one graph task: the forward pass over the prompt and the tokens "
    "but the last) and its run into --basedir, for `prover submit`",
)
@click.option(
    "--claimed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="with --claim: another party's generation.json; the task is the one of the tokens it claims",
)
@click.option(
    "--basedir",
    type=click.Path(path_type=Path),
    default=Path("generate"),
    show_default=True,
    help="--claim: graph.json and generation.json go here; --verify: each pass's golden image and run "
    "go to BASEDIR/token-N",
)
@fault_node_option
@tile_macs_option
@json_option
def generate_command(
    model_path: Path,
    prompt: str,
    count: int,
    verify: bool,
    claim: bool,
    claimed: Path | None,
    basedir: Path,
    fault_node: int | None,
    tile_macs: int,
    out: Output,
) -> None:
    """Greedy decoding with the numpy reference engine, printing the text as it grows (--json: the
    prompt's and the generated token ids and the text; --verify: each pass's S0, SN and steps;
    --claim: the generation claim's graph task and run, docs/dispute-game.md "Generation claims").
    A .ggml model runs one forward pass per token over the window of its last T tokens; a .gguf
    file is converted in memory (f32) and decoded with a KV cache within its context."""
    vocabulary = vocabulary_for(model_path)
    tokens = vocabulary.encode(prompt)
    if (claim or verify) and model_path.suffix == ".gguf":
        raise ProverError("--claim and --verify need a .ggml model: prover convert --from gguf first")
    if claim:
        _generation_claim(model_path, prompt, tokens, count, claimed, basedir, fault_node, tile_macs, out)
        return
    if claimed is not None or fault_node is not None:
        raise ProverError("--claimed and --fault-node go with --claim")
    if model_path.suffix == ".gguf":
        decoder = CachedDecoder(convert_model("gguf", model_path))
        next_tokens = ((token, None) for token in decoder.greedy(tokens, count))
    else:
        model = load_model(model_path)
        lm = LanguageModel(model)
        lm.window(tokens)  # checks the prompt before anything is printed
        if vocabulary.size != lm.vocabulary:
            out.note(
                f"no {tokenizer_path(model_path).name} beside the model: its tokens are taken as bytes "
                f"(ids of {vocabulary.size} of its {lm.vocabulary} show as text)"
            )
        next_tokens = _window_tokens(lm, tokens, count, model_path if verify else None, basedir)
    stream = TextStream(vocabulary, tokens)
    if not out.as_json:
        click.echo(prompt, nl=False)
    prompt_ids, generated, passes = list(tokens), [], []
    start = time.perf_counter()
    for token, verified in next_tokens:
        generated.append(token)
        if verified is not None:
            passes.append(verified)
        text = stream.push(token)
        if not out.as_json:
            click.echo(text, nl=False)
    seconds = time.perf_counter() - start
    fields = {
        "prompt": prompt,
        "prompt_ids": prompt_ids,
        "ids": generated,
        "text": stream.generated_text(),
        "tokens_per_second": round(count / seconds, 3) if seconds > 0 else None,
    }
    if verify:
        fields["verified"] = passes
    summary = f"\n{count} tokens, {fields['tokens_per_second']} tokens/s"
    if verify:
        summary += f"; every forward pass verified in the VM ({sum(p['steps'] for p in passes)} steps)"
    out.emit(Record(fields, stream.finish() + summary))


def _window_tokens(
    lm: LanguageModel, tokens: list[int], count: int, verify_model: Path | None, basedir: Path
) -> Iterator[tuple[int, dict | None]]:
    """Greedy tokens of a .ggml LM, one forward pass over the window per token (each verified
    in the VM when `verify_model` is given); `tokens` grows with them."""
    from prover.task.forward import verify_forward

    model_bytes = verify_model.read_bytes() if verify_model is not None else b""
    for index in range(count):
        token, outputs = lm.next_token(tokens)
        verified = None
        if verify_model is not None:
            verified = verify_forward(basedir / f"token-{index}", model_bytes, lm.window(tokens), outputs)
        tokens.append(token)
        yield token, verified


def _generation_claim(
    model_path: Path,
    prompt: str,
    prompt_ids: list[int],
    count: int,
    claimed: Path | None,
    basedir: Path,
    fault_node: int | None,
    tile_macs: int,
    out: Output,
) -> None:
    from prover.task.basedir import read_json
    from prover.task.generation import write_generation_claim

    stated = None
    if claimed is not None:
        other = read_json(claimed, "a generation claim (generation.json of `prover generate --claim`)")
        if other.get("prompt") != prompt_ids:
            raise ProverError(f"{claimed}: a claim about another prompt")
        stated = other["claimed"]
    record = write_generation_claim(
        basedir,
        model_path,
        prompt_ids,
        count,
        stated,
        tile_macs,
        fault_node,
        out.warn,
        not out.as_json,
    )
    vocabulary = vocabulary_for(model_path)
    text, shown = None, f" -> ids {record['claimed']}"
    if vocabulary.size == record["vocabulary"]:  # the model's own vocabulary (or bytes for the byte LM)
        stream = TextStream(vocabulary, prompt_ids)
        text = shown = "".join(stream.push(token) for token in record["claimed"]) + stream.finish()
    verdict = "a greedy generation" if record["greedy"] else "NOT a greedy generation of these tokens"
    agrees = "agrees with" if record["agrees"] else "differs from"
    out.emit(
        Record(
            {**record, "text": text},
            f"{prompt}{shown}\nclaim: {count} tokens over {record['node_count']} nodes; "
            f"its answer is {verdict}; this party's own decode {agrees} it",
        )
    )
