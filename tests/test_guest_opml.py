"""A model in OPML's legacy format, converted with `prover convert --from opml`, runs in the VM and
predicts like its float reference (the MLP computed directly in numpy from the file's tensors).

The model is small but real: its 48 hidden units are the first 24 principal components of 5,000
MNIST training images with both signs (so that ReLU keeps the information), and the output layer is
a least-squares fit to their labels: 84 % accurate on the test set. Its f32 VM run stays affordable,
784 x 48 multiply-accumulates in 5.5 M steps (under 2 s), where OPML's 784-500-10 network takes 39 M.
"""

import struct

import numpy as np
import pytest
from click.testing import CliRunner
from mnist_data import MNIST_DIR, needs_mnist
from test_guest_models import native_guest
from test_opml import direct_mlp, opml_tensor

from prover.cli.main import cli
from prover.model.data import load_mnist
from prover.task.golden import build_golden
from prover.task.guest.native import NativeGuest
from prover.task.run import output_payload

__all__ = ["native_guest"]  # the fixture, imported for this module

# fitted on the training set, checked on the test set
pytestmark = [needs_mnist("train"), needs_mnist("t10k")]

COMPONENTS = 24
FIT_IMAGES = 5_000  # training images for the components and the least-squares fit
NATIVE_IMAGES = 500
VM_IMAGES = 3


def pca_mlp() -> list[np.ndarray]:
    """W1 (48, 784), b1 (48), W2 (10, 48), b2 (10) in OPML's orientation (out, in), raw pixels."""
    images, labels = load_mnist(MNIST_DIR, "train")
    x = images[:FIT_IMAGES].astype(np.float64)
    mean = x.mean(axis=0)
    _, vectors = np.linalg.eigh((x - mean).T @ (x - mean))  # eigenvalues in ascending order
    components = vectors[:, ::-1][:, :COMPONENTS].T
    directions = np.concatenate([components, -components]) / 255
    w1 = directions.astype(np.float32)
    b1 = (-w1.astype(np.float64) @ mean).astype(np.float32)  # centre the pixels
    hidden = np.maximum(x @ w1.T.astype(np.float64) + b1, 0)
    features = np.hstack([hidden, np.ones((len(hidden), 1))])
    targets = np.eye(10)[labels[:FIT_IMAGES]]
    solution, *_ = np.linalg.lstsq(features, targets, rcond=None)
    w2, b2 = solution[:-1].T.astype(np.float32), solution[-1].astype(np.float32)
    return [w1, b1, w2, b2]


def opml_bytes(w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> bytes:
    """OPML's legacy file (prover/model/opml.py): magic, then W1, b1, W2, b2, dims innermost first."""
    hidden = len(b1)
    return (
        struct.pack(">i", 0x67676D6C)
        + opml_tensor(w1, [784, hidden])
        + opml_tensor(b1, [hidden, 1])
        + opml_tensor(w2, [hidden, 10])
        + opml_tensor(b2, [10, 1])
    )


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[np.ndarray]]:
    """The converted .ggml bytes and the float weights."""
    weights = pca_mlp()
    directory = tmp_path_factory.mktemp("opml")
    (directory / "mnist.opml").write_bytes(opml_bytes(*weights))
    result = CliRunner().invoke(
        cli, ["convert", "--from", "opml", str(directory / "mnist.opml"), str(directory / "m.ggml")]
    )
    assert result.exit_code == 0, result.output
    return (directory / "m.ggml").read_bytes(), weights


@pytest.fixture(scope="module")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    return load_mnist(MNIST_DIR, "t10k")


def test_converted_opml_model_predicts_like_its_float_reference_natively(
    converted: tuple[bytes, list[np.ndarray]],
    mnist_test: tuple[np.ndarray, np.ndarray],
    native_guest: NativeGuest,
) -> None:
    model, weights = converted
    images, labels = mnist_test[0][:NATIVE_IMAGES], mnist_test[1][:NATIVE_IMAGES]
    expected = direct_mlp(images, *weights).argmax(axis=1)
    classes = np.array([native_guest.run(model, image.tobytes()).predicted_class for image in images])
    assert np.array_equal(classes, expected)
    assert (classes == labels).mean() >= 0.75  # a model that has learnt something, not a constant


def test_converted_opml_model_in_the_vm(
    converted: tuple[bytes, list[np.ndarray]],
    mnist_test: tuple[np.ndarray, np.ndarray],
    native_guest: NativeGuest,
) -> None:
    """Full f32 VM runs: the native output bit for bit, and the float reference's class."""
    model, weights = converted
    images = mnist_test[0][:VM_IMAGES]
    expected = direct_mlp(images, *weights).argmax(axis=1)
    for image, want in zip(images, expected, strict=True):
        machine = build_golden(model, image.tobytes()).machine
        machine.run()
        output = output_payload(machine)
        assert (machine.state.exit_code, output) == (0, native_guest.run(model, image.tobytes()).output)
        assert int.from_bytes(output[:4], "big") == want
