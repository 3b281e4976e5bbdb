"""GGUF files, llama.cpp's model format, read with its own `gguf` package (memory-mapped: a tensor's
bytes are read when the graph builder asks for that tensor, never the whole file at once).

    model = open_gguf(Path("model.gguf"))      # checks the header, architecture and tensor types
    model.architecture                         # "llama" or "gpt2"
    model.integer("context_length")            # llama.cpp's "{arch}.context_length" key
    model.tensors["blk.0.attn_q.weight"]       # f32 numpy array, the reader's shape (out, in)

Tensor types: F32 (a read-only view of the mapped file), F16 (widened to f32, exact) and Q8_0
(blocks of 32 int8 values with an f16 scale, dequantized exactly to f32: value * scale; the int8
quantizer then requantizes per output channel, docs/arithmetic.md "Q8_0 files"). Any other type,
architecture, a missing tensor or a truncated file is one ProverError line.

Architectures: `llama` (the LLaMA graph builder, prover.model.llama) and `gpt2` (the pre-norm
transformer chain of prover.model.sequence_layers, which is what the byte-level LM of
scripts/train_lm.py is; prover.model.importers.gguf_export writes it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from prover.errors import ProverError

ARCHITECTURES = ("llama", "gpt2")
TENSOR_TYPES = ("F32", "F16", "Q8_0")


class GGUFTensors(Mapping[str, np.ndarray]):
    """The file's tensors by llama.cpp name, as f32 arrays in the reader's numpy shape (dims
    reversed: a weight is (out, in), an embedding (vocabulary, dim)), converted on access."""

    def __init__(self, reader: Any) -> None:
        self._tensors = {t.name: t for t in reader.tensors}

    def __getitem__(self, name: str) -> np.ndarray:
        from gguf import GGMLQuantizationType, dequantize

        tensor = self._tensors.get(name)
        if tensor is None:
            raise ProverError(f"missing tensor {name}")
        shape = self.shape(name)
        if tensor.tensor_type == GGMLQuantizationType.F32:
            return tensor.data.reshape(shape)
        if tensor.tensor_type == GGMLQuantizationType.F16:
            return tensor.data.reshape(shape).astype(np.float32)
        return dequantize(tensor.data, GGMLQuantizationType.Q8_0).reshape(shape).astype(np.float32)

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        """A tensor's numpy shape, without reading its data."""
        if name not in self._tensors:
            raise ProverError(f"missing tensor {name}")
        return tuple(int(d) for d in reversed(self._tensors[name].shape.tolist()))

    def type_name(self, name: str) -> str:
        return self._tensors[name].tensor_type.name


class GGUFModel:
    """An opened GGUF file: its metadata keys (`value`, `integer`, `number` of llama.cpp's
    "{architecture}.KEY" keys) and its tensors (`tensors`)."""

    def __init__(self, path: Path, reader: Any) -> None:
        self.path = path
        self.reader = reader
        self.architecture = str(self.value("general.architecture", ""))
        self.tensors = GGUFTensors(reader)

    def value(self, key: str, default: Any = None) -> Any:
        """A metadata value (str, number, bool or list), `default` when the key is absent; an
        absent key without a default is an error naming it."""
        field = self.reader.fields.get(key)
        if field is None:
            if default is None:
                raise ProverError(f"missing metadata key {key}")
            return default
        return field.contents()

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.value(f"{self.architecture}.{key}", default)
        if isinstance(value, (list, str)) or int(value) != value or value < 1:
            raise ProverError(
                f"metadata key {self.architecture}.{key}: expected a positive integer, not {value!r}"
            )
        return int(value)

    def number(self, key: str, default: float | None = None) -> float:
        value = self.value(f"{self.architecture}.{key}", default)
        if isinstance(value, (list, str)):
            raise ProverError(f"metadata key {self.architecture}.{key}: expected a number, not {value!r}")
        return float(value)

    def fields(self) -> dict[str, Any]:
        return {
            key: field.contents() for key, field in self.reader.fields.items() if not key.startswith("GGUF.")
        }


def open_gguf(path: Path) -> GGUFModel:
    """The memory-mapped GGUF file at `path`, checked: a supported architecture and tensor types,
    and every tensor's data inside the file."""
    from gguf import GGUFReader

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ProverError(f"cannot read: {exc.strerror}") from None
    if size < 24:
        raise ProverError(f"truncated: {size} bytes is shorter than a GGUF header (24 bytes)")
    try:
        reader = GGUFReader(path, "r")
    except ValueError as exc:
        text = str(exc)
        if "cannot reshape array" in text:  # a tensor's data runs past the end of the mapped file
            raise ProverError(
                f"truncated: a tensor's data runs past the end of the file ({size} bytes)"
            ) from None
        raise ProverError(f"not a readable GGUF file: {text}") from None
    except (IndexError, KeyError, UnicodeDecodeError, OverflowError) as exc:
        raise ProverError(f"truncated or corrupt GGUF metadata ({type(exc).__name__}: {exc})") from None
    model = GGUFModel(path, reader)
    if model.architecture not in ARCHITECTURES:
        raise ProverError(
            f"unsupported architecture {model.architecture or '(none)'!r} "
            f"(supported: {', '.join(ARCHITECTURES)})"
        )
    for tensor in reader.tensors:
        if tensor.tensor_type.name not in TENSOR_TYPES:
            raise ProverError(
                f"tensor {tensor.name}: unsupported type {tensor.tensor_type.name} "
                f"(supported: {', '.join(TENSOR_TYPES)})"
            )
        if tensor.data_offset + tensor.n_bytes > size:
            raise ProverError(
                f"truncated: tensor {tensor.name}'s data runs past the end of the file ({size} bytes)"
            )
    return model
