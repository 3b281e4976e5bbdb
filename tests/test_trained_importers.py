"""The committed model files come from the committed torch checkpoints (models/*.pt) by the
training scripts' path, and the same trained networks through a torch.onnx export and the ONNX
importer give byte-identical .ggml files and the same predictions."""

import io
import os
import platform
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from click.testing import CliRunner  # noqa: E402
from mnist_data import MNIST_DIR, needs_mnist, sample_images  # noqa: E402

from prover.cli.main import cli  # noqa: E402
from prover.model.data import has_mnist, load_mnist  # noqa: E402
from prover.model.engine import run  # noqa: E402
from prover.model.importers.onnx_import import import_onnx  # noqa: E402
from prover.model.importers.torch_import import import_torch  # noqa: E402
from prover.model.modelfile import load_model, write_model  # noqa: E402
from prover.model.quantize import quantize  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CALIBRATION = 1000  # training images, as scripts/training_common.py calibrates
SHAPES = {"mlp": (784,), "lenet5": (1, 28, 28)}


def build(arch: str):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        if arch == "mlp":
            from train_mlp import build_mlp as builder
        else:
            from train_lenet5 import build_lenet5 as builder
    finally:
        sys.path.remove(str(REPO / "scripts"))
    module = builder()
    module.load_state_dict(torch.load(REPO / "models" / f"{arch}.pt")["state_dict"])
    return module.eval()


def onnx_bytes(module, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, *shape),), buffer, dynamo=False, opset_version=13)
    return buffer.getvalue()


def training_convention():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from training_common import CONVENTION
    finally:
        sys.path.remove(str(REPO / "scripts"))
    return CONVENTION


def converted(arch: str) -> tuple[bytes, bytes]:
    """(f32, int8) model files from the committed checkpoint by the training scripts' path."""
    metadata = {"name": arch, "arch": arch, **training_convention().metadata()}
    f32 = import_torch(build(arch), SHAPES[arch]).to_graph(metadata)
    train_images, _ = load_mnist(MNIST_DIR, "train")
    return write_model(f32), write_model(quantize(f32, train_images[:CALIBRATION]))


@needs_mnist("train")
@pytest.mark.parametrize("arch", sorted(SHAPES))
def test_committed_files_are_the_checkpoints_through_the_torch_importer(arch):
    f32, int8 = converted(arch)
    assert f32 == (REPO / "models" / f"{arch}_f32.ggml").read_bytes()
    assert int8 == (REPO / "models" / f"{arch}_int8.ggml").read_bytes()


@needs_mnist("train")
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 kernel names")
@pytest.mark.parametrize("arch", sorted(SHAPES))
def test_the_quantized_file_does_not_depend_on_the_cpu(arch):
    """With OpenBLAS's oldest x86-64 kernels and numpy's SIMD loops held to the baseline (another
    summation order, other exp / tanh code), the calibration and so the file are the same."""
    script = (
        "import sys; sys.path[:0] = ['tests']\n"
        "from numpy._core._multiarray_umath import __cpu_features__\n"
        "assert not __cpu_features__.get('X86_V3'), 'numpy SIMD still above the baseline'\n"
        "from test_trained_importers import converted\n"
        f"sys.stdout.buffer.write(converted({arch!r})[1])\n"
    )
    env = {**os.environ, "OPENBLAS_CORETYPE": "Prescott", "NPY_DISABLE_CPU_FEATURES": "X86_V3"}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout == (REPO / "models" / f"{arch}_int8.ggml").read_bytes()


@pytest.mark.parametrize("arch", sorted(SHAPES))
def test_torch_and_onnx_paths_give_the_same_file_and_predictions(arch):
    """On the first 1,000 test images, or on the shipped samples without the full set."""
    module = build(arch)
    through_torch = import_torch(module, SHAPES[arch]).to_graph()
    through_onnx = import_onnx(onnx_bytes(module, SHAPES[arch])).to_graph()
    assert write_model(through_torch) == write_model(through_onnx)
    images = load_mnist(MNIST_DIR, "t10k")[0][:1000] if has_mnist(MNIST_DIR) else sample_images()[0]
    with torch.no_grad():
        by_torch = module(torch.from_numpy(images.astype(np.float32)).reshape(-1, *SHAPES[arch])).argmax(1)
    by_torch_file = run(through_torch, images).argmax(axis=1)
    by_onnx_file = run(through_onnx, images).argmax(axis=1)
    assert np.array_equal(by_torch_file, by_onnx_file)
    # float32 sums in another order may flip a near tie, nothing more
    assert np.mean(by_torch_file == by_torch.numpy()) >= 0.999


def test_convert_command_from_torch_and_from_onnx(tmp_path):
    module = build("lenet5")
    (tmp_path / "lenet5.onnx").write_bytes(onnx_bytes(module, SHAPES["lenet5"]))
    runner = CliRunner()
    checkpoint = str(REPO / "models" / "lenet5.pt")
    builder = f"{REPO}/scripts/train_lenet5.py:build_lenet5"
    torch_args = ["--module", builder, "--input-shape", "1,28,28", checkpoint, str(tmp_path / "a.ggml")]
    for args in (
        ["--from", "torch", *torch_args],
        ["--from", "onnx", str(tmp_path / "lenet5.onnx"), str(tmp_path / "b.ggml")],
    ):
        result = runner.invoke(cli, ["convert", *args])
        assert result.exit_code == 0, result.output
    by_torch, by_onnx = load_model(tmp_path / "a.ggml"), load_model(tmp_path / "b.ggml")
    assert (by_torch.metadata["source"], by_onnx.metadata["source"]) == ("torch", "onnx")
    by_torch.metadata = by_onnx.metadata = {}
    assert write_model(by_torch) == write_model(by_onnx)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "torch", "{pt}", "{out}"], "needs --input-shape"),
        (["--from", "torch", "--input-shape", "784", "{pt}", "{out}"], "not a module: name its builder"),
        (
            ["--from", "torch", "--input-shape", "7x", "--module", "x:y", "{pt}", "{out}"],
            "--input-shape '7x'",
        ),
        (
            ["--from", "torch", "--input-shape", "784", "--module", "nosuchmodule:f", "{pt}", "{out}"],
            "nosuchmodule",
        ),
        (
            ["--from", "torch", "--input-shape", "784", "--module", "{mlp}", "{lenet}", "{out}"],
            "does not fit",
        ),
        (["--from", "onnx", "{pt}", "{out}"], "lenet5.pt"),
    ],
)
def test_convert_errors_are_one_line(tmp_path, args, message):
    values = {
        "pt": REPO / "models" / "lenet5.pt",
        "lenet": REPO / "models" / "lenet5.pt",
        "mlp": f"{REPO}/scripts/train_mlp.py:build_mlp",
        "out": tmp_path / "out.ggml",
    }
    result = subprocess_prover(["convert", *(a.format(**values) for a in args)])
    assert result.returncode == 1
    assert message in result.stderr and result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.count(str(values["pt"])) <= 1  # the file is named once
    assert not (tmp_path / "out.ggml").exists()


def subprocess_prover(args: list[str]):
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "prover.cli", *args], capture_output=True, text=True, cwd=REPO, check=False
    )
