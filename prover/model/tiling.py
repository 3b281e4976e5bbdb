"""Tiles: large int8 LINEAR and CONV2D nodes split by output channels, so that no node of a
multi-phase game is too large for the VM (docs/dispute-game.md, "Tiles").

A node of OUT output channels becomes tiles of R channels each: the rows of the weights (LINEAR's
`w[out][in]`, CONV2D's `w[cout][cin][kh][kw]`), of the bias and per-channel requantization
vectors and of a CONV2D's connectivity mask (`mask[cout][cin]`) are contiguous, so a tile's
weights are a view of the model's, never a copy. CONCAT nodes (at most 6 operands each, a tree for
more; AXIS 0) join the tiles' outputs back into the original output tensor: a LINEAR's channels are its
output's dims[0], which CONCAT joins directly; a CONV2D's are its output's dims[2] (x[n][c][h][w]),
so each tile's output (W, H, R[, N]) is first read as (W * H * R[, N]) by a RESHAPE (the same bytes)
and the joined (W * H * OUT[, N]) is read as the original (W, H, OUT[, N]) by a last RESHAPE. Every
output channel is computed exactly as before (per-channel integer arithmetic), so the tiled
graph's values equal the original's bit for bit. Tiles have a multiple of four channels (the
guest's dot4 computes four output channels per pass) when four fit in the bound, else as many as
fit, at least one: a node whose one channel is over the bound stays over it (splitting a channel
would need a partial-sum op). A grouped CONV2D (GROUPS > 1) is not tiled: its tiles would need a
slice of the input.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from prover.model.graph import MAX_INPUTS, Attr, DType, Graph, Node, Op, Tensor, dims4

DEFAULT_TILE_MACS = 1 << 18  # about 1e6 VM steps per tile (docs/guest.md: 3.6 steps per MAC)
ROW_MULTIPLE = 4  # the guest's dot4 computes four output channels per pass over the input


def _channels(graph: Graph, node: Node) -> int:
    """Output channels: W's last dim (LINEAR's OUT of (IN, OUT), CONV2D's COUT)."""
    return graph.tensors[node.inputs[1]].dims[-1]


def _macs_per_channel(graph: Graph, node: Node) -> int:
    w = graph.tensors[node.inputs[1]]
    if node.op == Op.LINEAR:
        return graph.tensors[node.inputs[0]].count
    kw, kh, cin, _ = dims4(w.dims)  # CONV2D: every output element sums cin x kh x kw products
    return graph.tensors[node.output].count // _channels(graph, node) * cin * kh * kw


def tile_rows(graph: Graph, node: Node, max_macs: int) -> int | None:
    """Channels per tile for a LINEAR or CONV2D node over `max_macs` multiply-accumulates, else None."""
    if node.op not in (Op.LINEAR, Op.CONV2D) or graph.tensors[node.inputs[0]].dtype != DType.I8:
        return None
    if node.op == Op.CONV2D and (node.attr(Attr.GROUPS) != 1 or len(graph.tensors[node.output].scales) > 1):
        return None  # a group's tile needs a slice of the input; per-channel output scales: not flat
    out, per_channel = _channels(graph, node), _macs_per_channel(graph, node)
    if out * per_channel <= max_macs or out <= ROW_MULTIPLE:
        return None
    fit = max_macs // per_channel  # channels within the bound: a multiple of four if that many fit
    return fit // ROW_MULTIPLE * ROW_MULTIPLE if fit >= ROW_MULTIPLE else max(1, fit)


def _part(tensor: Tensor, start: int, stop: int, name: str) -> Tensor:
    """Channels [start, stop) of an activation (dims[0] is the channel axis): its dims, and its
    scales sliced when they are per channel."""
    scales = tensor.scales
    if len(scales) > 1 and len(tensor.dims) == 1:
        scales = scales[start:stop]
    return Tensor(name, tensor.dtype, (stop - start, *tensor.dims[1:]), None, scales, tensor.zero_point)


def _sliced(graph: Graph, index: int | None, start: int, stop: int, channels: int) -> int | None:
    """A stored per-channel operand (W (IN, OUT), or a vector of OUT) as rows [start, stop): a new
    tensor viewing its data; a per-tensor (one element) or absent operand as it is. Built as a
    Tensor directly, not through Graph.add_tensor: its data is already a view of the right dtype
    and shape, and a tiled 7 B model has a hundred thousand of them."""
    if index is None or graph.tensors[index].dims[-1] != channels:
        return index
    tensor = graph.tensors[index]
    scales = tensor.scales[start:stop] if len(tensor.scales) == channels else tensor.scales
    graph.tensors.append(
        Tensor(
            f"{tensor.name}[{start}:{stop}]",
            tensor.dtype,
            (*tensor.dims[:-1], stop - start),
            tensor.data[start:stop],
            scales,
            tensor.zero_point,
        )
    )
    return len(graph.tensors) - 1


def _flat(tensor: Tensor, name: str) -> Tensor:
    """A CONV2D output (W, H, C[, N]) read as (W * H * C[, N]): the same bytes, rows of one image."""
    width, height, channels, batch = dims4(tensor.dims)
    return replace(tensor, name=name, dims=(width * height * channels,) + ((batch,) if batch > 1 else ()))


