"""The guest's f32 path on the trained MNIST MLP (models/mlp.pt): the same class as torch's float32
forward pass on MNIST test images, and the trained accuracy."""

from pathlib import Path

import numpy as np
import pytest
from mnist_data import MNIST_DIR, needs_mnist, sample_images
from test_guest_models import DEQUANTIZE, F32, LINEAR, RELU, U8, Graph, f32_bits, native_guest

from prover.model.data import load_mnist
from prover.task.golden import OUTPUT_BASE, REGION_HEADER, build_golden
from prover.task.guest.native import NativeGuest

torch = pytest.importorskip("torch")

__all__ = ["native_guest"]  # the fixture, imported for this module

REPO = Path(__file__).resolve().parent.parent
PIXEL_SCALE, PIXEL_OFFSET = 1 / 255, -1.0  # scripts/training_common.py's input normalization
IMAGES = 1000


def trained_f32_mlp() -> tuple[bytes, list[np.ndarray]]:
    """The trained MLP as an f32 .ggml (DEQUANTIZE -> LINEAR -> RELU -> LINEAR) and its weights."""
    state = torch.load(REPO / "models" / "mlp.pt", map_location="cpu")["state_dict"]
    weights = [state[name].numpy() for name in ("1.weight", "1.bias", "4.weight", "4.bias")]
    w1, b1, w2, b2 = weights
    g = Graph()
    pixels = g.tensor("pixels", U8, [784])
    x = g.node(DEQUANTIZE, [pixels], F32, [784], SCALE=f32_bits(PIXEL_SCALE), OFFSET=f32_bits(PIXEL_OFFSET))
    hidden = g.node(
        LINEAR, [x, g.tensor("w1", F32, [784, 500], w1), g.tensor("b1", F32, [500], b1)], F32, [500]
    )
    inputs = [
        g.node(RELU, [hidden], F32, [500]),
        g.tensor("w2", F32, [500, 10], w2),
        g.tensor("b2", F32, [10], b2),
    ]
    return g.write(pixels, g.node(LINEAR, inputs, F32, [10])), weights


@needs_mnist()
def test_trained_f32_mlp_predicts_like_torch(native_guest: NativeGuest) -> None:
    model, (w1, b1, w2, b2) = trained_f32_mlp()
    images, labels = (array[:IMAGES] for array in load_mnist(MNIST_DIR, "t10k"))
    with torch.no_grad():
        x = torch.from_numpy(images.astype(np.float32)) * PIXEL_SCALE + PIXEL_OFFSET
        logits = torch.relu(x @ torch.from_numpy(w1).T + torch.from_numpy(b1)) @ torch.from_numpy(w2).T
        expected = (logits + torch.from_numpy(b2)).argmax(dim=1).numpy()
    predicted = np.array([native_guest.run(model, image.tobytes()).predicted_class for image in images])
    assert (predicted == expected).mean() >= 0.999  # float summation order may flip a near tie
    assert (predicted == labels).mean() >= 0.97


@pytest.mark.slow
def test_trained_f32_mlp_in_the_vm(native_guest: NativeGuest) -> None:
    """38.7 M steps: the soft-float VM run gives the native (hardware float) output bit for bit."""
    model, _ = trained_f32_mlp()
    images, labels = sample_images()
    machine = build_golden(model, images[0].tobytes()).machine
    machine.run()
    length = machine.memory.read_word(OUTPUT_BASE)
    output = machine.memory.read(OUTPUT_BASE + REGION_HEADER, length)
    assert (machine.state.exit_code, output) == (0, native_guest.run(model, images[0].tobytes()).output)
    assert int.from_bytes(output[:4], "big") == labels[0]
