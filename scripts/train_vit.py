"""Train a small vision transformer on MNIST and write models/vit_f32.ggml and models/vit_int8.ggml,
with the log and the plots.

    .venv/bin/python scripts/train_vit.py [--mnist-dir DIR] [--epochs N] [--seed S] [--skip-training]

A hybrid ViT (Dosovitskiy et al., section 3.1): a convolutional stem (16 channels of 5x5, ReLU,
2x2 max pool: 14x14x16), patches of 3x3 stem positions (16 tokens) embedded by a stride-3
convolution, a class token, learned positions, two pre-norm blocks (4 heads, width 64, GELU MLP of
128), a final LayerNorm and a linear head on the class token. Sized for this shared 2-core machine:
3 epochs. The plain ViT (7x7 pixel patches, no stem) reached 97.80 % (torch f32) in 3 epochs
(2,459 s at a load average of 9), short of the 98.3 % target; the stem is what closes the gap.
"""

from training_common import PIXEL_OFFSET, PIXEL_SCALE, TrainingPlan, common_arguments, run

from prover.model.importers.torch_transformer import VisionTransformer

NAME = "vit"
PLAN = TrainingPlan(epochs=3, batch_size=128, learning_rate=2e-3, weight_decay=0.0, max_shift=1)


def build_vit() -> VisionTransformer:
    return VisionTransformer(
        (1, 28, 28), patch=3, dim=64, depth=2, heads=4, mlp_dim=128, classes=10,
        pixel_scale=PIXEL_SCALE, pixel_offset=PIXEL_OFFSET, stem=(16,),
    )  # fmt: skip


def main() -> None:
    args = common_arguments(__doc__.splitlines()[0], NAME, PLAN).parse_args()
    run(args, NAME, build_vit, input_shape=(1, 28, 28), plan=PLAN)


if __name__ == "__main__":
    main()
