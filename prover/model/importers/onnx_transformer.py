"""The pre-norm transformer block of prover.model.importers.torch_transformer in an ONNX graph, found
by following the data flow from the residual stream x (node names are never looked at):

    x -> LayerNormalization -> MatMul (+ Add bias)                     the fused q/k/v projection
      -> Reshape (batch, tokens, 3, heads, head_dim) -> Transpose (2, 0, 3, 1, 4)
      -> Split on axis 0 or three Slices (i, i + 1) of axis 0, each then a Squeeze of axis 0;
         or three Gathers on axis 0                                      q, k, v (batch, heads, tokens, hd)
    MatMul(q, Transpose(k, (0, 1, 3, 2))) -> Div by sqrt(hd) or Mul by 1/sqrt(hd)
      -> optional causal mask: Where(upper triangle, -inf, scores) (either polarity) or Add of a
         0 / -inf upper-triangular constant
      -> Softmax (last axis) -> MatMul(probs, v) -> Transpose (0, 2, 1, 3) -> Reshape (batch, tokens, dim)
      -> MatMul (+ Add bias) -> Add(x, .)                                the residual x2
    x2 -> LayerNormalization -> MatMul (+ Add) -> Gelu, or x * (Erf(x / sqrt 2) + 1) * 0.5
       -> MatMul (+ Add) -> Add(x2, .)                                  the block's output

Every tensor inside the block must be used only by the next node of this pattern: any other use
is a branch that is not a transformer block, and the error names the node that does not fit.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

import numpy as np

from prover.errors import ProverError
from prover.model.sequence_layers import LAYERNORM_EPS


def node_label(node: Any) -> str:
    return f"{node.op_type} node {node.name or node.output[0]!r}"


def attributes_of(node: Any) -> dict[str, Any]:
    import onnx

    return {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}


def layernorm_arrays(node: Any, constants: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """weight and bias of a LayerNormalization over the last axis with the graph's epsilon."""
    attributes = attributes_of(node)
    weight = constants.get(node.input[1])
    bias = constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if attributes.get("axis", -1) != -1 or weight is None or weight.ndim != 1:
        raise ProverError(f"{node_label(node)}: only a LayerNormalization of the last axis, constant scale")
    if np.float32(attributes.get("epsilon", 1e-5)) != np.float32(LAYERNORM_EPS):
        raise ProverError(f"{node_label(node)}: epsilon must be {LAYERNORM_EPS}")
    return {"weight": weight, "bias": np.zeros_like(weight) if bias is None else bias}


class DataFlow:
    """The activation nodes of a graph (those not folded to constants): who makes and who uses each
    tensor."""

    def __init__(self, nodes: list[Any], constants: dict[str, np.ndarray]) -> None:
        self.constants = constants
        self.producer = {name: node for node in nodes for name in node.output}
        self.users: dict[str, list[Any]] = {}
        for node in nodes:
            for name in dict.fromkeys(self.activations(node)):
                self.users.setdefault(name, []).append(node)

    def activations(self, node: Any) -> list[str]:
        return [name for name in node.input if name and name not in self.constants]

    def consumers(self, tensor: str) -> list[Any]:
        return self.users.get(tensor, [])

    def starts_block(self, tensor: str) -> bool:
        return sorted(node.op_type for node in self.consumers(tensor)) == ["Add", "LayerNormalization"]


