"""The .ggml file (docs/model-format.md): `write_model(graph) -> bytes`, `read_model(bytes) -> Graph`,
and `save_model` / `load_model` for paths (saving is atomic: a temp file, then os.replace; it
streams the file tensor by tensor, so a model of gigabytes is never one bytes object).

Version 1 holds 32-bit data offsets; version 2, written only when the file would pass 4 GiB, holds
64-bit ones (the only difference). Both are read.

The reader accepts exactly the files the guest's C reader accepts and rejects anything else with a
ModelFormatError naming the byte offset and the problem. Every count is bounded before it drives a
loop and every read is bounds-checked, so any byte string ends in a Graph or that error, quickly.
The writer lays a graph out canonically (tables, zero padding to a 32-byte data_start, each
tensor's data at the next multiple of 32) after `check_graph`, so it never writes an invalid file.
"""

from __future__ import annotations

import itertools
import mmap
import os
import struct
import weakref
from collections.abc import Callable, Iterator

import numpy as np

from prover.errors import ProverError
from prover.files import write_atomically
from prover.model.graph import (
    MAX_INPUTS,
    MAX_META,
    MAX_NODES,
    MAX_STR,
    MAX_TENSORS,
    Attr,
    DType,
    Graph,
    GraphError,
    MetaValue,
    Node,
    Op,
    Tensor,
    check_graph,
    check_tensor,
)

MAGIC = 0x67676D6C
VERSION = 1
VERSION_64 = 2  # 64-bit data offsets: files over 4 GiB
HEADER_SIZE = 32
ALIGN = 32
NO_DATA = 0xFFFFFFFF
NO_DATA_64 = (1 << 64) - 1
OFFSET_FORMAT = {VERSION: "I", VERSION_64: "Q"}
META_U32, META_I32, META_F32, META_STR = 0, 1, 2, 3


class ModelFormatError(ProverError):
    """A malformed .ggml file: the message is `byte OFFSET: problem`."""

    def __init__(self, offset: int, problem: str, path: str | None = None) -> None:
        super().__init__(f"{path + ': ' if path else ''}byte {offset}: {problem}")
        self.offset = offset
        self.problem = problem


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _str(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">I", len(data)) + data


def _meta_entry(key: str, value: MetaValue) -> bytes:
    if isinstance(value, str):
        return _str(key) + struct.pack(">I", META_STR) + _str(value)
    if isinstance(value, float):
        return _str(key) + struct.pack(">If", META_F32, value)
    if isinstance(value, int) and 0 <= value < 1 << 32:
        return _str(key) + struct.pack(">II", META_U32, value)
    if isinstance(value, int) and -(1 << 31) <= value < 0:
        return _str(key) + struct.pack(">Ii", META_I32, value)
    raise GraphError(f"metadata {key!r}: {value!r} is not a u32, i32, f32 or str")


def _tables(graph: Graph, offsets: list[int], version: int) -> bytes:
    out = [_meta_entry(key, value) for key, value in graph.metadata.items()]
    width = OFFSET_FORMAT[version]
    for t, offset in zip(graph.tensors, offsets, strict=True):
        out.append(_str(t.name) + struct.pack(f">II{len(t.dims)}I", t.dtype, len(t.dims), *t.dims))
        out.append(struct.pack(f">{width}I{len(t.scales)}fi", offset, len(t.scales), *t.scales, t.zero_point))
    for node in graph.nodes:
        inputs = [NO_DATA if t is None else t for t in node.inputs]
        out.append(struct.pack(f">II{len(inputs)}III", node.op, len(inputs), *inputs, 1, node.output))
        attrs = sorted(node.attrs.items())
        out.append(struct.pack(">I", len(attrs)) + b"".join(struct.pack(">Ii", k, v) for k, v in attrs))
    return b"".join(out)


def _layout(graph: Graph, version: int) -> tuple[int, list[int], int]:
    """(data_start, each tensor's data offset or the no-data mark, the file's end) in `version`."""
    no_data = NO_DATA if version == VERSION else NO_DATA_64
    data_start = _align(HEADER_SIZE + len(_tables(graph, [0] * len(graph.tensors), version)))
    offsets, end = [], data_start
    for t in graph.tensors:
        if t.data is None:
            offsets.append(no_data)
            continue
        offsets.append(_align(end))
        end = offsets[-1] + t.nbytes
    return data_start, offsets, end


