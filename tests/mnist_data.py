"""The MNIST data of the tests: the shipped samples (examples/mnist, the first MNIST test images,
always there) and the full set ($MNIST_DIR, else ../shared/data/mnist, else data/mnist: CI has it).
A test that needs the full set is marked with `needs_mnist(split)` and skips, saying where the set
was looked for, when it is missing; the others use the samples."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prover.model.data import has_mnist, mnist_dir, sample_digits

MNIST_DIR = mnist_dir(None)


def needs_mnist(split: str = "t10k") -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not has_mnist(MNIST_DIR, split),
        reason=f"needs the full MNIST {split} set, not found in {MNIST_DIR} "
        "(`prover data mnist --dir DIR`, then MNIST_DIR=DIR)",
    )


def sample_images() -> tuple[np.ndarray, np.ndarray]:
    """The shipped samples as the IDX set gives them: (N, 784) uint8 images, (N,) uint8 labels,
    in test-set order from image 0."""
    samples = sample_digits()
    assert sorted(samples) == list(range(len(samples))), "the samples are the first test images"
    images = [np.asarray(Image.open(path), np.uint8).reshape(-1) for path, _ in samples.values()]
    labels = [label for _, label in samples.values()]
    return np.stack(images), np.array(labels, np.uint8)


def write_idx(path: Path, array: np.ndarray) -> None:
    """A gzipped IDX file of unsigned bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_set(directory: Path, split: str, images: np.ndarray, labels: np.ndarray) -> Path:
    """An MNIST split of (N, 784) images in `directory`, as the IDX files name it."""
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / f"{split}-images-idx3-ubyte.gz", images.reshape(-1, 28, 28))
    write_idx(directory / f"{split}-labels-idx1-ubyte.gz", labels)
    return directory
