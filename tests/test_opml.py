"""OPML's legacy MNIST files: a file written here from the format's description converts, and the
converted model predicts like a direct float implementation."""

import struct

import numpy as np
import pytest
from click.testing import CliRunner

from prover.cli.main import cli
from prover.model.engine import run
from prover.model.graph import Op
from prover.model.modelfile import ModelFormatError, load_model
from prover.model.opml import read_opml

HIDDEN = 48


def opml_tensor(array: np.ndarray, dims: list[int]) -> bytes:
    """n_dims, dims innermost first, then the float32 data, all big-endian."""
    return struct.pack(f">i{len(dims)}i", len(dims), *dims) + np.asarray(array, ">f4").tobytes()


def opml_file(seed: int = 0, hidden: int = HIDDEN) -> tuple[bytes, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.01, (hidden, 784)).astype(np.float32)  # w1[out][in]: dims (784, hidden)
    b1 = rng.normal(0, 0.1, hidden).astype(np.float32)
    w2 = rng.normal(0, 0.1, (10, hidden)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 10).astype(np.float32)
    data = struct.pack(">i", 0x67676D6C)
    data += opml_tensor(w1, [784, hidden]) + opml_tensor(b1, [hidden, 1])
    data += opml_tensor(w2, [hidden, 10]) + opml_tensor(b2, [10, 1])
    return data, [w1, b1, w2, b2]


def direct_mlp(pixels: np.ndarray, w1, b1, w2, b2) -> np.ndarray:
    hidden = np.maximum(pixels.astype(np.float32) @ w1.T + b1, 0)
    return hidden @ w2.T + b2


def test_converted_model_predicts_like_a_direct_implementation():
    data, weights = opml_file()
    graph = read_opml(data)
    assert [node.op for node in graph.nodes] == [Op.DEQUANTIZE, Op.LINEAR, Op.RELU, Op.LINEAR]
    pixels = np.random.default_rng(1).integers(0, 256, (200, 784), dtype=np.uint8)
    ours, expected = run(graph, pixels), direct_mlp(pixels, *weights)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-3)
    assert np.array_equal(ours.argmax(1), expected.argmax(1))


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda d: b"lmgg" + d[4:], "byte 0: not an OPML model file"),
        (lambda d: d[:-3], "b2: truncated data"),
        (lambda d: d + b"\0", "1 bytes after the last tensor"),
        (lambda d: d[:4] + struct.pack(">i", 9) + d[8:], "W1: n_dims 9"),
        (lambda d: d[:4], "W1: truncated before its n_dims"),
    ],
)
def test_malformed_files(corrupt, message):
    data, _ = opml_file()
    with pytest.raises(ModelFormatError, match=message):
        read_opml(corrupt(data))


def four_tensors(*shapes: tuple[int, ...]) -> bytes:
    """A file of zero tensors with these dims (innermost first)."""
    return struct.pack(">i", 0x67676D6C) + b"".join(
        opml_tensor(np.zeros(shape[::-1]), list(shape)) for shape in shapes
    )


def test_tensors_that_do_not_chain():
    with pytest.raises(ModelFormatError, match="W1 dims \\(783, 8\\) should be \\(784, H\\)"):
        read_opml(four_tensors((783, 8), (8, 1), (8, 10), (10, 1)))
    with pytest.raises(ModelFormatError, match="do not chain"):
        read_opml(four_tensors((784, 8), (8, 1), (9, 10), (10, 1)))
    with pytest.raises(ModelFormatError, match="do not chain"):
        read_opml(four_tensors((784, 8), (8, 1), (8, 10), (9, 1)))
    read_opml(four_tensors((784, 8), (8, 1), (8, 10), (10, 1)))


def test_convert_command(tmp_path):
    data, weights = opml_file(seed=2)
    (tmp_path / "mnist.opml").write_bytes(data)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["convert", "--from", "opml", str(tmp_path / "mnist.opml"), str(tmp_path / "m.ggml")]
    )
    assert result.exit_code == 0, result.output
    graph = load_model(tmp_path / "m.ggml")
    assert graph.metadata["source"] == "opml"
    pixels = np.random.default_rng(3).integers(0, 256, (20, 784), dtype=np.uint8)
    assert np.array_equal(run(graph, pixels).argmax(1), direct_mlp(pixels, *weights).argmax(1))


def test_convert_refuses_bad_input_and_writes_nothing(tmp_path):
    (tmp_path / "bad.opml").write_bytes(b"ggml")
    result = CliRunner().invoke(
        cli, ["convert", "--from", "opml", str(tmp_path / "bad.opml"), str(tmp_path / "out.ggml")]
    )
    assert result.exit_code == 1
    assert "truncated" in str(result.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.opml"]
