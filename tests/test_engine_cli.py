"""`prover predict`, `prover eval` and `prover quantize` end to end, on a small MNIST set written
here in the IDX format (and on the real test set when it is present)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from mnist_data import MNIST_DIR, needs_mnist, write_idx
from PIL import Image

from prover.cli.main import cli
from prover.model.data import load_mnist
from prover.model.engine import run
from prover.model.modelfile import load_model, save_model
from prover.model.network import Flatten, Linear, Network, ReLU

COUNT = 60


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    """A tiny MNIST-like set: the label is the brightest of ten 784-pixel stripes (learnable by
    the fixed network below), in the four canonical gzipped IDX files."""
    directory = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, COUNT)
    images = rng.integers(0, 100, (COUNT, 28, 28))
    for image, label in zip(images, labels, strict=True):
        image.reshape(-1)[label * 78 : label * 78 + 78] = 255
    for split in ("train", "t10k"):
        write_idx(directory / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{split}-labels-idx1-ubyte.gz", labels)
    return directory, images.reshape(COUNT, 784).astype(np.uint8), labels


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An f32 MLP whose class is the stripe with the largest sum (so it is right on every image)."""
    net = Network((1, 28, 28), [Flatten(), Linear(10), ReLU(), Linear(10)], 1 / 255, 0.0)
    stripes = np.zeros((10, 784), np.float32)
    for k in range(10):
        stripes[k, k * 78 : k * 78 + 78] = 1
    params = {"1.weight": stripes, "1.bias": np.zeros(10), "3.weight": np.eye(10), "3.bias": np.zeros(10)}
    path = tmp_path_factory.mktemp("model") / "stripes.ggml"
    save_model(net.to_graph(params), path)
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_mnist_reading(mnist):
    directory, images, labels = mnist
    read_images, read_labels = load_mnist(directory, "t10k")
    assert np.array_equal(read_images, images) and np.array_equal(read_labels, labels)


def test_predict_png_npy_and_raw(tmp_path, mnist, model):
    _, images, labels = mnist
    Image.fromarray(images[0].reshape(28, 28)).save(tmp_path / "digit.png")
    np.save(tmp_path / "digit.npy", images[0].reshape(28, 28))
    (tmp_path / "digit.bin").write_bytes(images[0].tobytes())
    for name in ("digit.png", "digit.npy", "digit.bin"):
        result = invoke("predict", "--model", model, "--data", tmp_path / name)
        assert result.exit_code == 0, result.output
        assert result.stdout == f"class {labels[0]}\n"
    result = invoke("predict", "--model", model, "--data", tmp_path / "digit.png", "--json")
    report = json.loads(result.stdout)
    assert report["class"] == labels[0]
    assert len(report["logits"]) == 10 and int(np.argmax(report["logits"])) == labels[0]
    assert set(report["timings_ms"]) == {"load_model", "load_input", "inference"}


def test_predict_resizes_images(tmp_path, mnist, model):
    _, images, labels = mnist
    big = Image.fromarray(images[1].reshape(28, 28)).resize((56, 56), Image.Resampling.NEAREST)
    big.convert("RGB").save(tmp_path / "big.jpg", quality=95)
    result = invoke("predict", "--model", model, "--data", tmp_path / "big.jpg")
    assert result.stdout == f"class {labels[1]}\n"


def test_eval_and_quantize(tmp_path, mnist, model):
    directory, _, _ = mnist
    result = invoke("eval", "--model", model, "--mnist-dir", directory)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"accuracy 100.00 % ({COUNT}/{COUNT} test images, f32")
    out = tmp_path / "int8.ggml"
    result = invoke("quantize", "--model", model, "--out", out, "--mnist-dir", directory, "--json")
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    assert written == {
        "path": str(out),
        "bytes": out.stat().st_size,
        "nodes": written["nodes"],
        "mode": "int8",
    }
    result = invoke(
        "eval", "--model", tmp_path / "int8.ggml", "--mnist-dir", directory, "--limit", 20, "--json"
    )
    report = json.loads(result.stdout)
    assert (report["total"], report["mode"]) == (20, "int8")
    assert report["accuracy"] == 100.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--model", "{tmp}/missing.ggml", "--data", "{tmp}/x.bin"], "cannot read the model"),
        (["predict", "--model", "{model}", "--data", "{tmp}/missing.png"], "missing.png: no such file"),
        (
            ["predict", "--model", "{model}", "--data", "{tmp}/short.bin"],
            "3 bytes, the model input takes 784",
        ),
        (
            ["predict", "--model", "{tmp}/short.bin", "--data", "{tmp}/short.bin"],
            "short.bin: byte 0: truncated",
        ),
        (["predict", "--model", "{model}", "--data", "{tmp}/bad.npy"], "bad.npy: values outside 0..255"),
        (["eval", "--model", "{model}", "--mnist-dir", "{tmp}"], "no t10k-images-idx3-ubyte"),
        (
            ["quantize", "--model", "{model}", "--out", "{tmp}/q.ggml", "--mnist-dir", "{tmp}"],
            "no train-images",
        ),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, model, args, message):
    (tmp_path / "short.bin").write_bytes(b"abc")
    np.save(tmp_path / "bad.npy", np.full(784, 300))
    before = set(tmp_path.iterdir())
    args = [a.format(tmp=tmp_path, model=model) for a in args]
    done = subprocess.run([sys.executable, "-m", "prover.cli", *args], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert set(tmp_path.iterdir()) == before  # no partial output


@needs_mnist()
def test_real_mnist_through_the_engine(mnist, model):
    images, labels = load_mnist(MNIST_DIR, "t10k")
    assert images.shape == (10000, 784) and labels.shape == (10000,)
    graph = load_model(model)
    assert run(graph, images[:100]).shape == (100, 10)


@pytest.mark.parametrize(
    ("source", "package"), [("onnx", "onnx"), ("keras", "h5py"), ("torch", "torch"), ("tflite", "tflite")]
)
def test_convert_without_the_importer_package_is_one_error_line(tmp_path, source, package):
    """A subprocess in which the importer's optional package cannot be imported."""
    program = (
        f"import sys; sys.modules[{package!r}] = None\n"
        "from prover.cli import main\n"
        f"sys.argv = ['prover', 'convert', '--from', {source!r}, '--input-shape', '4', "
        f"{str(tmp_path / 'in')!r}, {str(tmp_path / 'out.ggml')!r}]\n"
        "main()\n"
    )
    (tmp_path / "in").write_bytes(b"x")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: --from {source} needs the {package} package (")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out.ggml").exists()
