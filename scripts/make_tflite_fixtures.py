"""Build the committed .tflite fixtures with TensorFlow's TFLiteConverter: full-integer post-training
quantization calibrated on MNIST training images, as a TensorFlow user would. The project's MNIST copy
is dark ink on white: the models take pixel / 255 - 1 (background 0), as the project's other models
and `prover convert --from tflite` by default.

    pip install 'opml-prover[tflite-fixtures]'      # TensorFlow: only this script needs it
    python scripts/make_tflite_fixtures.py [--mnist-dir DIR] [--out models/tflite] [--epochs N]

Writes into --out:
    mlp_int8.tflite       the classic question's model: Dense 512, ReLU, Dense 100, ReLU, Dense 10,
                          softmax; int8 (per-channel weights), int8 input and output
    mlp_int8_u8io.tflite  the same trained model, uint8 input and output (TF2's "uint8": int8 inside)
    mlp_uint8.tflite      the same trained model in TFLite's legacy uint8 scheme (uint8 per-tensor
                          asymmetric weights and activations; TF1 converter, calibrated FakeQuant ranges)
    cnn_int8.tflite       a small CNN: Conv2D (same, ReLU), DepthwiseConv2D (ReLU6), MaxPool, Conv2D
                          (stride 2), AveragePool, Flatten, ReLU, Dense 10, softmax
    act_int8_f32io.tflite Dense 64 tanh, Dense 32 sigmoid, Dense 10, softmax (LOGISTIC / TANH tables);
                          float input and output (QUANTIZE / DEQUANTIZE at the edges)
    errors/*.tflite       tiny files the importer refuses (float, hybrid, float16, unsupported operator)
    fixtures.log          each model's float (Keras) test accuracy
Tests need only these files and the interpreter (ai-edge-litert), never TensorFlow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tensorflow as tf

from prover.model.data import load_mnist, mnist_dir
from prover.model.importers.tflite_import import PIXEL_OFFSET, PIXEL_SCALE

CALIBRATION_IMAGES = 1000


def dense_chain(*layers: tuple[int, str]) -> tf.keras.Model:
    """784 inputs, then Dense layers of (units, activation)."""
    dense = [tf.keras.layers.Dense(units, activation=activation) for units, activation in layers]
    return tf.keras.Sequential([tf.keras.layers.Input((784,)), *dense])


def mlp() -> tf.keras.Model:
    return dense_chain((512, "relu"), (100, "relu"), (10, "softmax"))


def cnn() -> tf.keras.Model:
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            layers.Input((28, 28, 1)),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.DepthwiseConv2D(3, activation=tf.nn.relu6),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 3, strides=2, padding="same"),
            layers.AveragePooling2D(2),
            layers.Flatten(),
            layers.ReLU(),
            layers.Dense(10, activation="softmax"),
        ]
    )


def activations_mlp() -> tf.keras.Model:
    return dense_chain((64, "tanh"), (32, "sigmoid"), (10, "softmax"))


def train(model: tf.keras.Model, images: np.ndarray, labels: np.ndarray, epochs: int) -> None:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, batch_size=128, epochs=epochs, verbose=2)


def convert(model: tf.keras.Model, calibration: np.ndarray, io_type: tf.DType) -> bytes:
    """Full-integer post-training quantization (TF2): int8 weights (per channel) and activations,
    ranges calibrated on `calibration`; inputs and outputs of `io_type` (float32: QUANTIZE and
    DEQUANTIZE at the edges)."""

    def representative() -> object:
        for image in calibration:
            yield [image[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    return converter.convert()


def convert_uint8(model: tf.keras.Model, calibration: np.ndarray) -> bytes:
    """TFLite's legacy uint8 quantization (per-tensor asymmetric uint8 weights and activations),
    which TF2's converter no longer produces from a float model: the Dense chain is rebuilt as a
    TF1 graph whose FakeQuant ranges are the min / max of each weight matrix and of each layer's
    output over `calibration`, then converted with inference_type uint8."""
    tf1 = tf.compat.v1
    dense = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Dense)]
    parameters = [[v.numpy() for v in layer.weights] for layer in dense]
    ranges, x = [], calibration
    for layer, (kernel, bias) in zip(dense, parameters, strict=True):
        logits = x @ kernel + bias
        x = layer.activation(logits).numpy()
        # a softmax's FakeQuant range is its input's (the logits), a ReLU's its output's
        y = logits if layer.activation is tf.keras.activations.softmax else x
        ranges.append((min(float(y.min()), 0.0), max(float(y.max()), 0.0)))
    graph = tf1.Graph()
    with graph.as_default():
        pixels = tf1.placeholder(tf.float32, (1, calibration.shape[1]), name="input")
        y = tf.quantization.fake_quant_with_min_max_args(
            pixels, PIXEL_OFFSET, PIXEL_OFFSET + 255 * PIXEL_SCALE
        )
        for layer, (low, high), (kernel, bias) in zip(dense, ranges, parameters, strict=True):
            weights = tf.quantization.fake_quant_with_min_max_args(
                tf.constant(kernel), min(float(kernel.min()), 0.0), max(float(kernel.max()), 0.0)
            )
            y = tf.matmul(y, weights) + tf.constant(bias)
            if layer.activation is tf.keras.activations.relu:
                y = tf.nn.relu(y)
            elif layer.activation is tf.keras.activations.softmax:
                y = tf.quantization.fake_quant_with_min_max_args(y, low, high)
                y = tf.nn.softmax(y)
                low, high = 0.0, 255 / 256
            y = tf.quantization.fake_quant_with_min_max_args(y, low, high)
        with tf1.Session(graph=graph) as session:
            converter = tf1.lite.TFLiteConverter.from_session(session, [pixels], [y])
            converter.inference_type = tf.uint8
            # real = (q - mean) / std: q 0..255 is pixel / 255 - 1
            converter.quantized_input_stats = {"input": (255.0, 255.0)}
            return converter.convert()


def error_fixtures(directory: Path) -> list[Path]:
    """Tiny files the importer must refuse with one line naming the operator and the tensor: a float
    model, a hybrid one (dynamic-range: int8 weights, float activations), a float16 one and a
    full-integer one with an operator we do not map (LEAKY_RELU)."""
    layers = tf.keras.layers
    rng = np.random.default_rng(0)
    calibration = rng.uniform(-1, 0, (50, 64)).astype(np.float32)

    def model(*extra: layers.Layer) -> tf.keras.Model:
        # 2,048 weights: dynamic-range quantization leaves smaller tensors in float
        return tf.keras.Sequential([layers.Input((64,)), layers.Dense(32), *extra])

    def converted(keras_model: tf.keras.Model, setup) -> bytes:
        converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
        setup(converter)
        return converter.convert()

    def hybrid(converter) -> None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def float16(converter) -> None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]

    def full_integer(converter) -> None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([row[None]] for row in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8

    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "float": converted(model(), lambda converter: None),
        "hybrid": converted(model(), hybrid),
        "float16": converted(model(), float16),
        "unsupported_op": converted(model(layers.LeakyReLU()), full_integer),
    }
    for name, data in files.items():
        (directory / f"{name}.tflite").write_bytes(data)
    return [directory / f"{name}.tflite" for name in files]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("models/tflite"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tf.keras.utils.set_random_seed(args.seed)
    directory = mnist_dir(args.mnist_dir)
    train_images, train_labels = load_mnist(directory, "train")
    test_images, test_labels = load_mnist(directory, "t10k")
    train_x = train_images * np.float32(PIXEL_SCALE) + np.float32(PIXEL_OFFSET)
    test_x = test_images * np.float32(PIXEL_SCALE) + np.float32(PIXEL_OFFSET)
    args.out.mkdir(parents=True, exist_ok=True)
    log = []
    builds = [
        ("mlp", mlp, (784,), {"int8": tf.int8, "int8_u8io": tf.uint8, "uint8": None}),
        ("cnn", cnn, (28, 28, 1), {"int8": tf.int8}),
        ("act", activations_mlp, (784,), {"int8_f32io": tf.float32}),
    ]
    for name, build, shape, variants in builds:
        model = build()
        train(model, train_x.reshape(-1, *shape), train_labels, args.epochs)
        predictions = model.predict(test_x.reshape(-1, *shape), verbose=0).argmax(axis=1)
        accuracy = float(np.mean(predictions == test_labels) * 100)
        log.append(f"{name}: float (Keras) test accuracy {accuracy:.2f} %")
        calibration = train_x[:CALIBRATION_IMAGES].reshape(-1, *shape)
        for suffix, io_type in variants.items():
            path = args.out / f"{name}_{suffix}.tflite"
            data = (
                convert_uint8(model, calibration) if io_type is None else convert(model, calibration, io_type)
            )
            path.write_bytes(data)
            log.append(f"wrote {path} ({path.stat().st_size} bytes)")
    for path in error_fixtures(args.out / "errors"):
        log.append(f"wrote {path} ({path.stat().st_size} bytes)")
    text = "\n".join(log) + "\n"
    (args.out / "fixtures.log").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
