"""PyTorch to the importers' layer chain: an nn.Module (a Sequential, nested Sequentials allowed)
of the layers below, or a state_dict together with the module it belongs to.

    PixelNormalize            the input normalization
    nn.Linear                 linear
    nn.Conv2d, MaskedConv2d   conv2d (the mask's unconnected weights are zeroed)
    Subsample                 subsample (LeNet's trainable subsampling)
    nn.MaxPool2d, nn.AvgPool2d
    nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Softmax (last dim), nn.Flatten
    nn.Dropout, nn.Identity   skipped (identities at inference)

torch is imported here, lazily: the rest of prover never needs it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from prover.errors import ProverError
from prover.model.importers.imported import ImportedModel, LayerChain


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _leaves(module: Any) -> Iterator[tuple[str, Any]]:
    from torch import nn

    for name, child in module.named_children():
        if isinstance(child, nn.Sequential):
            for child_name, leaf in _leaves(child):
                yield f"{name}.{child_name}", leaf
        else:
            yield name, child


def import_torch(
    module: Any, input_shape: tuple[int, ...], state_dict: Mapping[str, Any] | None = None
) -> ImportedModel:
    """`module`'s layers (with `state_dict`'s weights if given) as a chain; `input_shape` is one
    input without the batch dimension: (features,) or (channels, height, width)."""
    if state_dict is not None:
        try:
            module.load_state_dict(state_dict)
        except (RuntimeError, KeyError) as exc:
            raise ProverError(f"the state_dict does not fit the module: {exc}".splitlines()[0]) from None
    chain = LayerChain()
    from prover.model.importers.torch_transformer import CausalLM, VisionTransformer

    if isinstance(module, VisionTransformer | CausalLM):
        _add_transformer(chain, module)
        return chain.finish(input_shape)
    for name, layer in _leaves(module):
        _add_leaf(chain, name, layer)
    return chain.finish(input_shape)


def _array(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _add_transformer(chain: LayerChain, model: Any) -> None:
    """A VisionTransformer or CausalLM (prover.model.importers.torch_transformer) as the chain of
    sequence layers of prover.model.sequence_layers."""
    from prover.model.importers.torch_transformer import VisionTransformer

    if isinstance(model, VisionTransformer):
        _add_leaf(chain, "normalize", model.normalize)
        for name, layer in _leaves(model.stem):
            _add_leaf(chain, f"stem.{name}", layer)
        _add_leaf(chain, "patch", model.patch)
        chain.add("tokens")
        chain.add("class_token", {"token": _array(model.cls).reshape(-1)})
    else:
        chain.add("embedding", {"weight": _array(model.embed.weight)})
    chain.add("positions", {"weight": _array(model.pos)[0]})
    for block in model.blocks:
        arrays = {
            f"{part}.{kind}": _array(getattr(getattr(block, part), kind))
            for part in ("ln1", "ln2", "fc1", "fc2")
            for kind in ("weight", "bias")
        }
        for part in ("qkv", "proj"):
            for kind in ("weight", "bias"):
                arrays[f"{part}.{kind}"] = _array(getattr(getattr(block.attn, part), kind))
        chain.add("transformer_block", arrays, heads=block.attn.heads, causal=int(block.attn.causal))
    chain.add("layernorm", {"weight": _array(model.norm.weight), "bias": _array(model.norm.bias)})
    if isinstance(model, VisionTransformer):
        chain.add("take_token", index=0)
    head = model.head
    bias = _array(head.bias) if head.bias is not None else np.zeros(head.out_features)
    chain.add("linear", {"weight": _array(head.weight), "bias": bias})


def _add_leaf(chain: LayerChain, name: str, layer: Any) -> None:
    from torch import nn

    from prover.model.importers.torch_layers import MaskedConv2d, PixelNormalize, Subsample

    if isinstance(layer, PixelNormalize):
        chain.normalize(layer.scale, layer.offset, where=name)
    elif isinstance(layer, nn.Linear):
        bias = _array(layer.bias) if layer.bias is not None else np.zeros(layer.out_features)
        chain.add("linear", {"weight": _array(layer.weight), "bias": bias})
    elif isinstance(layer, nn.Conv2d):
        if layer.padding_mode != "zeros" or _pair(layer.dilation) != (1, 1) or isinstance(layer.padding, str):
            raise ProverError(
                f"layer {name}: only zero-padded, undilated, explicit-padding convs are supported"
            )
        weight = _array(layer.masked_weight() if isinstance(layer, MaskedConv2d) else layer.weight)
        bias = _array(layer.bias) if layer.bias is not None else np.zeros(layer.out_channels)
        arrays = {"weight": weight, "bias": bias}
        if isinstance(layer, MaskedConv2d):
            arrays["mask"] = _array(layer.mask)
        pad_h, pad_w = _pair(layer.padding)
        chain.add(
            "conv2d",
            arrays,
            stride=_pair(layer.stride),
            padding=(pad_h, pad_w, pad_h, pad_w),
            groups=layer.groups,
        )
    elif isinstance(layer, Subsample):
        chain.add(
            "subsample",
            {"coef": _array(layer.coef), "bias": _array(layer.bias)},
            kernel=_pair(layer.kernel_size),
            stride=_pair(layer.stride),
        )
    elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "maxpool2d" if isinstance(layer, nn.MaxPool2d) else "avgpool2d"
        pad_h, pad_w = _pair(layer.padding)
        if layer.ceil_mode or (kind == "avgpool2d" and layer.count_include_pad and (pad_h or pad_w)):
            raise ProverError(f"layer {name}: ceil_mode and count_include_pad with padding are not supported")
        if kind == "maxpool2d" and _pair(layer.dilation) != (1, 1):
            raise ProverError(f"layer {name}: dilated pooling is not supported")
        chain.add(
            kind,
            kernel=_pair(layer.kernel_size),
            stride=_pair(layer.stride or layer.kernel_size),
            padding=(pad_h, pad_w, pad_h, pad_w),
        )
    elif isinstance(layer, (nn.ReLU, nn.Tanh, nn.Sigmoid)):
        chain.add(type(layer).__name__.lower())
    elif isinstance(layer, nn.Softmax):
        if layer.dim not in (-1, 1):
            raise ProverError(f"layer {name}: Softmax must be over the last dimension")
        chain.add("softmax")
    elif isinstance(layer, nn.Flatten):
        chain.add("flatten")
    elif not isinstance(layer, (nn.Dropout, nn.Identity)):
        raise ProverError(f"layer {name}: {type(layer).__name__} is not supported")


def _factory(spec: str) -> Any:
    """`package.module:function` or `path/to/file.py:function`: the callable that builds the module."""
    import importlib
    import importlib.util
    import sys

    where, _, attribute = spec.rpartition(":")
    if not where or not attribute:
        raise ProverError(f"--module {spec!r}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    if where.endswith(".py"):
        path = Path(where).resolve()
        if not path.is_file():
            raise ProverError(f"--module {spec!r}: {where} is not a file")
        # The script may import its neighbours (the training scripts share training_common).
        sys.path.insert(0, str(path.parent))
        try:
            spec_of_file = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec_of_file)
            spec_of_file.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.parent))
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ProverError(f"--module {spec!r}: {exc}") from None
    if not callable(factory := getattr(module, attribute, None)):
        raise ProverError(f"--module {spec!r}: {where} has no function {attribute}")
    return factory


def load_torch(path: str | Path, input_shape: tuple[int, ...], module_spec: str | None) -> ImportedModel:
    """A saved PyTorch model: with `module_spec` (MODULE:FUNCTION building the nn.Module), `path`
    holds its state_dict (or a checkpoint dict with a "state_dict" entry), loaded without
    unpickling code; without it, `path` holds a whole pickled nn.Module (trusted files only)."""
    import pickle

    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=module_spec is not None)
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError) as exc:
        raise ProverError(f"{path}: not a readable torch file: {str(exc).splitlines()[0]}") from None
    if module_spec is None:
        if not isinstance(saved, torch.nn.Module):
            kind = type(saved).__name__
            raise ProverError(f"{path}: holds a {kind}, not a module: name its builder with --module")
        return import_torch(saved.eval(), input_shape)
    if isinstance(saved, dict) and isinstance(saved.get("state_dict"), dict):
        saved = saved["state_dict"]
    if not isinstance(saved, dict):
        raise ProverError(f"{path}: holds a {type(saved).__name__}, not a state_dict")
    return import_torch(_factory(module_spec)().eval(), input_shape, saved)
