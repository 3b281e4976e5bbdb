"""Build the committed .tflite fixtures with TensorFlow's TFLiteConverter: full-integer post-training
quantization calibrated on MNIST training images, as a TensorFlow user would. The project's MNIST copy
is dark ink on white: the models take pixel / 255 - 1 (background 0), as the project's other models
and `prover convert --from tflite` by default.

    pip install 'opml-prover[tflite-fixtures]'      # TensorFlow: only this script needs it
    python scripts/make_tflite_fixtures.py [--mnist-dir DIR] [--out models/tflite] [--epochs N]

Writes into --out:
    mlp_int8.tflite    the classic question's model: Dense 512, ReLU, Dense 100, ReLU, Dense 10, softmax;
                       int8 input and output
    mlp_uint8.tflite   the same trained model, uint8 input and output (int8 inside)
    cnn_int8.tflite    a small CNN: Conv2D (same, ReLU), DepthwiseConv2D (ReLU6), MaxPool, Conv2D
                       (stride 2), AveragePool, ReLU, Flatten, Dense 10, softmax
    act_int8.tflite    Dense 64 tanh, Dense 32 sigmoid, Dense 10, softmax (LOGISTIC / TANH tables)
    fixtures.log       each model's float (Keras) test accuracy
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


def mlp() -> tf.keras.Model:
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            layers.Input((784,)),
            layers.Dense(512, activation="relu"),
            layers.Dense(100, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )


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
            layers.ReLU(),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ]
    )


def activations_mlp() -> tf.keras.Model:
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            layers.Input((784,)),
            layers.Dense(64, activation="tanh"),
            layers.Dense(32, activation="sigmoid"),
            layers.Dense(10, activation="softmax"),
        ]
    )


def train(model: tf.keras.Model, images: np.ndarray, labels: np.ndarray, epochs: int) -> None:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, batch_size=128, epochs=epochs, verbose=2)


def convert(model: tf.keras.Model, calibration: np.ndarray, io_type: tf.DType) -> bytes:
    """Full-integer post-training quantization: int8 weights (per channel for convolutions) and
    activations, ranges calibrated on `calibration`; inputs and outputs of `io_type`."""

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
        ("mlp", mlp, (784,), [("int8", tf.int8), ("uint8", tf.uint8)]),
        ("cnn", cnn, (28, 28, 1), [("int8", tf.int8)]),
        ("act", activations_mlp, (784,), [("int8", tf.int8)]),
    ]
    for name, build, shape, variants in builds:
        model = build()
        train(model, train_x.reshape(-1, *shape), train_labels, args.epochs)
        predictions = model.predict(test_x.reshape(-1, *shape), verbose=0).argmax(axis=1)
        accuracy = float(np.mean(predictions == test_labels) * 100)
        log.append(f"{name}: float (Keras) test accuracy {accuracy:.2f} %")
        calibration = train_x[:CALIBRATION_IMAGES].reshape(-1, *shape)
        for suffix, io_type in variants:
            path = args.out / f"{name}_{suffix}.tflite"
            path.write_bytes(convert(model, calibration, io_type))
            log.append(f"wrote {path} ({path.stat().st_size} bytes)")
    text = "\n".join(log) + "\n"
    (args.out / "fixtures.log").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