Fill = Callable[[int], np.ndarray | None]


def model_chunks(
    graph: Graph,
    *,
    check: bool = True,
    single_node: bool = False,
    version: int | None = None,
    fill: Fill | None = None,
) -> Iterator[bytes | np.ndarray]:
    """The canonical file of a valid graph, in pieces: the header and tables, then each stored
    tensor's padding and big-endian data (an array: int8 data is the tensor's own, not a copy;
    GraphError if the graph is not valid; `single_node`: a
    valid node file, see check_graph). Version 1 unless the file passes 4 GiB (then version 2), or
    `version`. `check=False` encodes the graph as it is, valid or not: how tests craft malformed
    files. `fill(index)`, called for each stored tensor in index order as it is written, gives
    the data written in place of the graph's (None: the graph's own), so that a model larger
    than memory is generated tensor by tensor, its graph holding placeholders
    (np.broadcast_to: no memory) of the right dtype and shape."""
    if check:
        check_graph(graph, single_node=single_node)
    data_start, offsets, end = _layout(graph, version or VERSION)
    if version is None and end > NO_DATA:
        version = VERSION_64
        data_start, offsets, end = _layout(graph, version)
    version = version or VERSION
    header = struct.pack(
        ">8I",
        MAGIC,
        version,
        len(graph.metadata),
        len(graph.tensors),
        len(graph.nodes),
        graph.input,
        graph.output,
        data_start,
    )
    body = header + _tables(graph, offsets, version)
    yield body + bytes(data_start - len(body))
    position = data_start
    for index, (t, offset) in enumerate(zip(graph.tensors, offsets, strict=True)):
        if t.data is None:
            continue
        data = t.data if fill is None else fill(index)
        if data is None:
            data = t.data
        elif data.dtype != t.data.dtype or data.shape != t.data.shape:
            raise GraphError(
                f"tensor {index}: filled with {data.dtype}{data.shape}, not {t.data.dtype}{t.data.shape}"
            )
        yield bytes(offset - position)
        yield np.ascontiguousarray(data.astype(data.dtype.newbyteorder(">"), copy=False))
        position = offset + t.nbytes


def write_model(graph: Graph, *, check: bool = True, single_node: bool = False) -> bytes:
    """The canonical file of a valid graph as one bytes object (model_chunks)."""
    return b"".join(model_chunks(graph, check=check, single_node=single_node))


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u32(self) -> int:
        if len(self.data) - self.pos < 4:
            raise ModelFormatError(self.pos, "truncated: the file ends inside a table")
        value = int.from_bytes(self.data[self.pos : self.pos + 4], "big")
        self.pos += 4
        return value

    def i32(self) -> int:
        value = self.u32()
        return value - (1 << 32) if value >= 1 << 31 else value

    def f32(self) -> float:
        return struct.unpack(">f", self.u32().to_bytes(4, "big"))[0]

    def f32s(self, count: int) -> tuple[float, ...]:
        """`count` f32 values at once (a per-channel scale table of thousands)."""
        if len(self.data) - self.pos < 4 * count:
            raise ModelFormatError(self.pos, "truncated: the file ends inside a table")
        values = struct.unpack_from(f">{count}f", self.data, self.pos)
        self.pos += 4 * count
        return values

    def str(self, what: str) -> str:
        start = self.pos
        n = self.u32()
        if n > MAX_STR:
            raise ModelFormatError(start, f"{what}: string of {n} bytes (at most {MAX_STR})")
        if len(self.data) - self.pos < n:
            raise ModelFormatError(start, f"{what}: truncated string")
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise ModelFormatError(start, f"{what}: not UTF-8") from None


def _read_metadata(c: _Cursor, n_meta: int) -> dict[str, MetaValue]:
    metadata: dict[str, MetaValue] = {}
    for _ in range(n_meta):
        start = c.pos
        key = c.str("metadata key")
        kind = c.u32()
        if kind == META_U32:
            value: MetaValue = c.u32()
        elif kind == META_I32:
            value = c.i32()
        elif kind == META_F32:
            value = c.f32()
        elif kind == META_STR:
            value = c.str(f"metadata {key!r}")
        else:
            raise ModelFormatError(c.pos - 4, f"metadata {key!r}: unknown value type {kind}")
        if key in metadata:
            raise ModelFormatError(start, f"metadata key {key!r} repeated")
        metadata[key] = value
    return metadata


