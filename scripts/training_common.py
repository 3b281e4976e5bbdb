"""What the MNIST training scripts share: data loading, the seeded training loop, the log, and
the plots. Each train_*.py script only defines its network and its hyperparameters."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from matplotlib import pyplot
from torch import nn
from torch.nn import functional

from prover.model import engine
from prover.model.convention import InputConvention
from prover.model.data import load_mnist, mnist_dir
from prover.model.importers.torch_import import import_torch
from prover.model.modelfile import save_model
from prover.model.quantize import quantize

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAIN_THREADS = 2
# The models take dark digits on white, as the project's MNIST copy (../shared/data/mnist) draws
# them: background pixels are 255 and ink goes towards 0. They map a pixel x to x / 255 - 1, so the
# background is 0 (as a conv's zero padding) and ink is negative. A set of the other polarity
# (canonical MNIST) is inverted to this convention before training; the model files record it.
CONVENTION = InputConvention(width=28, height=28, minimum=0, maximum=255, background=255)
PIXEL_SCALE, PIXEL_OFFSET = 1 / 255, -1.0
BACKGROUND_PIXEL = float(CONVENTION.background)


@dataclass
class Mnist:
    """Images as (N, 784) uint8 raw pixels, labels as (N,) uint8."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @classmethod
    def load(cls, directory: Path) -> Mnist:
        """Both splits, each in CONVENTION (inverted if the set is the other polarity)."""
        splits = []
        for split in ("train", "t10k"):
            images, labels = load_mnist(directory, split)
            images, prepared = CONVENTION.bring(images, "auto", f"{directory} ({split})")
            if prepared.note:
                print(prepared.note, flush=True)
            splits += [images, labels]
        return cls(*splits)


@dataclass
class History:
    """Per-epoch mean loss and error rate (in %) on the training and test sets."""

    train_loss: list[float] = field(default_factory=list)
    train_error: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_error: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def epoch_line(self, index: int) -> str:
        return (
            f"epoch {index + 1:2d}/{len(self.train_loss)}: train loss {self.train_loss[index]:.4f} "
            f"error {self.train_error[index]:.2f} %, test loss {self.test_loss[index]:.4f} "
            f"error {self.test_error[index]:.2f} % ({self.seconds[index]:.1f} s)"
        )


@dataclass
class TrainingPlan:
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.0
    max_shift: int = 0  # training images are moved by up to this many pixels in x and y


