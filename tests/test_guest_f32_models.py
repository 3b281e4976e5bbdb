"""The trained f32 models (models/mlp_f32.ggml, models/lenet5_f32.ggml) give the reference engine's
class in the guest.

Why the VM runs only one image per model: the guest computes f32 in software (compiler_rt's
__addsf3, __mulsf3, ... and softmath.c's tanhf), about 100 steps per multiply-accumulate: the MLP
takes 39 M steps per image and LeNet-5 67 M (10-20 s each with the fast executor). So the claim
"the VM gives the engine's class" is checked in two links:

1. VM == native build, bit for bit (the slow tests below, one image per model, and
   tests/test_guest_vm.py on random f32 models): the native build compiles the identical C
   sources for the host, where float arithmetic is the same IEEE-754 single precision with
   round-to-nearest-even (SSE, -ffp-contract=off, so no fused multiply-add), in the same order of
   operations; soft-float and hardware float therefore give the same bits, which these runs confirm.
2. native build == engine class on 500 test images per model (not slow: milliseconds per image).
   The engine sums in numpy's order, not the guest's, so logits differ in their last bits and
   only the class is compared; measured on all 10,000 test images the two agree on every one.

Together: on these 500 images the VM would give the engine's class, at a few seconds of cost.
"""

from pathlib import Path

import numpy as np
import pytest
from mnist_data import MNIST_DIR, needs_mnist, sample_images
from test_guest_models import native_guest

from prover.model import engine
from prover.model.data import load_mnist
from prover.model.modelfile import load_model
from prover.task.golden import build_golden
from prover.task.guest.native import NativeGuest
from prover.task.run import output_payload

__all__ = ["native_guest"]  # the fixture, imported for this module

REPO = Path(__file__).resolve().parent.parent
F32_MODELS = ["mlp_f32", "lenet5_f32"]
NATIVE_IMAGES = 500
# Among the shipped samples; tests/test_guest_trained.py runs the MLP on image 0.
VM_IMAGE = {"mlp_f32": 1, "lenet5_f32": 0}


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    return load_mnist(MNIST_DIR, "t10k")


def engine_classes(name: str, images: np.ndarray) -> np.ndarray:
    graph = load_model(REPO / "models" / f"{name}.ggml")
    logits = engine.run(graph, images)
    assert logits.dtype == np.float32
    return np.argmax(logits, axis=1)


@needs_mnist()
@pytest.mark.parametrize("name", F32_MODELS)
def test_native_f32_model_gives_the_engine_class(
    name: str, mnist: tuple[np.ndarray, np.ndarray], native_guest: NativeGuest
) -> None:
    images, labels = mnist[0][:NATIVE_IMAGES], mnist[1][:NATIVE_IMAGES]
    model = (REPO / "models" / f"{name}.ggml").read_bytes()
    results = [native_guest.run(model, image.tobytes()) for image in images]
    assert all(result.exit_code == 0 for result in results)
    classes = np.array([result.predicted_class for result in results])
    assert np.array_equal(classes, engine_classes(name, images))
    assert (classes == labels).mean() >= 0.97  # a trained model, not a constant one


@pytest.mark.slow
@pytest.mark.parametrize("name", F32_MODELS)
def test_f32_model_in_the_vm_equals_native_and_gives_the_engine_class(
    name: str, native_guest: NativeGuest
) -> None:
    image = sample_images()[0][VM_IMAGE[name]]
    model = (REPO / "models" / f"{name}.ggml").read_bytes()
    machine = build_golden(model, image.tobytes()).machine
    machine.run()
    output = output_payload(machine)
    native = native_guest.run(model, image.tobytes())
    assert (machine.state.exit_code, output) == (0, native.output)
    assert int.from_bytes(output[:4], "big") == engine_classes(name, image[None])[0]
