"""The PyTorch layers that have no torch.nn equivalent but do have a .ggml op: the pixel
normalization folded into a model, LeNet's trainable subsampling and a conv with a connectivity
mask. Models built from these and standard torch.nn layers import with prover.model.importers.torch_import.

This module imports torch at load time: only the training scripts and the torch importer load it.
"""

import torch
from torch import nn
from torch.nn import functional


class PixelNormalize(nn.Module):
    """y = x * scale + offset, for x the raw uint8 pixel values (as floats). It becomes the graph's
    DEQUANTIZE (f32) or REQUANTIZE (int8) of the u8 input, so callers feed raw pixels."""

    def __init__(self, scale: float, offset: float = 0.0) -> None:
        super().__init__()
        self.scale = float(scale)
        self.offset = float(offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset

    def extra_repr(self) -> str:
        return f"scale={self.scale}, offset={self.offset}"


class Subsample(nn.Module):
    """LeNet-5's trainable subsampling (S2, S4): y[c] = avgpool(x)[c] * coef[c] + bias[c]."""

    def __init__(self, channels: int, kernel_size: int = 2, stride: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride or kernel_size
        self.coef = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = functional.avg_pool2d(x, self.kernel_size, self.stride)
        # view(), not indexing: it exports to ONNX as a Reshape of a constant, which folds away.
        return pooled * self.coef.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"channels={self.coef.numel()}, kernel_size={self.kernel_size}, stride={self.stride}"


class MaskedConv2d(nn.Conv2d):
    """A Conv2d whose output channel `o` sees only the input channels `i` with mask[o][i] == 1
    (LeNet-5's C3). The weights of unconnected pairs stay in the tensor but never take part."""

    def __init__(self, mask: torch.Tensor, kernel_size: int, **conv_options: object) -> None:
        out_channels, in_channels = mask.shape
        super().__init__(in_channels, out_channels, kernel_size, **conv_options)
        self.register_buffer("mask", mask.to(torch.uint8))
        # Scale the initialization as if each output saw only its connected inputs.
        with torch.no_grad():
            fan_in_ratio = mask.sum(dim=1, keepdim=True).float() / in_channels
            self.weight.div_(fan_in_ratio.sqrt()[:, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.masked_weight(), self.bias)

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask[:, :, None, None].to(self.weight.dtype)