def shifted(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each 28x28 image of the batch moved by its own random offset in [-max_shift, max_shift]
    along both axes; the uncovered border is background."""
    count = len(images)
    frame = functional.pad(images.reshape(count, 28, 28), (max_shift,) * 4, value=BACKGROUND_PIXEL)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, count), generator=generator)
    rows = offsets[0][:, None] + torch.arange(28)
    columns = offsets[1][:, None] + torch.arange(28)
    moved = frame[torch.arange(count)[:, None, None], rows[:, :, None], columns[:, None, :]]
    return moved.reshape(images.shape)


class Log:
    """Prints each line and appends it to the run's log file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        with self.path.open("a") as stream:
            stream.write(line + "\n")


def seed_everything(seed: int) -> torch.Generator:
    """Same seed, same weights: one thread count, deterministic kernels, one generator for the
    shuffling."""
    torch.set_num_threads(TRAIN_THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def as_pixels(images: np.ndarray, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Raw uint8 pixels as the float tensor the models take (normalization is inside them)."""
    return torch.from_numpy(images.astype(np.float32)).reshape(-1, *input_shape)


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and error rate (in %) of `model` on a whole set."""
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(batch) for batch in images.split(1000)])
    loss = functional.cross_entropy(logits, labels).item()
    error = (logits.argmax(dim=1) != labels).float().mean().item() * 100
    return loss, error


def train(
    model: nn.Module,
    data: Mnist,
    input_shape: tuple[int, ...],
    plan: TrainingPlan,
    generator: torch.Generator,
) -> History:
    """Adam with a cosine learning-rate decay to zero, softmax cross-entropy, optionally randomly
    shifted training images; evaluates the (unshifted) train and test sets after each epoch."""
    train_x = as_pixels(data.train_images, input_shape)
    train_y = torch.from_numpy(data.train_labels.astype(np.int64))
    test_x = as_pixels(data.test_images, input_shape)
    test_y = torch.from_numpy(data.test_labels.astype(np.int64))

    optimizer = torch.optim.Adam(model.parameters(), lr=plan.learning_rate, weight_decay=plan.weight_decay)
    steps_per_epoch = -(-len(train_x) // plan.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, plan.epochs * steps_per_epoch)
    history = History()
    for epoch in range(1, plan.epochs + 1):
        started = time.monotonic()
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        for batch in order.split(plan.batch_size):
            optimizer.zero_grad()
            images = train_x[batch]
            if plan.max_shift:
                images = shifted(images, plan.max_shift, generator)
            functional.cross_entropy(model(images), train_y[batch]).backward()
            optimizer.step()
            schedule.step()
        train_loss, train_error = evaluate(model, train_x, train_y)
        test_loss, test_error = evaluate(model, test_x, test_y)
        history.train_loss.append(train_loss)
        history.train_error.append(train_error)
        history.test_loss.append(test_loss)
        history.test_error.append(test_error)
        history.seconds.append(time.monotonic() - started)
        print(f"epoch {epoch}/{plan.epochs}: test error {test_error:.2f} %", flush=True)
    return history


def common_arguments(description: str, name: str, plan: TrainingPlan) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--mnist-dir", type=Path, default=mnist_dir(None))
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "models", help="model files, log, plots")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=REPO_ROOT / "models" / f"{name}.pt",
        help="where the torch state_dict and the history are saved (and read with --skip-training)",
    )
    parser.add_argument("--skip-training", action="store_true", help="reuse the saved checkpoint")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=plan.epochs)
    parser.add_argument("--calibration", type=int, default=1000, help="training images for int8 calibration")
    return parser


def run(
    args: argparse.Namespace,
    name: str,
    build_model: Callable[[], nn.Module],
    input_shape: tuple[int, ...],
    plan: TrainingPlan,
) -> None:
    """Train (or reload the checkpoint), write the f32 and int8 .ggml files, measure them with the
    reference engine, then write the log and the plots."""
    plan = replace(plan, epochs=args.epochs)
    log = Log(args.out_dir / f"{name}.log")
    generator = seed_everything(args.seed)
    model = build_model()
    data = Mnist.load(args.mnist_dir)
    if args.skip_training:
        checkpoint = torch.load(args.checkpoint)
        model.load_state_dict(checkpoint["state_dict"])
        history = History(**checkpoint["history"])
    else:
        history = train(model, data, input_shape, plan, generator)
        args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": model.state_dict(), "history": asdict(history)}, args.checkpoint)
    model.eval()
    log(f"{name}: seed {args.seed}, {plan}, torch {torch.__version__}, {TRAIN_THREADS} threads")
    log(f"model: {model}")
    for epoch in range(len(history.train_loss)):
        log(history.epoch_line(epoch))
    log(f"training time {sum(history.seconds):.0f} s; checkpoint {args.checkpoint.name}")

    test_x = as_pixels(data.test_images, input_shape)
    with torch.no_grad():
        probabilities = torch.cat([model(batch).softmax(dim=1) for batch in test_x.split(1000)]).numpy()
    predictions = probabilities.argmax(axis=1)
    accuracy = (predictions == data.test_labels).mean() * 100
    log(f"torch f32 test accuracy {accuracy:.2f} % ({len(predictions)} images)")
    write_model_files(args, name, model, input_shape, data, log)
    title, prefix = f"{name} (torch f32)", args.out_dir / name
    plot_curves(history, name, prefix.with_name(f"{name}_curves.png"))
    plot_confusion(data.test_labels, predictions, title, prefix.with_name(f"{name}_confusion.png"))
    plot_wrong_predictions(
        data.test_images, data.test_labels, probabilities, title, prefix.with_name(f"{name}_wrong.png")
    )


