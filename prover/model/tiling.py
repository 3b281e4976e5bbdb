"""Tiles: large int8 LINEAR nodes split by output channels, so that no node of a multi-phase
game is too large for the VM (docs/dispute-game.md, "Tiles").

A LINEAR of OUT channels becomes tiles of R channels each (the rows of `w[out][in]`, and of the
bias and per-channel requantization vectors, are contiguous, so a tile's weights are a view of the
model's, never a copy), and CONCAT nodes (AXIS 0, 2 to 6 operands each, a tree for more) join the tiles'
outputs back into the original output tensor. Every output channel is computed exactly as before
(per-channel integer arithmetic), so the tiled graph's values equal the original's bit for bit.
"""

from dataclasses import replace

from prover.model.graph import MAX_INPUTS, Attr, DType, Graph, Node, Op, Tensor

DEFAULT_TILE_MACS = 1 << 18  # about 1e6 VM steps per tile (docs/guest.md: 3.6 steps per MAC)
ROW_MULTIPLE = 4  # the guest's dot4 computes four output channels per pass over the input


def _macs(graph: Graph, node: Node) -> int:
    w = graph.tensors[node.inputs[1]]
    return graph.tensors[node.inputs[0]].count * w.dims[1]


def tile_rows(graph: Graph, node: Node, max_macs: int) -> int | None:
    """Channels per tile for a LINEAR node over `max_macs` multiply-accumulates, else None."""
    if node.op != Op.LINEAR or graph.tensors[node.inputs[0]].dtype != DType.I8:
        return None
    x_count, out = graph.tensors[node.inputs[0]].count, graph.tensors[node.inputs[1]].dims[1]
    if _macs(graph, node) <= max_macs or out <= ROW_MULTIPLE:
        return None
    return max(ROW_MULTIPLE, max_macs // x_count // ROW_MULTIPLE * ROW_MULTIPLE)


def _part(tensor: Tensor, start: int, stop: int, name: str) -> Tensor:
    """Channels [start, stop) of an activation (dims[0] is the channel axis): its dims, and its
    scales sliced when they are per channel."""
    scales = tensor.scales
    if len(scales) > 1 and len(tensor.dims) == 1:
        scales = scales[start:stop]
    return replace(tensor, name=name, dims=(stop - start, *tensor.dims[1:]), scales=scales)


def _sliced(graph: Graph, index: int | None, start: int, stop: int, channels: int, name: str) -> int | None:
    """A stored per-channel operand (W (IN, OUT), or a vector of OUT) as rows [start, stop): a new
    tensor viewing its data; a per-tensor (one element) or absent operand as it is."""
    if index is None or graph.tensors[index].dims[-1] != channels:
        return index
    tensor = graph.tensors[index]
    dims = (*tensor.dims[:-1], stop - start)
    scales = tensor.scales[start:stop] if len(tensor.scales) == channels else tensor.scales
    return graph.add_tensor(name, tensor.dtype, dims, tensor.data[start:stop], scales, tensor.zero_point)


def _tiles(graph: Graph, node: Node, rows: int) -> list[Node]:
    """The tile nodes and the CONCAT tree replacing `node` (new tensors appended to `graph`)."""
    y = graph.tensors[node.output]
    out = graph.tensors[node.inputs[1]].dims[1]
    nodes, parts = [], []
    for start in range(0, out, rows):
        stop = min(start + rows, out)
        inputs = [node.inputs[0]] + [
            _sliced(
                graph,
                t,
                start,
                stop,
                out,
                f"{graph.tensors[t].name}[{start}:{stop}]" if t is not None else "",
            )
            for t in node.inputs[1:]
        ]
        graph.tensors.append(_part(y, start, stop, f"{y.name}[{start}:{stop}]"))
        parts.append((start, stop, len(graph.tensors) - 1))
        nodes.append(Node(Op.LINEAR, inputs, parts[-1][2], dict(node.attrs)))
    while len(parts) > MAX_INPUTS:
        joined = []
        for group in range(0, len(parts), MAX_INPUTS):
            chunk = parts[group : group + MAX_INPUTS]
            if len(chunk) == 1:  # CONCAT takes 2 to 6 operands: a lone tile goes up a level as it is
                joined.append(chunk[0])
                continue
            start, stop = chunk[0][0], chunk[-1][1]
            graph.tensors.append(_part(y, start, stop, f"{y.name}[{start}:{stop}]"))
            joined.append((start, stop, len(graph.tensors) - 1))
            nodes.append(_concat([part for _, _, part in chunk], joined[-1][2]))
        parts = joined
    nodes.append(_concat([part for _, _, part in parts], node.output))
    return nodes


def _concat(parts: list[int], output: int) -> Node:
    """The CONCAT of tiles' outputs along dims[0], their output channels (AXIS 0)."""
    return Node(Op.CONCAT, parts, output, {Attr.AXIS: 0})


def tile_graph(graph: Graph, max_macs: int = DEFAULT_TILE_MACS) -> Graph:
    """`graph` with every int8 LINEAR of more than `max_macs` multiply-accumulates tiled; the same
    tensors (the originals keep their indices), inputs and outputs."""
    tiled = Graph(list(graph.tensors), [], graph.input, graph.output, dict(graph.metadata))
    for node in graph.nodes:
        rows = tile_rows(graph, node, max_macs)
        tiled.nodes.extend([node] if rows is None else _tiles(tiled, node, rows))
    return tiled
