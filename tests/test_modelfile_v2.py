"""The .ggml format's version 2 (64-bit data offsets, docs/model-format.md): written only for a
file over 4 GiB (a version 1 file stays byte for byte what it was), read by the Python reader
(memory-mapped, tensors as views of the map: a sparse 6 GiB file here) and by the guest (same
output as the version 1 file), and data beyond 4 GiB refused by the guest, which cannot hold it."""

import mmap
import struct
from pathlib import Path

import numpy as np
import pytest
from test_guest_models import int8_mlp, native_guest

from prover.model.graph import DType, Graph, GraphError, Op, Tensor
from prover.model.modelfile import (
    VERSION_64,
    ModelFormatError,
    load_model,
    model_chunks,
    read_model,
    save_model,
    write_model,
)
from prover.task.guest.native import NativeGuest

__all__ = ["native_guest"]  # the fixture, imported for this module

GIB = 1 << 30


def big_graph() -> Graph:
    """Four 1.5 GiB int8 tables (zeros, never allocated: broadcast views) and a GATHER of one."""
    g = Graph()
    g.input = g.add_tensor("ids", DType.I32, (2,))
    shape = (3 * GIB // 2 // 64, 64)
    for i in range(4):
        g.tensors.append(Tensor(f"table{i}", DType.I8, shape[::-1], np.broadcast_to(np.int8(i), shape)))
    g.output = g.add_node(Op.GATHER, [g.input, 4], "rows", DType.I8, (64, 2))
    return g


def test_a_file_over_4_gib_is_version_2_and_reads_memory_mapped(tmp_path: Path) -> None:
    graph = big_graph()
    head = next(model_chunks(graph))
    assert struct.unpack(">I", head[4:8])[0] == VERSION_64
    path = tmp_path / "big.ggml"
    with open(path, "wb") as file:  # a sparse file: the tables, then zeros up to the last tensor's end
        file.write(head)
        file.truncate(len(head) + 6 * GIB + 64)
    with open(path, "rb") as file:
        data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    read = read_model(data)
    last = read.tensors[4]
    assert last.data.shape == (3 * GIB // 2 // 64, 64) and not last.data.flags.owndata
    offset = last.data.ctypes.data - np.frombuffer(data, np.uint8).ctypes.data  # a view of the map
    assert offset == len(head) + 9 * GIB // 2 > 1 << 32


def test_version_2_of_a_small_model_runs_alike_in_the_guest(native_guest: NativeGuest) -> None:
    v1 = int8_mlp()
    graph = read_model(v1)
    v2 = b"".join(model_chunks(graph, version=VERSION_64))
    assert write_model(graph) == v1 and v2 != v1  # version 1 stays the canonical small file
    first = next(t for t in range(len(graph.tensors)) if graph.tensors[t].data is not None)
    assert read_model(v2).tensors[first].data.tobytes() == graph.tensors[first].data.tobytes()
    image = bytes(range(256)) * 3 + bytes(16)
    assert native_guest.run(v2, image).output == native_guest.run(v1, image).output
    # a high offset word: data past 4 GiB, which no file the guest holds reaches
    table = v2.index(graph.tensors[first].name.encode()) + len(graph.tensors[first].name)
    position = table + 8 + 4 * len(graph.tensors[first].dims)
    broken = v2[:position] + (1).to_bytes(4, "big") + v2[position + 4 :]
    assert native_guest.run(broken, image).exit_code != 0
    with pytest.raises(ModelFormatError, match="runs past the end"):
        read_model(broken)


def test_a_model_filled_tensor_by_tensor_is_the_same_file(tmp_path: Path) -> None:
    """save_model's `fill`: the graph holds zero-stride placeholders and each stored tensor's data
    comes when it is written (scripts/make_llama.py's 7 B model), giving the file the data would."""
    graph = read_model(int8_mlp())
    stored = [i for i, t in enumerate(graph.tensors) if t.data is not None]
    real = {i: graph.tensors[i].data for i in stored}
    for i in stored:
        graph.tensors[i].data = np.broadcast_to(graph.tensors[i].data.dtype.type(0), graph.tensors[i].shape)
    asked: list[int] = []

    def fill(index: int) -> np.ndarray | None:
        asked.append(index)
        return real[index] if index != stored[0] else None  # None: the placeholder itself

    save_model(graph, tmp_path / "filled.ggml", fill)
    assert asked == stored  # in index order, once each
    graph.tensors[stored[0]].data = np.zeros_like(real[stored[0]])
    for i in stored[1:]:
        graph.tensors[i].data = real[i]
    assert (tmp_path / "filled.ggml").read_bytes() == write_model(graph)
    with pytest.raises(GraphError, match="filled with"):
        save_model(graph, tmp_path / "bad.ggml", lambda index: np.zeros(3, np.int8))
    assert not (tmp_path / "bad.ggml").exists()  # nothing half-written


def test_a_model_loaded_twice_is_mapped_once(tmp_path: Path) -> None:
    """Two loads of the same file share one mapping (a 7 B model's pages counted once in the RSS
    of a process that decodes and runs the graph); a file replaced since is mapped anew."""
    path = tmp_path / "m.ggml"
    save_model(read_model(int8_mlp()), path)
    first, second = load_model(path), load_model(path)
    weights = next(i for i, t in enumerate(first.tensors) if t.data is not None and t.data.size > 100)
    assert first is not second and np.shares_memory(first.tensors[weights].data, second.tensors[weights].data)
    graph = read_model(int8_mlp())
    graph.tensors[weights].data = graph.tensors[weights].data ^ np.int8(1)
    save_model(graph, path)  # atomically: another inode
    third = load_model(path)
    assert not np.shares_memory(third.tensors[weights].data, first.tensors[weights].data)
    assert np.array_equal(third.tensors[weights].data, first.tensors[weights].data ^ np.int8(1))
