"""Models from other formats as .ggml graphs (`prover convert`): OPML's legacy MLP files, PyTorch,
ONNX, Keras 3 and GGUF (f32 graphs), and quantized TFLite files (int8 graphs). An importer's optional
package is imported only when its format is asked for."""

from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

from prover.errors import ProverError
from prover.model.convention import DARK, with_convention
from prover.model.graph import Graph
from prover.model.modelfile import Fill
from prover.model.opml import read_opml

SOURCES = ("opml", "torch", "onnx", "keras", "tflite", "gguf")
# The importers' optional packages and how to get them.
IMPORTER_PACKAGES = {
    "torch": "pip install torch==2.13.0, or the train extra",
    "onnx": "pip install 'opml-prover[import]'",
    "h5py": "pip install 'opml-prover[import]'",
    "tflite": "pip install 'opml-prover[import]'",
    "flatbuffers": "pip install 'opml-prover[import]'",
    "gguf": "pip install gguf==0.19.0",
    "tokenizers": "pip install tokenizers==0.23.3",
}


def convert_model(
    source: str,
    in_path: Path,
    module: str | None = None,
    input_shape: str | None = None,
    background: str = DARK,
    pixel: tuple[str | None, str | None] | None = None,
    positions: int | None = None,
) -> Graph:
    """The graph of the model at `in_path` in format `source` (one of SOURCES), recording that its
    image input has a `background` ("light" or "dark") background; `pixel` is tflite's input
    normalization (scale, offset) as text ("1/255", "-1"); `positions` a GGUF language model's
    forward-pass length (default its context). A file the importer rejects or a missing
    importer package is one ProverError line."""
    with _named(source, in_path):
        if source == "gguf":
            from prover.model.importers.gguf_import import import_gguf

            return import_gguf(in_path, positions)
        return with_convention(_import(source, in_path, module, input_shape, pixel), background)


def convert_gguf(in_path: Path, positions: int | None = None) -> tuple[Graph, Fill]:
    """convert_model of a GGUF file with its F16 and Q8_0 weights converted only as save_model
    writes them (its `fill`): `prover convert` of a model larger than memory in f32."""
    with _named("gguf", in_path):
        from prover.model.importers.gguf_import import import_gguf_deferred

        return import_gguf_deferred(in_path, positions)


@contextmanager
def _named(source: str, in_path: Path) -> Iterator[None]:
    """An importer's ProverError named after the file (once), a missing package said how to get."""
    try:
        yield
    except ProverError as exc:
        message = str(exc)
        raise ProverError(message if message.startswith(f"{in_path}:") else f"{in_path}: {message}") from None
    except ModuleNotFoundError as exc:
        if exc.name not in IMPORTER_PACKAGES:
            raise
        raise ProverError(
            f"--from {source} needs the {exc.name} package ({IMPORTER_PACKAGES[exc.name]})"
        ) from None


def _input_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise ProverError(f"--input-shape {text!r}: expected positive integers such as 784 or 1,28,28")
    return shape


def _number(option: str, text: str) -> float:
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise ProverError(f"{option} {text!r}: expected a number such as 0.5, -1 or 1/255") from None


def _import(
    source: str,
    in_path: Path,
    module: str | None,
    input_shape: str | None,
    pixel: tuple[str | None, str | None] | None,
) -> Graph:
    if source == "opml":
        try:
            data = in_path.read_bytes()
        except OSError as exc:
            raise ProverError(f"cannot read: {exc.strerror}") from None
        return read_opml(data)
    if source == "onnx":
        from prover.model.importers.onnx_import import import_onnx

        return import_onnx(in_path).to_graph({"source": "onnx"})
    if source == "tflite":
        from prover.model.importers.tflite_import import PIXEL_OFFSET, PIXEL_SCALE, import_tflite

        if pixel is None:
            return import_tflite(in_path)
        scale = PIXEL_SCALE if pixel[0] is None else _number("--pixel-scale", pixel[0])
        offset = PIXEL_OFFSET if pixel[1] is None else _number("--pixel-offset", pixel[1])
        return import_tflite(in_path, scale, offset)
    if source == "keras":
        from prover.model.importers.keras_import import import_keras

        return import_keras(in_path).to_graph({"source": "keras"})
    if input_shape is None:
        raise ProverError("--from torch needs --input-shape (one input without the batch dimension)")
    from prover.model.importers.torch_import import load_torch

    return load_torch(in_path, _input_shape(input_shape), module).to_graph({"source": "torch"})
