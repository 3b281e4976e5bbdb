"""The same network through the PyTorch importer and through a torch.onnx export + the ONNX
importer gives the same layers."""

import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
from torch import nn  # noqa: E402

from prover.errors import ProverError  # noqa: E402
from prover.model.importers.onnx_import import import_onnx  # noqa: E402
from prover.model.importers.torch_import import import_torch  # noqa: E402
from prover.model.importers.torch_layers import MaskedConv2d, PixelNormalize, Subsample  # noqa: E402


def lenet_like() -> nn.Module:
    mask = torch.tensor([[1, 0], [1, 1], [0, 1]], dtype=torch.uint8)
    return nn.Sequential(
        PixelNormalize(1 / 255, -1.0),
        nn.Conv2d(1, 2, 3, padding=1),
        nn.Tanh(),
        Subsample(2),
        nn.Sigmoid(),
        MaskedConv2d(mask, 3, stride=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Sequential(nn.AvgPool2d(1), nn.Flatten()),
        nn.Dropout(0.5),
        nn.Linear(3, 4),
        nn.Softmax(dim=1),
    )


def mlp() -> nn.Module:
    return nn.Sequential(PixelNormalize(0.01, 0.5), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def through_onnx(module: nn.Module, input_shape: tuple[int, ...]):
    module.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, *input_shape),), buffer, dynamo=False, opset_version=13)
    return import_onnx(buffer.getvalue())


@pytest.mark.parametrize(("build", "input_shape"), [(lenet_like, (1, 10, 10)), (mlp, (16,))])
def test_torch_and_onnx_paths_give_the_same_layers(build, input_shape):
    torch.manual_seed(3)
    module = build()
    direct = import_torch(module, input_shape)
    exported = through_onnx(module, input_shape)
    assert (direct.input_shape, direct.input_scale, direct.input_offset) == (
        exported.input_shape,
        exported.input_scale,
        exported.input_offset,
    )
    assert [layer.kind for layer in direct.layers] == [layer.kind for layer in exported.layers]
    for ours, theirs in zip(direct.layers, exported.layers, strict=True):
        assert ours.same_as(theirs, tolerance=1e-6), ours.kind


def test_masked_conv_weights_are_zeroed_where_unconnected():
    torch.manual_seed(3)
    conv = next(layer for layer in import_torch(lenet_like(), (1, 10, 10)).layers if "mask" in layer.arrays)
    unconnected = conv.arrays["mask"] == 0
    assert unconnected.any()
    assert not conv.arrays["weight"][unconnected].any()


def test_state_dict_fills_the_module():
    torch.manual_seed(1)
    trained = mlp()
    imported = import_torch(mlp(), (16,), state_dict=trained.state_dict())
    np.testing.assert_array_equal(imported.layers[0].arrays["weight"], trained[1].weight.detach().numpy())


def test_state_dict_that_does_not_fit_is_a_prover_error():
    with pytest.raises(ProverError, match="does not fit"):
        import_torch(mlp(), (16,), state_dict={"1.weight": torch.zeros(2, 2)})


def test_unsupported_layer_is_named():
    with pytest.raises(ProverError, match="layer 1: LSTM is not supported"):
        import_torch(nn.Sequential(nn.Flatten(), nn.LSTM(4, 4)), (4,))
