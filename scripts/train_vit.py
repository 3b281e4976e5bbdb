"""Train a small vision transformer on MNIST and write models/vit_f32.ggml and models/vit_int8.ggml,
with the log and the plots.

    .venv/bin/python scripts/train_vit.py [--mnist-dir DIR] [--epochs N] [--seed S] [--skip-training]

Patches of 7x7 pixels (16 tokens) embedded by a stride-7 convolution, a class token, learned
positions, two pre-norm blocks (4 heads, width 64, GELU MLP of 128), a final LayerNorm and a linear
head on the class token. Sized for this shared 2-core machine (3 epochs: one epoch took about 10
minutes of wall time under a load average of 15).
"""

from training_common import PIXEL_OFFSET, PIXEL_SCALE, TrainingPlan, common_arguments, run

from prover.model.importers.torch_transformer import VisionTransformer

NAME = "vit"
PLAN = TrainingPlan(epochs=3, batch_size=128, learning_rate=2e-3, weight_decay=0.0, max_shift=1)


def build_vit() -> VisionTransformer:
    return VisionTransformer(
        (1, 28, 28), patch=7, dim=64, depth=2, heads=4, mlp_dim=128, classes=10,
        pixel_scale=PIXEL_SCALE, pixel_offset=PIXEL_OFFSET,
    )  # fmt: skip


def main() -> None:
    args = common_arguments(__doc__.splitlines()[0], NAME, PLAN).parse_args()
    run(args, NAME, build_vit, input_shape=(1, 28, 28), plan=PLAN)


if __name__ == "__main__":
    main()