def _tiles(graph: Graph, node: Node, rows: int) -> list[Node]:
    """The tile nodes and the CONCAT tree (and for a CONV2D the RESHAPEs) replacing `node` (new
    tensors appended to `graph`)."""
    y = graph.tensors[node.output]
    out = _channels(graph, node)
    conv = node.op == Op.CONV2D
    joined_y = _flat(y, f"{y.name}[flat]") if conv else y  # what the CONCATs build
    per_row = joined_y.dims[0] // out  # CONCAT rows per channel: 1, or W * H for a CONV2D

    def part(start: int, stop: int) -> int:
        name = f"{joined_y.name}[{start}:{stop}]"
        graph.tensors.append(_part(joined_y, start * per_row, stop * per_row, name))
        return len(graph.tensors) - 1

    nodes, parts = [], []
    for start in range(0, out, rows):
        stop = min(start + rows, out)
        inputs = [node.inputs[0]] + [_sliced(graph, t, start, stop, out) for t in node.inputs[1:]]
        if conv:
            graph.tensors.append(
                replace(y, name=f"{y.name}[{start}:{stop}]", dims=_conv_part(y, stop - start))
            )
            nodes.append(Node(Op.CONV2D, inputs, len(graph.tensors) - 1, dict(node.attrs)))
            parts.append((start, stop, part(start, stop)))
            nodes.append(Node(Op.RESHAPE, [nodes[-1].output], parts[-1][2]))
        else:
            parts.append((start, stop, part(start, stop)))
            nodes.append(Node(Op.LINEAR, inputs, parts[-1][2], dict(node.attrs)))
    while len(parts) > MAX_INPUTS:
        joined = []
        for group in range(0, len(parts), MAX_INPUTS):
            chunk = parts[group : group + MAX_INPUTS]
            if len(chunk) == 1:  # CONCAT takes 2 to 6 operands: a lone tile goes up a level as it is
                joined.append(chunk[0])
                continue
            start, stop = chunk[0][0], chunk[-1][1]
            joined.append((start, stop, part(start, stop)))
            nodes.append(_concat([p for _, _, p in chunk], joined[-1][2]))
        parts = joined
    if not conv:
        nodes.append(_concat([p for _, _, p in parts], node.output))
        return nodes
    graph.tensors.append(joined_y)
    nodes.append(_concat([p for _, _, p in parts], len(graph.tensors) - 1))
    nodes.append(Node(Op.RESHAPE, [nodes[-1].output], node.output))
    return nodes


def _concat(parts: list[int], output: int) -> Node:
    """The CONCAT of tiles' outputs along dims[0] (AXIS 0): their output channels, or for a CONV2D
    their flattened outputs."""
    return Node(Op.CONCAT, parts, output, {Attr.AXIS: 0})


def _conv_part(y: Tensor, channels: int) -> tuple[int, ...]:
    """A CONV2D tile's output dims: the original's with `channels` output channels."""
    width, height, _, batch = dims4(y.dims)
    return (width, height, channels, batch)[: max(len(y.dims), 3)]


def tile_graph(graph: Graph, max_macs: int = DEFAULT_TILE_MACS) -> Graph:
    """`graph` with every int8 LINEAR or CONV2D (GROUPS 1) of more than `max_macs`
    multiply-accumulates tiled; the same tensors (the originals keep their indices), inputs and
    outputs."""
    tiled = Graph(list(graph.tensors), [], graph.input, graph.output, dict(graph.metadata))
    with _collector_paused():
        for node in graph.nodes:
            rows = tile_rows(graph, node, max_macs)
            tiled.nodes.extend([node] if rows is None else _tiles(tiled, node, rows))
    return tiled


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off: tiling a 7 B model makes a hundred thousand objects, none in a
    cycle, and the collector's passes over the growing heap took a third of its time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def tiled_values(tiled: Graph, values: list[np.ndarray | None]) -> list[np.ndarray | None]:
    """The tensor values, (1, count), of `tiled` (`tile_graph` of the graph whose values are
    `values`): the original tensors' as they are (they keep their indices), and every tile's the
    part of its node's output that the CONCATs (and a CONV2D's RESHAPEs) join, read backwards from
    the output: a tile computes exactly those channels, so this is its value bit for bit."""
    result = list(values) + [None] * (len(tiled.tensors) - len(values))
    for node in reversed(tiled.nodes):
        joined = result[node.output]
        if joined is None:
            continue
        if node.op == Op.RESHAPE:
            _fill(tiled, result, node.inputs[0], joined)
        elif node.op == Op.CONCAT:
            out = tiled.tensors[node.output]
            axis = node.attr(Attr.AXIS)
            sizes = [tiled.tensors[t].dims[axis] for t in node.inputs]
            pieces = np.split(
                joined.reshape(out.dims[::-1]), np.cumsum(sizes)[:-1], axis=len(out.dims) - 1 - axis
            )
            for t, piece in zip(node.inputs, pieces, strict=True):
                _fill(tiled, result, t, piece)
    return result


def _fill(graph: Graph, values: list[np.ndarray | None], tensor: int, value: np.ndarray) -> None:
    """An activation's value where it is not known yet (stored tensors have none)."""
    if values[tensor] is None and graph.tensors[tensor].data is None:
        values[tensor] = value.reshape(1, -1)
