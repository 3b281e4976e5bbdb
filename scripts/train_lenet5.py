"""Train LeNet-5 (LeCun et al. 1998) on MNIST and write models/lenet5_f32.ggml and
models/lenet5_int8.ggml, with the log and the plots.

    .venv/bin/python scripts/train_lenet5.py [--mnist-dir DIR] [--epochs N] [--seed S]

As in the paper: the 28x28 digit in a 32x32 frame (here C1's padding of 2; the input
normalization maps the background to 0, so the padding is background), tanh activations,
trainable subsampling S2 and S4 (average x coefficient + bias), C3 connected to the S2 maps of
the paper's Table I, C5 a 5x5 convolution to 120 maps of 1x1, F6 84 units. Differences: the 10
outputs are a linear layer trained with softmax cross-entropy (not the RBF units and their MAP
loss), tanh is the plain one (not 1.7159 tanh(2a/3)), and the optimizer is Adam.
"""

import torch
from torch import nn
from training_common import PIXEL_OFFSET, PIXEL_SCALE, TrainingPlan, common_arguments, run

from prover.model.importers.torch_layers import MaskedConv2d, PixelNormalize, Subsample

NAME = "lenet5"
PLAN = TrainingPlan(epochs=20, batch_size=64, learning_rate=2e-3, weight_decay=0.0, max_shift=2)

# Table I of the paper: the S2 maps (rows of the table) each C3 map (column) takes input from.
C3_INPUTS = [
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
]  # fmt: skip


def c3_mask() -> torch.Tensor:
    """(16, 6) mask[c3_map][s2_map] = 1 where connected."""
    mask = torch.zeros(len(C3_INPUTS), 6, dtype=torch.uint8)
    for c3_map, s2_maps in enumerate(C3_INPUTS):
        mask[c3_map, list(s2_maps)] = 1
    return mask


def build_lenet5() -> nn.Sequential:
    return nn.Sequential(
        PixelNormalize(PIXEL_SCALE, PIXEL_OFFSET),
        nn.Conv2d(1, 6, 5, padding=2),  # C1: 6 @ 28x28
        nn.Tanh(),
        Subsample(6),  # S2: 6 @ 14x14
        nn.Tanh(),
        MaskedConv2d(c3_mask(), 5),  # C3: 16 @ 10x10
        nn.Tanh(),
        Subsample(16),  # S4: 16 @ 5x5
        nn.Tanh(),
        nn.Conv2d(16, 120, 5),  # C5: 120 @ 1x1
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(120, 84),  # F6
        nn.Tanh(),
        nn.Linear(84, 10),  # outputs (logits)
    )


def main() -> None:
    args = common_arguments(__doc__.splitlines()[0], NAME, PLAN).parse_args()
    run(args, NAME, build_lenet5, input_shape=(1, 28, 28), plan=PLAN)


if __name__ == "__main__":
    main()
