"""The real TFLite interpreter (LiteRT, the `ai-edge-litert` package) on MNIST images, to compare an
imported model's int8 logits with (scripts/check_tflite.py, tests). Not needed to convert or run.

    logits = interpreter_logits(Path("m.tflite"), graph, images)            # reference kernels
    logits = interpreter_logits(Path("m.tflite"), graph, images, reference=False)   # default kernels

The interpreter is given what a TFLite user gives it: each raw pixel normalized as
pixel * input_scale + input_offset (the graph's metadata), as float32 for a float input, else
quantized by the input tensor's scale and zero point (round half away from zero, as TFLite's own
QUANTIZE). The logits are the tensor the
imported graph outputs (the input of the final softmax), found by name, in the int8 domain (a uint8
tensor minus 128), as (images, classes) int64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prover.model.graph import Graph


def model_input(pixels: np.ndarray, graph: Graph, scale: float, zero_point: int, dtype: type) -> np.ndarray:
    """The interpreter's input for raw pixels: the normalized values as float32 for a float input,
    else quantized."""
    real = pixels.astype(np.float64) * graph.metadata["input_scale"] + graph.metadata["input_offset"]
    if np.dtype(dtype).kind == "f":
        return real.astype(dtype)
    scaled = real / scale
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    info = np.iinfo(dtype)
    return np.clip(rounded + zero_point, info.min, info.max).astype(dtype)


def interpreter_logits(path: Path, graph: Graph, images: np.ndarray, reference: bool = True) -> np.ndarray:
    """The interpreter's logits for each image (rows of raw pixels)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    interpreter = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=resolver,
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    given = interpreter.get_input_details()[0]
    scale, zero_point = given["quantization"]
    name = graph.tensors[graph.output].name
    logits = next(d for d in interpreter.get_tensor_details() if d["name"][:255] == name)
    offset = -128 if logits["dtype"] == np.uint8 else 0
    inputs = model_input(images, graph, scale, zero_point, given["dtype"])
    rows = []
    for x in inputs:
        interpreter.set_tensor(given["index"], x.reshape(given["shape"]))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(logits["index"]).reshape(-1).astype(np.int64) + offset)
    return np.array(rows)
