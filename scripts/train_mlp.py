"""Train the MNIST MLP 784-500-10 (ReLU) and write models/mlp_f32.ggml and models/mlp_int8.ggml,
with the log and the plots.

    .venv/bin/python scripts/train_mlp.py [--mnist-dir DIR] [--epochs N] [--seed S]
"""

from torch import nn
from training_common import PIXEL_OFFSET, PIXEL_SCALE, TrainingPlan, common_arguments, run

from prover.model.importers.torch_layers import PixelNormalize

NAME = "mlp"
PLAN = TrainingPlan(epochs=20, batch_size=128, learning_rate=1e-3, weight_decay=0.0, max_shift=2)


def build_mlp() -> nn.Sequential:
    return nn.Sequential(
        PixelNormalize(PIXEL_SCALE, PIXEL_OFFSET),
        nn.Linear(784, 500),
        nn.ReLU(),
        nn.Dropout(0.2),  # identity at inference: the importers skip it
        nn.Linear(500, 10),
    )


def main() -> None:
    args = common_arguments(__doc__.splitlines()[0], NAME, PLAN).parse_args()
    run(args, NAME, build_mlp, input_shape=(784,), plan=PLAN)


if __name__ == "__main__":
    main()
