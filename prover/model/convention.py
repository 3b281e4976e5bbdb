"""A model's input convention: what its input pixels mean, as recorded in the .ggml metadata, and
bringing an image or a set of images of either polarity to it.

    convention = InputConvention.of(graph)            # None: the file records no convention
    pixels, prepared = convention.bring(pixels, "auto", "digit.png")

An image model takes one-channel pixels in `minimum..maximum`; `background` is the value of its
empty paper: the project's MNIST copy, and so the models trained on it, is dark digits on a light
background (255); canonical MNIST (torchvision, Keras) is light digits on a dark one (0). The
polarity of an input is read off its border, where a digit has no ink: when at least
BACKGROUND_SHARE of the border pixels lie in the quarter of the range at one end, that end is the
background. An input whose background is the other end is inverted (x -> minimum + maximum - x),
exactly, so an inverted image becomes the original bytes again. An input with no clear background
is used as given, and `prepared.note` says so.

This is off-chain preparation: the golden image's input root commits to the bytes after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from prover.errors import ProverError
from prover.model.graph import DType, Graph, MetaValue, Tensor

BORDER = 2  # pixels from each edge that make the border
BACKGROUND_SHARE = 0.8
LIGHT, DARK = "light", "dark"
BACKGROUNDS = ("auto", LIGHT, DARK)  # the choices of the --background option
KEYS = ("input_width", "input_height", "input_min", "input_max", "input_background")


@dataclass(frozen=True)
class Prepared:
    """What was done to an input: its background as detected or given (None: no clear one), and
    whether it was inverted. `note` is the line a person is told, or None when nothing is worth it."""

    background: str | None
    inverted: bool
    note: str | None

    def to_json(self) -> dict[str, object]:
        return {"background": self.background, "inverted": self.inverted, "note": self.note}


@dataclass(frozen=True)
class InputConvention:
    """One-channel images of width x height pixels in minimum..maximum, background `background`."""

    width: int
    height: int
    minimum: int = 0
    maximum: int = 255
    background: int = 255

    def __post_init__(self) -> None:
        if not self.minimum < self.maximum or self.background not in (self.minimum, self.maximum):
            raise ProverError(
                f"input convention: background {self.background} is not an end of "
                f"{self.minimum}..{self.maximum}"
            )

    @property
    def background_name(self) -> str:
        return LIGHT if self.background == self.maximum else DARK

    def describe(self) -> str:
        ink = DARK if self.background_name == LIGHT else LIGHT
        return (
            f"{self.width}x{self.height} pixels {self.minimum}..{self.maximum}, "
            f"{ink} digits on a {self.background_name} background ({self.background})"
        )

    def metadata(self) -> dict[str, MetaValue]:
        values = (self.width, self.height, self.minimum, self.maximum, self.background)
        return dict(zip(KEYS, values, strict=True))

    @classmethod
    def of(cls, graph: Graph) -> InputConvention | None:
        """The convention the graph's metadata records, None if it records none (older files)."""
        if not all(key in graph.metadata for key in KEYS):
            return None
        values = [graph.metadata[key] for key in KEYS]
        if not all(isinstance(value, int) for value in values):
            raise ProverError(f"input convention: {dict(zip(KEYS, values, strict=True))} are not integers")
        convention = cls(*values)
        if convention.width * convention.height != graph.tensors[graph.input].count:
            raise ProverError(
                f"input convention: {convention.width}x{convention.height} pixels, the input tensor "
                f"has {graph.tensors[graph.input].count}"
            )
        return convention

    def detect(self, pixels: np.ndarray) -> str | None:
        """LIGHT or DARK: the background of one image or of a whole set (N, width * height), from
        all their border pixels together; None when neither end holds BACKGROUND_SHARE of them."""
        images = np.asarray(pixels).reshape(-1, self.height, self.width)
        mask = np.ones((self.height, self.width), bool)
        mask[BORDER:-BORDER, BORDER:-BORDER] = False
        border = images[:, mask].astype(np.float64)
        quarter = (self.maximum - self.minimum) / 4
        if np.mean(border <= self.minimum + quarter) >= BACKGROUND_SHARE:
            return DARK
        if np.mean(border >= self.maximum - quarter) >= BACKGROUND_SHARE:
            return LIGHT
        return None

    def bring(self, pixels: np.ndarray, given: str, where: str) -> tuple[np.ndarray, Prepared]:
        """`pixels` (one image or a set) in this convention: inverted when their background, as
        `given` (LIGHT or DARK) or detected ("auto"), is the other end of the range."""
        if given not in BACKGROUNDS:
            raise ProverError(f"--background {given!r}: expected one of {', '.join(BACKGROUNDS)}")
        background = self.detect(pixels) if given == "auto" else given
        if background is None:
            note = (
                f"{where}: no clear background in the border pixels, so the polarity is unknown; "
                f"used as given (the model takes {self.describe()}; --background forces one)"
            )
            return pixels, Prepared(None, False, note)
        if background == self.background_name:
            return pixels, Prepared(background, False, None)
        if np.any((pixels < self.minimum) | (pixels > self.maximum)):
            raise ProverError(f"{where}: values outside {self.minimum}..{self.maximum} cannot be inverted")
        inverted = (self.minimum + self.maximum - pixels.astype(np.int64)).astype(pixels.dtype)
        note = f"{where}: {background} background, inverted to the model's {self.background_name} one"
        return inverted, Prepared(background, True, note)


def image_size(tensor: Tensor) -> tuple[int, int] | None:
    """(width, height) of a one-channel image input: (W, H, 1) dims, or a flat input of a square
    count; None for any other input."""
    if len(tensor.dims) >= 2 and math.prod(tensor.dims[2:]) == 1:
        return tensor.dims[0], tensor.dims[1]
    side = math.isqrt(tensor.count)
    if len(tensor.dims) == 1 and side * side == tensor.count:
        return side, side
    return None


def image_convention(tensor: Tensor, background: str) -> InputConvention | None:
    """The convention of an importer's input, raw u8 pixels, with a `background` (LIGHT or DARK)
    background; None for an input that is not a one-channel u8 image (nothing to record)."""
    size = image_size(tensor)
    if tensor.dtype != DType.U8 or size is None:
        return None
    return InputConvention(*size, 0, 255, 255 if background == LIGHT else 0)


def with_convention(graph: Graph, background: str) -> Graph:
    """The graph with the input convention of image_convention in its metadata (unchanged if its
    input is not an image)."""
    convention = image_convention(graph.tensors[graph.input], background)
    if convention is None:
        return graph
    return replace(graph, metadata={**graph.metadata, **convention.metadata()})
