"""Inputs: the MNIST IDX files, the shipped sample digits and the `--data` argument of the commands.

    images, labels = load_mnist(mnist_dir(None), "t10k")   # (10000, 784) uint8, (10000,) uint8
    pixels = load_input(Path("digit.png"), graph.tensors[graph.input])   # one input, the tensor's dtype
    pixels, prepared = prepare_input(Path("digit.png"), graph, "auto")  # ... in the model's convention
    sample_digit(0)    # examples/mnist/test_0000_label_7.png: MNIST test image 0, shipped
    pixels, label = mnist_test_digit(25)   # the shipped sample if there is one, else the full set's

`--data` takes a PNG or JPEG (converted to grayscale and resized to the input's width and height
with Pillow's bilinear filter), a .npy array (of the input's element count, values that fit its
dtype), or anything else as raw bytes (exactly the input tensor's size, big-endian for multi-byte
dtypes, as the guest reads it). Problems raise a ProverError naming the file.
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np

from prover.errors import ProverError
from prover.model.convention import InputConvention, Prepared, image_size
from prover.model.graph import Graph, Tensor

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
# The first MNIST test images of the project's copy (dark digits on white), as PNGs named
# test_<index>_label_<label>.png: the demos and examples run without the full set.
SAMPLES_DIR = REPO_ROOT / "examples" / "mnist"
SHARED_MNIST = REPO_ROOT.parent / "shared" / "data" / "mnist"
DOWNLOADED_MNIST = REPO_ROOT / "data" / "mnist"


def mnist_dir(option: str | os.PathLike[str] | None) -> Path:
    """The MNIST directory: the option, else $MNIST_DIR, else the project's copy in
    ../shared/data/mnist if there is one, else data/mnist in the repository (where
    `prover data mnist` downloads by default)."""
    if option:
        return Path(option)
    if os.environ.get("MNIST_DIR"):
        return Path(os.environ["MNIST_DIR"])
    return SHARED_MNIST if SHARED_MNIST.is_dir() else DOWNLOADED_MNIST


def has_mnist(directory: Path, split: str = "t10k") -> bool:
    """Whether `directory` holds the images and labels of `split` (gzipped or not)."""
    return all(
        (directory / f"{split}-{kind}.gz").is_file() or (directory / f"{split}-{kind}").is_file()
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )


def sample_digits() -> dict[int, tuple[Path, int]]:
    """The shipped samples: test index -> (PNG path, label)."""
    samples = {}
    for path in sorted(SAMPLES_DIR.glob("test_*_label_*.png")):
        _, index, _, label = path.stem.split("_")
        samples[int(index)] = (path, int(label))
    return samples


def sample_digit(index: int) -> Path:
    """The shipped PNG of MNIST test image `index`; a ProverError if it is not one of them."""
    samples = sample_digits()
    if index not in samples:
        raise ProverError(
            f"MNIST test image {index} is not among the samples in {SAMPLES_DIR} "
            f"(test images {min(samples, default=0)}..{max(samples, default=-1)})"
        )
    return samples[index][0]


def mnist_test_digit(index: int) -> tuple[np.ndarray, int]:
    """MNIST test image `index` as 784 uint8 pixels, as its source draws it, and its label: the
    shipped sample if it is one of them, else the full set's (mnist_dir(None)); a ProverError if
    neither has it."""
    samples = sample_digits()
    if index in samples:
        from PIL import Image

        path, label = samples[index]
        with Image.open(path) as image:
            return np.asarray(image.convert("L"), np.uint8).reshape(-1), label
    directory = mnist_dir(None)
    if not has_mnist(directory):
        raise ProverError(
            f"MNIST test image {index}: only test images 0..{max(samples, default=-1)} ship in "
            f"{SAMPLES_DIR} and the full set is not in {directory} "
            "(run `prover data mnist --dir DIR` and set MNIST_DIR=DIR)"
        )
    images, labels = load_mnist(directory, "t10k")
    if not 0 <= index < len(images):
        raise ProverError(f"MNIST test image {index}: the test set has images 0..{len(images) - 1}")
    return images[index], int(labels[index])


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not): u8 zero, u8 zero, u8 type 0x08 (unsigned bytes), u8 n_dims,
    the big-endian u32 dims, then the data."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ProverError(f"{path}: cannot read: {exc}") from None
    return parse_idx(raw, path)


def parse_idx(raw: bytes, path: Path) -> np.ndarray:
    """The array of an IDX file's bytes (not gzipped); errors name `path`."""
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or not 1 <= raw[3] <= 4:
        raise ProverError(f"{path}: not an IDX file of unsigned bytes")
    n_dims = raw[3]
    if len(raw) < 4 + 4 * n_dims:
        raise ProverError(f"{path}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", n_dims, 4))
    if len(raw) - 4 - 4 * n_dims != math.prod(dims):
        raise ProverError(f"{path}: IDX data size does not match its dims {dims}")
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * n_dims).reshape(dims)


