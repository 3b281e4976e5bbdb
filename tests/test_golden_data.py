"""`prover golden --data` / `prover run --data` take what `prover predict --data` takes: a PNG or
JPEG (grayscale, resized to the model's input), a .npy array, or raw bytes of the input's size."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mnist_data import sample_images
from PIL import Image

from prover.cli.main import cli
from prover.task.golden import region_root

REPO = Path(__file__).resolve().parent.parent
MLP = REPO / "models" / "mlp_int8.ggml"
LENET = REPO / "models" / "lenet5_int8.ggml"


def invoke(*args: object) -> str:
    result = CliRunner().invoke(cli, [str(arg) for arg in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def golden_json(model: Path, data: Path, basedir: Path) -> dict:
    invoke("golden", "--model", model, "--data", data, "--basedir", basedir, "--phases", "single")
    return json.loads((basedir / "golden.json").read_text())


@pytest.fixture(scope="module")
def digit() -> np.ndarray:
    """MNIST test image 0 (a 7) as 28 x 28 uint8 pixels (the shipped sample)."""
    images, _ = sample_images()
    return images[0].reshape(28, 28)


@pytest.mark.parametrize("model", [MLP, LENET], ids=["mlp-784", "lenet-28x28x1"])
def test_png_npy_and_raw_give_the_same_golden_image(model: Path, digit: np.ndarray, tmp_path: Path) -> None:
    Image.fromarray(digit).save(tmp_path / "digit.png")
    np.save(tmp_path / "digit.npy", digit.astype(np.int64))  # any integer dtype whose values fit
    (tmp_path / "digit.bin").write_bytes(digit.tobytes())
    goldens = [
        golden_json(model, tmp_path / name, tmp_path / name[6:])
        for name in ("digit.png", "digit.npy", "digit.bin")
    ]
    assert goldens[0] == goldens[1] == goldens[2]
    # The input region holds the 784 pixels row-major, as MNIST stores them.
    assert goldens[0]["input_root"] == "0x" + region_root(digit.tobytes()).hex()


def test_a_larger_colour_png_is_resized_and_the_vm_gives_predicts_output(
    digit: np.ndarray, tmp_path: Path
) -> None:
    big = Image.fromarray(digit).resize((84, 84), Image.Resampling.NEAREST)
    big.convert("RGB").save(tmp_path / "big.png")  # colour, three times the size: both converted
    golden = golden_json(MLP, tmp_path / "big.png", tmp_path / "task")
    expected = np.asarray(big.convert("L").resize((28, 28), Image.Resampling.BILINEAR), np.uint8)
    assert golden["input_root"] == "0x" + region_root(expected.tobytes()).hex()
    invoke("run", "--basedir", tmp_path / "task", "--json")
    final = json.loads((tmp_path / "task" / "final.json").read_text())
    predicted = json.loads(invoke("predict", "--model", MLP, "--data", tmp_path / "big.png", "--json"))
    assert final["exit_code"] == 0
    assert final["class"] == predicted["class"] == 7
    logits = np.frombuffer(bytes.fromhex(final["output"][2:])[4:], np.int8)
    assert logits.tolist() == predicted["raw_output"]  # the VM's logits are the engine's, bit for bit


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        (MLP, "short.bin", "short.bin: 783 bytes, the model input takes 784 raw bytes"),
        (MLP, "wide.npy", "wide.npy: values outside 0..255"),
        (MLP, "missing.png", "missing.png: no such file"),
        ("broken.ggml", "short.bin", "broken.ggml: not a valid model"),
    ],
)
def test_bad_data_is_one_error_line_and_writes_nothing(
    model: Path | str, data: str, message: str, tmp_path: Path
) -> None:
    (tmp_path / "short.bin").write_bytes(bytes(783))
    np.save(tmp_path / "wide.npy", np.full(784, 300))
    (tmp_path / "broken.ggml").write_bytes(MLP.read_bytes()[:1000])
    model_path = tmp_path / model if isinstance(model, str) else model
    basedir = tmp_path / "task"
    result = CliRunner().invoke(
        cli, ["golden", "--model", str(model_path), "--data", str(tmp_path / data), "--basedir", str(basedir)]
    )
    assert result.exit_code != 0
    assert message in str(result.exception)
    assert not basedir.exists()
