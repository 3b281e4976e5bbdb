"""Small random-weight transformer modules (prover.model.importers.torch_transformer) shared by the
torch and ONNX importer tests. Importing this module imports torch: import it after
`pytest.importorskip("torch")`."""

import torch

from prover.model.importers.torch_transformer import CausalLM, VisionTransformer


def small_vit() -> VisionTransformer:
    """A hybrid ViT on 28x28 pixels: a 4-channel stem, 7x7 patches, 2 blocks of width 32."""
    torch.manual_seed(0)
    model = VisionTransformer((1, 28, 28), 7, 32, 2, 4, 64, 10, 1 / 255, -1.0, stem=(4,)).eval()
    with torch.no_grad():
        model.cls.normal_()
    return model


def small_lm() -> CausalLM:
    """A byte-level causal LM: context 16, 2 blocks of width 32."""
    torch.manual_seed(1)
    return CausalLM(256, 16, 32, 2, 4, 64).eval()