def _read_tensor(c: _Cursor, index: int, version: int) -> tuple[Tensor, int]:
    start = c.pos
    name = c.str(f"tensor {index} name")
    dtype_code, n_dims = c.u32(), c.u32()
    if dtype_code not in DType._value2member_map_:
        raise ModelFormatError(c.pos - 8, f"tensor {index}: unknown dtype {dtype_code}")
    if not 1 <= n_dims <= 4:
        raise ModelFormatError(c.pos - 4, f"tensor {index}: n_dims {n_dims} (1..4 allowed)")
    dims = tuple(c.u32() for _ in range(n_dims))
    offset = c.u32()
    if version == VERSION_64:  # high word, then low word; all ones is the no-data mark
        high, low = offset, c.u32()
        offset = NO_DATA if (high, low) == (NO_DATA, NO_DATA) else (high << 32) | low
    n_scales = c.u32()
    if n_scales not in (0, 1, dims[-1]):
        raise ModelFormatError(c.pos - 4, f"tensor {index}: n_scales {n_scales} (0, 1 or {dims[-1]})")
    scales = c.f32s(n_scales)
    tensor = Tensor(name, DType(dtype_code), dims, None, scales, c.i32())
    try:
        check_tensor(tensor, f"tensor {index}")
    except GraphError as exc:
        raise ModelFormatError(start, str(exc)) from None
    return tensor, offset


def _read_node(c: _Cursor, index: int) -> Node:
    start = c.pos
    op, n_inputs = c.u32(), c.u32()
    if op not in Op._value2member_map_:
        raise ModelFormatError(start, f"node {index}: unknown op {op}")
    if n_inputs > MAX_INPUTS:
        raise ModelFormatError(start + 4, f"node {index}: {n_inputs} inputs (at most {MAX_INPUTS})")
    inputs: list[int | None] = [None if t == NO_DATA else t for t in (c.u32() for _ in range(n_inputs))]
    n_outputs = c.u32()
    if n_outputs != 1:
        raise ModelFormatError(c.pos - 4, f"node {index}: {n_outputs} outputs (version 1 has 1)")
    output = c.u32()
    n_attrs = c.u32()
    if n_attrs > len(Attr):
        raise ModelFormatError(c.pos - 4, f"node {index}: {n_attrs} attributes (a key repeats)")
    attrs: dict[Attr, int] = {}
    for _ in range(n_attrs):
        key, value = c.u32(), c.i32()
        if key not in Attr._value2member_map_ or Attr(key) in attrs:
            raise ModelFormatError(c.pos - 8, f"node {index}: unknown or repeated attribute key {key}")
        attrs[Attr(key)] = value
    return Node(Op(op), inputs, output, attrs)


