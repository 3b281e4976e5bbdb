"""Inputs: the MNIST IDX files and the `--data` argument of the commands.

    images, labels = load_mnist(mnist_dir(None), "t10k")   # (10000, 784) uint8, (10000,) uint8
    pixels = load_input(Path("digit.png"), graph.tensors[graph.input])   # one input, the tensor's dtype

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
from prover.model.graph import Tensor

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def mnist_dir(option: str | os.PathLike[str] | None) -> Path:
    """The MNIST directory: the option, else $MNIST_DIR, else ../shared/data/mnist from the repo."""
    if option:
        return Path(option)
    return Path(os.environ.get("MNIST_DIR") or REPO_ROOT.parent / "shared" / "data" / "mnist")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not): u8 zero, u8 zero, u8 type 0x08 (unsigned bytes), u8 n_dims,
    the big-endian u32 dims, then the data."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ProverError(f"{path}: cannot read: {exc}") from None
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
        raise ProverError(f"{directory}: no {name}(.gz) (set --mnist-dir or $MNIST_DIR)")

    images = read_idx(find(f"{split}-images-idx3-ubyte"))
    labels = read_idx(find(f"{split}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ProverError(
            f"{directory}: {split} images {images.shape} and labels {labels.shape} do not match"
        )
    return images.reshape(len(images), -1), labels


def _image_size(tensor: Tensor) -> tuple[int, int]:
    """(width, height) of an image input: (W, H, 1) dims, or a square count of a flat input."""
    if len(tensor.dims) >= 2 and math.prod(tensor.dims[2:]) == 1:
        return tensor.dims[0], tensor.dims[1]
    side = math.isqrt(tensor.count)
    if len(tensor.dims) == 1 and side * side == tensor.count:
        return side, side
    raise ProverError(f"the model input {tensor.dims} is not a one-channel image")


def load_input(path: Path, tensor: Tensor) -> np.ndarray:
    """One input for the graph input `tensor`, as a flat array of its dtype."""
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
        size = _image_size(tensor)
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
