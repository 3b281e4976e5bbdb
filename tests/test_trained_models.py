"""The committed trained models (models/*.pt, torch state_dicts) meet the accuracy targets on the
MNIST test set: the first 1,000 images here, all 10,000 in the slow test."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parent.parent
MNIST_DIR = Path(os.environ.get("MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))
# Test-set accuracy targets (%) of the f32 models.
TARGETS = {"mlp": 98.0, "lenet5": 98.8}

pytestmark = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"no MNIST at {MNIST_DIR}")


@pytest.fixture(scope="module")
def scripts():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import train_lenet5
        import train_mlp
        import training_common

        yield {"mlp": train_mlp.build_mlp, "lenet5": train_lenet5.build_lenet5, "common": training_common}
    finally:
        sys.path.remove(str(REPO / "scripts"))


def accuracy(scripts, name: str, count: int) -> float:
    common = scripts["common"]
    images = common.read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz")[:count]
    labels = common.read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")[:count]
    model = scripts[name]()
    model.load_state_dict(torch.load(REPO / "models" / f"{name}.pt")["state_dict"])
    model.eval()
    shape = (784,) if name == "mlp" else (1, 28, 28)
    with torch.no_grad():
        predictions = model(common.as_pixels(images, shape)).argmax(dim=1).numpy()
    return float(np.mean(predictions == labels) * 100)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_first_thousand_test_images(scripts, name):
    assert accuracy(scripts, name, 1000) >= TARGETS[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_full_test_set(scripts, name):
    assert accuracy(scripts, name, 10_000) >= TARGETS[name]