def read_model(data: bytes | mmap.mmap) -> Graph:
    """Parse and validate a .ggml file; ModelFormatError on anything malformed. Stored int8 and u8
    tensors are views of `data` (of a memory-mapped file: its pages, never a copy); the others
    are converted to the host's byte order."""
    if not isinstance(data, bytes | mmap.mmap):
        data = bytes(data)
    c = _Cursor(data)
    magic = c.u32()
    if magic != MAGIC:
        raise ModelFormatError(0, f"bad magic 0x{magic:08x} (a .ggml file starts with 0x{MAGIC:08x})")
    version = c.u32()
    if version not in (VERSION, VERSION_64):
        raise ModelFormatError(4, f"unknown version {version} (OPML legacy file? prover convert --from opml)")
    n_meta, n_tensors, n_nodes, input_tensor, output_tensor, data_start = (c.u32() for _ in range(6))
    if n_meta > MAX_META or n_tensors > MAX_TENSORS or n_nodes > MAX_NODES:
        raise ModelFormatError(8, f"counts {n_meta}, {n_tensors}, {n_nodes} over the limits 1024, 4096, 4096")
    if data_start % ALIGN or data_start > len(data):
        raise ModelFormatError(28, f"data_start {data_start} misaligned or past the end of the file")
    if input_tensor >= n_tensors or output_tensor >= n_tensors:
        raise ModelFormatError(20, f"graph input {input_tensor} or output {output_tensor} >= n_tensors")

    metadata = _read_metadata(c, n_meta)
    tensor_starts, tensors, offsets = [], [], []
    for i in range(n_tensors):
        tensor_starts.append(c.pos)
        tensor, offset = _read_tensor(c, i, version)
        tensors.append(tensor)
        offsets.append(offset)
    node_starts, nodes = [], []
    for i in range(n_nodes):
        node_starts.append(c.pos)
        nodes.append(_read_node(c, i))
    if c.pos > data_start:
        raise ModelFormatError(28, f"data_start {data_start} lies inside the tables (they end at {c.pos})")
    if offsets[input_tensor] != NO_DATA:
        raise ModelFormatError(
            tensor_starts[input_tensor], f"the graph input tensor {input_tensor} has stored data"
        )

    _read_data(data, data_start, tensors, offsets, tensor_starts)
    graph = Graph(tensors, nodes, input_tensor, output_tensor, metadata)
    try:
        check_graph(graph)
    except GraphError as exc:
        offset = 24 if exc.node is None and exc.tensor is None else 0
        offset = node_starts[exc.node] if exc.node is not None else offset
        offset = tensor_starts[exc.tensor] if exc.tensor is not None else offset
        raise ModelFormatError(offset, str(exc)) from None
    return graph


def _read_data(
    data: bytes, data_start: int, tensors: list[Tensor], offsets: list[int], starts: list[int]
) -> None:
    stored = []
    for i, (tensor, offset) in enumerate(zip(tensors, offsets, strict=True)):
        if offset == NO_DATA:
            continue
        where = f"tensor {i} ({tensor.name!r})"
        if offset % ALIGN or offset < data_start:
            raise ModelFormatError(starts[i], f"{where}: data at {offset} misaligned or before data_start")
        if offset + tensor.nbytes > len(data):
            raise ModelFormatError(starts[i], f"{where}: data at {offset} runs past the end (truncated)")
        stored.append((offset, i))
    stored.sort()
    for (prev_offset, prev), (offset, i) in itertools.pairwise(stored):
        if prev_offset + tensors[prev].nbytes > offset:
            raise ModelFormatError(starts[i], f"tensor {i}: data at {offset} overlaps tensor {prev}'s data")
    for offset, i in stored:
        t = tensors[i]
        big_endian = t.dtype.numpy.newbyteorder(">")
        t.data = (
            np.frombuffer(data, big_endian, t.count, offset)
            .astype(t.dtype.numpy, copy=False)
            .reshape(t.shape)
        )


# The mappings of model files in use, by identity: a process that loads a model more than once (a
# decoder and a graph run of the same 7 B file) maps it once, so its pages are not counted in its
# RSS once per load. Entries live while a graph's tensors (views of the map) do.
_MAPPINGS: weakref.WeakValueDictionary[tuple[int, int, int, int], mmap.mmap] = weakref.WeakValueDictionary()


def _mapped(path: str | os.PathLike[str]) -> mmap.mmap | bytes:
    """The file at `path` memory-mapped read-only: the mapping already in use if the file is the
    same (device, inode, size, mtime), a new one otherwise."""
    with open(path, "rb") as file:
        stat = os.fstat(file.fileno())
        if not stat.st_size:
            return b""
        key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        data = _MAPPINGS.get(key)
        if data is None:
            data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
            _MAPPINGS[key] = data
        return data


def load_model(path: str | os.PathLike[str]) -> Graph:
    """Read a model file, memory-mapped (gigabyte models are never copied whole into memory, and
    mapped once per process); a ProverError naming the path if it cannot be read or is malformed."""
    try:
        data = _mapped(path)
    except OSError as exc:
        raise ProverError(f"{path}: cannot read the model: {exc.strerror}") from None
    try:
        return read_model(data)
    except ModelFormatError as exc:
        raise ModelFormatError(exc.offset, exc.problem, str(path)) from None


def save_model(graph: Graph, path: str | os.PathLike[str], fill: Fill | None = None) -> None:
    """Write the canonical file of `graph` atomically, tensor by tensor (`fill`: model_chunks)."""
    write_atomically(path, model_chunks(graph, fill=fill))