def write_model_files(
    args: argparse.Namespace,
    name: str,
    model: nn.Module,
    input_shape: tuple[int, ...],
    data: Mnist,
    log: Log,
) -> None:
    """<name>_f32.ggml through the PyTorch importer and <name>_int8.ggml quantized with the first
    `args.calibration` training images, each measured on the test set with the numpy engine."""
    f32 = import_torch(model, input_shape).to_graph({"name": name, "arch": name, **CONVENTION.metadata()})
    int8 = quantize(f32, data.train_images[: args.calibration])
    for mode, graph in (("f32", f32), ("int8", int8)):
        path = args.out_dir / f"{name}_{mode}.ggml"
        save_model(graph, path)
        predictions = np.concatenate(
            [engine.run(graph, batch).argmax(axis=1) for batch in np.array_split(data.test_images, 10)]
        )
        accuracy = (predictions == data.test_labels).mean() * 100
        log(f"{path.name}: numpy engine {mode} test accuracy {accuracy:.2f} %")


def plot_curves(history: History, title: str, path: Path) -> None:
    """Loss and error rate per epoch, training and test sets."""
    figure, (loss_axes, error_axes) = pyplot.subplots(1, 2, figsize=(8, 3), dpi=80)
    epochs = range(1, len(history.train_loss) + 1)
    loss_axes.plot(epochs, history.train_loss, label="train")
    loss_axes.plot(epochs, history.test_loss, label="test")
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title=f"{title}: loss")
    error_axes.plot(epochs, history.train_error, label="train")
    error_axes.plot(epochs, history.test_error, label="test")
    error_axes.set(xlabel="epoch", ylabel="error (%)", yscale="log", title=f"{title}: error rate")
    for axes in (loss_axes, error_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def plot_confusion(labels: np.ndarray, predictions: np.ndarray, title: str, path: Path) -> None:
    """Counts of (true class, predicted class) on the test set; the diagonal is shaded apart so the
    mistakes stay readable."""
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    mistakes = confusion * (1 - np.eye(10, dtype=np.int64))
    figure, axes = pyplot.subplots(figsize=(5, 4.5), dpi=80)
    axes.imshow(mistakes, cmap="Reds")
    for true_class in range(10):
        for predicted in range(10):
            count = confusion[true_class, predicted]
            if count:
                weight = "bold" if true_class == predicted else "normal"
                axes.text(predicted, true_class, count, ha="center", va="center", fontsize=7, weight=weight)
    axes.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true", title=title)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def plot_wrong_predictions(
    images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, title: str, path: Path, count: int = 8
) -> None:
    """The `count` most and the `count` least confident wrong predictions, with the predicted
    class, its probability, and the true class."""
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    by_confidence = wrong[np.argsort(-probabilities[wrong, predictions[wrong]], kind="stable")]
    rows = {"most confident": by_confidence[:count], "least confident": by_confidence[::-1][:count]}
    figure, grid = pyplot.subplots(2, count, figsize=(1.2 * count, 3.2), dpi=80, squeeze=False)
    for row, (row_name, indices) in zip(grid, rows.items(), strict=True):
        for column, axes in enumerate(row):
            axes.axis("off")
            if column < len(indices):
                index = indices[column]
                axes.imshow(images[index].reshape(28, 28), cmap="gray", vmin=0, vmax=255)
                confidence = probabilities[index, predictions[index]] * 100
                axes.set_title(f"{predictions[index]} {confidence:.0f}%\ntrue {labels[index]}", fontsize=8)
        row[0].text(-0.3, 0.5, row_name, transform=row[0].transAxes, rotation=90, ha="right", va="center")
    figure.suptitle(f"{title}: wrong predictions", fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