class BlockWalk:
    """Matches one block from its input x; `claimed` lists the nodes it took."""

    def __init__(self, flow: DataFlow) -> None:
        self.flow = flow
        self.claimed: list[Any] = []

    def match(self, x: str) -> tuple[dict[str, np.ndarray], int, int, str]:
        """(arrays, heads, causal, output tensor) in the torch importer's transformer_block form."""
        arrays: dict[str, np.ndarray] = {}
        ln1, residual = self._fork(x)
        t = self._layernorm(ln1, "ln1", arrays)
        dim = arrays["ln1.weight"].size
        t = self._linear(t, "qkv", arrays)
        heads, (q, k, v) = self._split_heads(t, dim)
        scores = self._product(q, self._transpose(k, [0, 1, 3, 2]))
        scores, causal = self._mask(self._scale(scores, dim // heads))
        softmax = self._next(scores, "Softmax", "the Softmax of the attention scores")
        if attributes_of(softmax).get("axis", -1) not in (-1, 3):
            self._fail(softmax, "a Softmax over the last axis")
        mixed = self._product(softmax.output[0], v)
        merged = self._next(self._transpose(mixed, [0, 2, 1, 3]), "Reshape", "the Reshape merging the heads")
        shape = self._constant(merged.input[1])
        if shape is None or len(shape) != 3 or int(shape[2]) != dim:
            self._fail(merged, f"a Reshape to (batch, tokens, {dim})")
        x2 = self._residual(residual, x, self._linear(merged.output[0], "proj", arrays))
        ln2, residual = self._fork(x2)
        t = self._linear(self._layernorm(ln2, "ln2", arrays), "fc1", arrays)
        t = self._linear(self._gelu(t), "fc2", arrays)
        return arrays, heads, causal, self._residual(residual, x2, t)

    # The walk's steps.

    def _fail(self, node: Any, expected: str) -> NoReturn:
        raise ProverError(
            f"{node_label(node)}: a branch that does not fit a pre-norm transformer block (expected"
            f" {expected}); only chains of layers and these blocks are supported"
        )

    def _constant(self, name: str) -> np.ndarray | None:
        return self.flow.constants.get(name)

    def _operand(self, node: Any, tensor: str) -> np.ndarray | None:
        """The constant that a binary node combines with `tensor`."""
        return self._constant(node.input[1] if node.input[0] == tensor else node.input[0])

    def _take(self, node: Any) -> Any:
        self.claimed.append(node)
        return node

    def _only_user(self, tensor: str, expected: str) -> Any:
        users = self.flow.consumers(tensor)
        if len(users) != 1:
            self._fail(users[1] if users else self.flow.producer[tensor], expected)
        return users[0]

    def _next(self, tensor: str, op_type: str, expected: str) -> Any:
        """The single user of `tensor`, an `op_type` node taking `tensor` as its only activation."""
        node = self._only_user(tensor, expected)
        if node.op_type != op_type or self.flow.activations(node) != [tensor]:
            self._fail(node, expected)
        return self._take(node)

    def _fork(self, x: str) -> tuple[Any, Any]:
        """The LayerNormalization and the residual Add that use the stream x."""
        users = self.flow.consumers(x)
        norms = [node for node in users if node.op_type == "LayerNormalization"]
        adds = [node for node in users if node.op_type == "Add"]
        if len(users) != 2 or len(norms) != 1 or len(adds) != 1:
            odd = [node for node in users if node not in norms[:1] + adds[:1]]
            self._fail(odd[0] if odd else self.flow.producer[x], "a LayerNormalization and the residual Add")
        if self.flow.activations(norms[0]) != [x]:
            self._fail(norms[0], "the LayerNormalization of the residual stream")
        return self._take(norms[0]), adds[0]

    def _layernorm(self, node: Any, name: str, arrays: dict[str, np.ndarray]) -> str:
        for kind, value in layernorm_arrays(node, self.flow.constants).items():
            arrays[f"{name}.{kind}"] = value
        return node.output[0]

    def _linear(self, tensor: str, name: str, arrays: dict[str, np.ndarray]) -> str:
        node = self._next(tensor, "MatMul", f"the MatMul of {name}")
        weight = self._constant(node.input[1])
        if node.input[0] != tensor or weight is None or weight.ndim != 2:
            self._fail(node, f"the MatMul of {name} by a constant 2-D weight")
        out, bias = node.output[0], np.zeros(weight.shape[1], np.float32)
        users = self.flow.consumers(out)
        if len(users) == 1 and users[0].op_type == "Add" and self.flow.activations(users[0]) == [out]:
            value = self._operand(users[0], out)
            if value.size == weight.shape[1] and value.shape[-1] == weight.shape[1]:
                bias, out = value.reshape(-1), self._take(users[0]).output[0]
        arrays[f"{name}.weight"], arrays[f"{name}.bias"] = weight.T, bias
        return out

    def _transpose(self, tensor: str, perm: list[int]) -> str:
        node = self._next(tensor, "Transpose", f"a Transpose {tuple(perm)}")
        if list(attributes_of(node).get("perm", [])) != perm:
            self._fail(node, f"a Transpose {tuple(perm)}")
        return node.output[0]

    def _split_heads(self, tensor: str, dim: int) -> tuple[int, list[str]]:
        reshape = self._next(tensor, "Reshape", "the Reshape of q, k, v into heads")
        shape = self._constant(reshape.input[1])
        if (
            shape is None
            or len(shape) != 5
            or int(shape[2]) != 3
            or min(shape[3:]) < 1
            or shape[3] * shape[4] != dim
        ):
            self._fail(reshape, "a Reshape to (batch, tokens, 3, heads, head_dim)")
        stacked = self._transpose(reshape.output[0], [2, 0, 3, 1, 4])
        users = self.flow.consumers(stacked)
        if len(users) == 1 and users[0].op_type == "Split":
            return int(shape[3]), [self._squeezed(part) for part in self._split(self._take(users[0]))]
        picks = {self._pick(node): node for node in users}
        if len(users) != 3 or set(picks) != {0, 1, 2}:
            self._fail(users[0] if users else reshape, "Split, Slices or Gathers of q, k, v on axis 0")
        return int(shape[3]), [self._picked(self._take(picks[i])) for i in range(3)]

    def _split(self, split: Any) -> list[str]:
        attributes = attributes_of(split)
        sizes = self._constant(split.input[1]) if len(split.input) > 1 and split.input[1] else None
        sizes = attributes.get("split") if sizes is None else sizes
        in_three = len(split.output) == 3 and (sizes is None or list(sizes) == [1, 1, 1])
        if attributes.get("axis", 0) != 0 or not in_three:
            self._fail(split, "a Split of q, k, v into three on axis 0")
        return list(split.output)

    def _pick(self, node: Any) -> int | None:
        """Which of q, k, v (0, 1, 2) a Gather or a Slice on axis 0 takes, else None."""
        inputs = [self._constant(name) if name else None for name in node.input[1:]]
        if node.op_type == "Gather" and not attributes_of(node).get("axis", 0):
            index = inputs[0]
            return int(index) if index is not None and index.ndim == 0 else None
        if node.op_type == "Slice" and len(inputs) >= 2 and all(value is not None for value in inputs):
            defaults = [np.array([0]), np.array([1])]  # axes, steps
            starts, ends, axes, steps = (np.ravel(value) for value in [*inputs, *defaults[len(inputs) - 2 :]])
            one = {starts.size, ends.size, axes.size, steps.size} == {1}
            if one and int(axes[0]) == 0 and int(steps[0]) == 1 and ends[0] == starts[0] + 1:
                return int(starts[0])
        return None

    def _picked(self, node: Any) -> str:
        """q, k or v: a Gather's output, or a Slice's with its axis 0 squeezed."""
        return node.output[0] if node.op_type == "Gather" else self._squeezed(node.output[0])

    def _squeezed(self, part: str) -> str:
        squeeze = self._next(part, "Squeeze", "a Squeeze of axis 0")
        axes = self._constant(squeeze.input[1]) if len(squeeze.input) > 1 else None
        axes = attributes_of(squeeze).get("axes") if axes is None else axes
        if axes is None or [int(a) for a in np.ravel(axes)] != [0]:
            self._fail(squeeze, "a Squeeze of axis 0")
        return squeeze.output[0]

    def _product(self, left: str, right: str) -> str:
        """MatMul of two activations, `left` @ `right`, each used only there."""
        node = self._only_user(left, "the MatMul of two activations")
        if node.op_type != "MatMul" or list(node.input) != [left, right] or self.flow.users[right] != [node]:
            self._fail(node, "the MatMul of two activations (q @ k^T, probabilities @ v)")
        return self._take(node).output[0]

    def _scale(self, scores: str, head_dim: int) -> str:
        node = self._only_user(scores, "the scaling of the scores by 1/sqrt(head_dim)")
        if node.op_type not in ("Div", "Mul") or self.flow.activations(node) != [scores]:
            self._fail(node, "a Div or Mul scaling the scores")
        value = self._operand(node, scores)
        factor = None if value.size != 1 else float(value.reshape(()))
        if node.op_type == "Div" and (node.input[0] != scores or not factor):
            self._fail(node, "the scores divided by sqrt(head_dim)")
        factor = 1 / factor if node.op_type == "Div" else factor
        if factor is None or abs(factor * math.sqrt(head_dim) - 1) > 1e-6:
            self._fail(node, f"the scores scaled by 1/sqrt({head_dim})")
        return self._take(node).output[0]

    def _mask(self, scores: str) -> tuple[str, int]:
        """The masked scores and 1 if a causal mask follows, else (scores, 0)."""
        node = self._only_user(scores, "the Softmax or the causal mask")
        if node.op_type == "Where" and node.input[0] in self.flow.constants:
            condition, first, second = (self._constant(name) for name in node.input)
            if node.input[1] == scores and second is not None and _hidden_value(second):
                hidden = ~condition.astype(bool)
            elif node.input[2] == scores and first is not None and _hidden_value(first):
                hidden = condition.astype(bool)
            else:
                self._fail(node, "a Where between the scores and -inf")
        elif node.op_type == "Add" and self.flow.activations(node) == [scores]:
            mask = self._operand(node, scores)
            hidden = np.isneginf(mask) | (mask <= np.finfo(np.float32).min)
            if np.any(mask[~hidden] != 0):
                self._fail(node, "an Add of a 0 / -inf causal mask")
        else:
            return scores, 0
        if not _is_causal(hidden):
            self._fail(node, "a causal mask (the tokens after each one hidden)")
        return self._take(node).output[0], 1

    def _residual(self, add: Any, stream: str, branch: str) -> str:
        user = self._only_user(branch, "the residual Add")
        if user is not add or sorted(add.input) != sorted([stream, branch]):
            self._fail(add, "the residual Add of the stream and the block's branch")
        return self._take(add).output[0]

    def _gelu(self, tensor: str) -> str:
        users = self.flow.consumers(tensor)
        if len(users) == 1 and users[0].op_type == "Gelu":
            if attributes_of(users[0]).get("approximate", b"none") not in (b"none", "none"):
                self._fail(users[0], "the exact (erf) GELU")
            return self._next(tensor, "Gelu", "GELU").output[0]
        # x * (Erf(x / sqrt 2) + 1) * 0.5, as torch exports GELU before opset 20.
        scales = [
            node
            for node in users
            if node.op_type in ("Div", "Mul") and self.flow.activations(node) == [tensor]
        ]
        products = [node for node in users if node.op_type == "Mul" and node not in scales[:1]]
        if len(users) != 2 or not scales or not products:
            expected = "GELU (Gelu, or x * (Erf(x / sqrt 2) + 1) * 0.5)"
            self._fail(users[-1] if users else self.flow.producer[tensor], expected)
        scaled, product = scales[0], products[0]
        value = self._operand(scaled, tensor)
        factor = float(value.reshape(())) if value is not None and value.size == 1 else 0.0
        factor = 1 / factor if scaled.op_type == "Div" and factor else factor
        if abs(factor * math.sqrt(2) - 1) > 1e-6 or (scaled.op_type == "Div" and scaled.input[0] != tensor):
            self._fail(scaled, "x / sqrt(2) of the erf GELU")
        self._take(scaled)
        erf = self._next(scaled.output[0], "Erf", "the Erf of the GELU")
        one = self._next(erf.output[0], "Add", "Erf + 1 of the GELU")
        if not _constant_equals(self._operand(one, erf.output[0]), 1.0):
            self._fail(one, "Erf + 1 of the GELU")
        user = self._only_user(one.output[0], "x * (Erf + 1)")
        if user is not product or sorted(product.input) != sorted([tensor, one.output[0]]):
            self._fail(product, "x * (Erf + 1) of the GELU")
        half = self._next(self._take(product).output[0], "Mul", "the * 0.5 of the GELU")
        if not _constant_equals(self._operand(half, product.output[0]), 0.5):
            self._fail(half, "the * 0.5 of the GELU")
        return half.output[0]


def _hidden_value(value: np.ndarray) -> bool:
    return bool(np.all(np.isneginf(value) | (value <= np.finfo(np.float32).min)))


def _constant_equals(value: np.ndarray | None, expected: float) -> bool:
    return value is not None and value.size == 1 and float(value.reshape(())) == expected


def _is_causal(hidden: np.ndarray) -> bool:
    """`hidden` (…, tokens, tokens), broadcast over the leading axes, hides exactly the later tokens."""
    if hidden.ndim < 2 or hidden.shape[-1] != hidden.shape[-2] or hidden.size != hidden.shape[-1] ** 2:
        return False
    square = hidden.reshape(hidden.shape[-2:])
    return bool(np.array_equal(square, np.triu(np.ones_like(square, dtype=bool), 1)))