def load_mnist(directory: Path, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 784) uint8, labels (N,) uint8) of the "t10k" (test) or "train" split."""

    def find(name: str) -> Path:
        for candidate in (directory / f"{name}.gz", directory / name):
            if candidate.is_file():
                return candidate
        raise ProverError(
            f"{directory}: no {name}(.gz) (set --mnist-dir or $MNIST_DIR, or run `prover data mnist`)"
        )

    images = read_idx(find(f"{split}-images-idx3-ubyte"))
    labels = read_idx(find(f"{split}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ProverError(
            f"{directory}: {split} images {images.shape} and labels {labels.shape} do not match"
        )
    return images.reshape(len(images), -1), labels


def _image_size(tensor: Tensor, convention: InputConvention | None) -> tuple[int, int]:
    """(width, height) of an image input: the model's convention's, else the tensor's shape's."""
    if convention is not None:
        return convention.width, convention.height
    size = image_size(tensor)
    if size is None:
        raise ProverError(f"the model input {tensor.dims} is not a one-channel image")
    return size


def prepare_input(path: Path, graph: Graph, background: str = "auto") -> tuple[np.ndarray, Prepared | None]:
    """One input for `graph` as a flat array of its input's dtype, brought to the model's input
    convention (prover/model/convention.py; `background`: "auto" detects the file's, "light" or
    "dark" says it); the Prepared is None for a model that records no convention."""
    convention = InputConvention.of(graph)
    values = load_input(path, graph.tensors[graph.input], convention)
    if convention is None:
        return values, None
    return convention.bring(values, background, str(path))


def prepare_set(
    images: np.ndarray, graph: Graph, background: str, where: str
) -> tuple[np.ndarray, Prepared | None]:
    """An image set (N, pixels) brought to the model's convention as a whole (its polarity read
    off all the images' borders together), as prepare_input does for one input."""
    convention = InputConvention.of(graph)
    if convention is None:
        return images, None
    return convention.bring(images, background, where)


def load_input(path: Path, tensor: Tensor, convention: InputConvention | None = None) -> np.ndarray:
    """One input for the graph input `tensor`, as a flat array of its dtype, as the file holds it
    (an image is resized to the convention's size, else to the tensor's)."""
    if not path.is_file():
        raise ProverError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                gray = image.convert("L")
        except (OSError, UnidentifiedImageError) as exc:
            raise ProverError(f"{path}: cannot read the image: {exc}") from None
        size = _image_size(tensor, convention)
        if gray.size != size:
            gray = gray.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(gray, np.uint8).reshape(-1).astype(tensor.dtype.numpy)
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ProverError(f"{path}: cannot read the array: {exc}") from None
        if array.size != tensor.count:
            raise ProverError(f"{path}: {array.size} values, the model input takes {tensor.count}")
        target = tensor.dtype.numpy
        if array.dtype.kind not in "biuf" or (
            target.kind in "iu" and not np.array_equal(array, np.round(array))
        ):
            raise ProverError(f"{path}: values are not {target.name}")
        if target.kind in "iu":
            info = np.iinfo(target)
            if array.min() < info.min or array.max() > info.max:
                raise ProverError(f"{path}: values outside {info.min}..{info.max}")
        return array.reshape(-1).astype(target)
    raw = path.read_bytes()
    if len(raw) != tensor.nbytes:
        raise ProverError(f"{path}: {len(raw)} bytes, the model input takes {tensor.nbytes} raw bytes")
    return np.frombuffer(raw, tensor.dtype.numpy.newbyteorder(">")).astype(tensor.dtype.numpy)
