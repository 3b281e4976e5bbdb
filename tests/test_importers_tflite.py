"""The TFLite importer against the real interpreter: the committed fixtures (models/tflite, made by
scripts/make_tflite_fixtures.py with TensorFlow, which the tests do not need) imported and run by the
numpy engine and by the guest in the VM give the int8 logits of LiteRT's reference kernels byte for
byte; files we cannot import are refused with one line naming the operator and the tensor."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from prover.cli.main import cli
from prover.errors import ProverError
from prover.model import engine
from prover.model.convert import convert_model
from prover.model.data import load_mnist, mnist_dir
from prover.model.graph import Attr, Op
from prover.model.importers.tflite_import import import_tflite, tflite_multiplier
from prover.model.litert import interpreter_logits
from prover.model.modelfile import load_model, write_model
from prover.task.golden import GoldenTemplate
from prover.task.run import output_payload

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "models" / "tflite"
NAMES = ["mlp_int8", "mlp_int8_u8io", "mlp_uint8", "cnn_int8", "act_int8_f32io"]
IMAGES = 500  # per fixture, in the numpy engine and (slow tests) in the VM: issue 14's CI figure
# A VM run costs 0.25 M (act), 1.7 M (the MLPs) or 2.8 M (the CNN) steps per image.


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    return load_mnist(mnist_dir(None), "t10k")


@pytest.mark.parametrize("name", NAMES)
def test_numpy_engine_equals_the_reference_kernels(name: str, mnist: tuple[np.ndarray, np.ndarray]) -> None:
    path = FIXTURES / f"{name}.tflite"
    graph = import_tflite(path)
    images, labels = mnist[0][:IMAGES], mnist[1][:IMAGES]
    reference = interpreter_logits(path, graph, images)
    ours = engine.run(graph, images).astype(np.int64)
    assert np.array_equal(ours, reference)
    assert np.mean(ours.argmax(axis=1) == labels) > 0.9  # a working model, not constant logits


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_vm_equals_the_reference_kernels(name: str, mnist: tuple[np.ndarray, np.ndarray]) -> None:
    """The guest in the VM, each image a fresh machine from its own S0 to its exit."""
    path = FIXTURES / f"{name}.tflite"
    graph = import_tflite(path)
    images = mnist[0][:IMAGES]
    reference = interpreter_logits(path, graph, images)
    template = GoldenTemplate(write_model(graph))
    mismatches = []
    for index, image in enumerate(images):
        golden = template.image(image.tobytes())
        golden.machine.run()
        payload = output_payload(golden.machine)
        logits = np.frombuffer(payload[4:], np.int8).astype(np.int64)
        if golden.machine.state.exit_code != 0 or not np.array_equal(logits, reference[index]):
            mismatches.append(index)
    assert mismatches == []


def test_default_kernels_differ_from_the_reference_kernels_on_the_cnn(
    mnist: tuple[np.ndarray, np.ndarray],
) -> None:
    """Why the reference kernels are the definition: LiteRT's two kernel sets disagree by 1 LSB on
    some images of the CNN (its reference convolutions round twice, the default ones once)."""
    path = FIXTURES / "cnn_int8.tflite"
    graph = import_tflite(path)
    images = mnist[0][:100]
    reference = interpreter_logits(path, graph, images)
    default = interpreter_logits(path, graph, images, reference=False)
    assert not np.array_equal(reference, default)
    assert np.abs(reference - default).max() == 1


def test_the_imported_graphs_use_the_documented_variants() -> None:
    """Single rounding in FULLY_CONNECTED, double in the convolutions, W_ZP only for uint8 weights,
    the softmax dropped and the raw pixels requantized in."""
    cnn = import_tflite(FIXTURES / "cnn_int8.tflite")
    ops = [node.op for node in cnn.nodes]
    assert ops[0] == Op.REQUANTIZE and Op.SOFTMAX not in ops
    assert {node.attr(Attr.ROUNDING) for node in cnn.nodes if node.op == Op.CONV2D} == {0}
    assert {node.attr(Attr.ROUNDING) for node in cnn.nodes if node.op == Op.LINEAR} == {1}
    uint8 = import_tflite(FIXTURES / "mlp_uint8.tflite")
    assert all(node.attr(Attr.W_ZP) != 0 for node in uint8.nodes if node.op == Op.LINEAR)
    int8 = import_tflite(FIXTURES / "mlp_int8.tflite")
    assert all(node.attr(Attr.W_ZP) == 0 for node in int8.nodes)
    assert cnn.tensors[cnn.input].dims == (28, 28, 1) and cnn.metadata["source"] == "tflite"
    output = int8.tensors[int8.output]
    assert output.dims == (10,) and len(output.scales) == 1


def test_tflite_multiplier_follows_quantize_multiplier() -> None:
    assert tflite_multiplier(0.0) == (0, 0)
    assert tflite_multiplier(0.5) == (1 << 30, 0)
    assert tflite_multiplier(1.0) == (1 << 30, 1)
    assert tflite_multiplier(2.0**-40) == (0, 0)  # shift below -31
    assert tflite_multiplier(2.0**35) == ((1 << 31) - 1, 30)  # saturated
    # a fraction exactly half-way between two M0 rounds away from zero (TfLiteRound), not to even
    assert tflite_multiplier((2 * 1234567890 + 1) / 2**33) == (1234567891, -1)
    assert tflite_multiplier(1 - 2.0**-33) == (1 << 30, 1)  # rounds up to 2^31: renormalized


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("float", "operator 0 FULLY_CONNECTED (output tensor 'StatefulPartitionedCall_1:0'): tensor "
                  "'serving_default_keras_tensor_17:0' is float32: float models are not supported"),
        ("hybrid", "operator 0 FULLY_CONNECTED (output tensor 'StatefulPartitionedCall_1:0'): tensor "
                   "'serving_default_keras_tensor_19:0' is float32 with int8 weights: hybrid-quantized"),
        ("float16", "operator 0 DEQUANTIZE (output tensor 'sequential_5_1/dense_9_1/MatMul2'): tensor "
                    "'sequential_5_1/dense_9_1/MatMul1' is float16: float16-quantized files"),
        ("unsupported_op", "operator 1 LEAKY_RELU (output tensor 'StatefulPartitionedCall_1:0'): "
                           "operator not supported"),
    ],
)  # fmt: skip
def test_files_we_cannot_import_are_one_error_line(name: str, message: str, tmp_path: Path) -> None:
    path = FIXTURES / "errors" / f"{name}.tflite"
    out = tmp_path / "out.ggml"
    command = [sys.executable, "-m", "prover.cli", "convert", "--from", "tflite", str(path), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: {message}"), done.stderr
    assert not out.exists()


def test_not_a_tflite_file(tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ProverError, match="not a TFLite flatbuffer"):
        import_tflite(path)


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9])
def test_a_truncated_file_is_one_error(keep: float, tmp_path: Path) -> None:
    data = (FIXTURES / "cnn_int8.tflite").read_bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ProverError, match=r"damaged TFLite flatbuffer|stored values for shape"):
        import_tflite(path)


def test_convert_command_writes_an_int8_model(tmp_path: Path, mnist: tuple[np.ndarray, np.ndarray]) -> None:
    out = tmp_path / "cnn.ggml"
    result = CliRunner().invoke(
        cli, ["convert", "--from", "tflite", str(FIXTURES / "cnn_int8.tflite"), str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert '"mode": "int8"' in result.output
    graph = load_model(out)
    assert graph.metadata["input_offset"] == -1.0
    images = mnist[0][:20]
    assert np.array_equal(
        engine.run(graph, images), engine.run(import_tflite(FIXTURES / "cnn_int8.tflite"), images)
    )
    with pytest.raises(ProverError, match="--pixel-offset 'x': expected a number"):
        convert_model("tflite", FIXTURES / "cnn_int8.tflite", pixel=(None, "x"))
    with pytest.raises(ProverError, match=r"pixel offset 0\.5 is not a whole number of pixel steps"):
        convert_model("tflite", FIXTURES / "cnn_int8.tflite", pixel=("1/255", "0.5"))


def test_damaged_files_are_refused_or_imported(tmp_path: Path) -> None:
    """Random byte changes in the flatbuffer's tables: the importer either builds a valid graph or
    raises one ProverError, never another exception."""
    data = (FIXTURES / "cnn_int8.tflite").read_bytes()
    rng = np.random.default_rng(2)
    path = tmp_path / "damaged.tflite"
    refused = 0
    for _ in range(200):
        damaged = bytearray(data)
        for position in rng.integers(0, 4000, 3):
            damaged[int(position)] = int(rng.integers(0, 256))
        path.write_bytes(bytes(damaged))
        try:
            import_tflite(path)
        except ProverError:
            refused += 1
    assert 0 < refused < 200
