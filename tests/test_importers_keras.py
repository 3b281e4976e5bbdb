"""Keras 3 .keras files (written here by Keras itself, on its torch backend) through the Keras
importer compute what Keras computes, and what the importer cannot take is named."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytest.importorskip("h5py")

from click.testing import CliRunner  # noqa: E402

from prover.cli.main import cli  # noqa: E402
from prover.errors import ProverError  # noqa: E402
from prover.model.engine import run  # noqa: E402
from prover.model.importers.keras_import import import_keras  # noqa: E402
from prover.model.modelfile import load_model  # noqa: E402

layers = keras.layers
# Keras' torch backend converts tensors with np.array(x) without copy=; numpy 2 warns, harmlessly.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def saved(tmp_path, model, name: str = "model.keras"):
    path = tmp_path / name
    model.save(path)
    return path


def convnet(data_format: str = "channels_last") -> keras.Model:
    keras.utils.set_random_seed(5)
    shape = (12, 12, 1) if data_format == "channels_last" else (1, 12, 12)
    return keras.Sequential(
        [
            keras.Input(shape),
            layers.Rescaling(1 / 255, -0.5),
            layers.Conv2D(4, 3, padding="same", activation="tanh", data_format=data_format),
            layers.AveragePooling2D(2, data_format=data_format),
            layers.Conv2D(6, 3, strides=2, padding="same", data_format=data_format),
            layers.ReLU(),
            layers.Conv2D(6, 2, groups=2, data_format=data_format),
            layers.MaxPooling2D(2, strides=1, data_format=data_format),
            layers.Flatten(data_format=data_format),
            layers.Dropout(0.3),
            layers.Dense(7, activation="sigmoid"),
            layers.Dense(5),
            layers.Softmax(),
        ]
    )


def pixels(shape, count: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, *shape), dtype=np.uint8)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_convnet_computes_what_keras_computes(tmp_path, data_format):
    model = convnet(data_format)
    images = pixels(model.input_shape[1:])
    expected = np.asarray(model.predict(images.astype(np.float32), verbose=0))
    graph = import_keras(saved(tmp_path, model)).to_graph()
    ours = run(graph, images.reshape(len(images), -1))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-6)


def test_functional_mlp_with_activation_layers(tmp_path):
    keras.utils.set_random_seed(6)
    inputs = keras.Input((20,))
    x = layers.Dense(9, activation="relu")(inputs)
    x = layers.Activation("tanh")(x)
    outputs = layers.Dense(4, use_bias=False)(x)
    model = keras.Model(inputs, outputs)
    images = pixels((20,))
    expected = np.asarray(model.predict(images.astype(np.float32), verbose=0))
    imported = import_keras(saved(tmp_path, model))
    assert [layer.kind for layer in imported.layers] == ["linear", "relu", "tanh", "linear"]
    np.testing.assert_allclose(run(imported.to_graph(), images), expected, rtol=1e-6, atol=1e-4)


def test_convert_command(tmp_path):
    path = saved(tmp_path, convnet())
    result = CliRunner().invoke(cli, ["convert", "--from", "keras", str(path), str(tmp_path / "out.ggml")])
    assert result.exit_code == 0, result.output
    graph = load_model(tmp_path / "out.ggml")
    assert (graph.metadata["source"], graph.metadata["mode"]) == ("keras", "f32")


def branching() -> keras.Model:
    inputs = keras.Input((8,))
    a, b = layers.Dense(3)(inputs), layers.Dense(3)(inputs)
    return keras.Model(inputs, layers.Add()([a, b]))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: keras.Sequential([keras.Input((8,)), layers.Dense(3), layers.BatchNormalization()]),
            "BatchNorm",
        ),
        (lambda: keras.Sequential([keras.Input((8,)), layers.Dense(3, activation="elu")]), "'elu'"),
        (lambda: keras.Sequential([keras.Input((6, 6, 3)), layers.Flatten()]), "one-channel image"),
        (lambda: keras.Sequential([keras.Input((6, 6, 1)), layers.MaxPooling2D(2, padding="same")]), "valid"),
        (
            lambda: keras.Sequential([keras.Input((8,)), layers.Dense(3), layers.Rescaling(2.0)]),
            "before the first",
        ),
        (lambda: keras.Sequential([keras.Input((8,)), layers.ReLU(max_value=6)]), "plain ReLU"),
        (branching, "not a chain"),
    ],
)
def test_unsupported_models_are_named(tmp_path, build, message):
    path = saved(tmp_path, build())
    with pytest.raises(ProverError, match=message):
        import_keras(path)


def test_not_a_keras_file(tmp_path):
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ProverError, match=r"not a Keras 3 \.keras file"):
        import_keras(tmp_path / "junk.keras")
