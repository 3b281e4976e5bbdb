"""A model's accuracy on the MNIST test set with the numpy reference engine (`prover eval`)."""

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from prover.errors import ProverError
from prover.model.data import load_mnist, prepare_set
from prover.model.engine import run
from prover.model.modelfile import load_model

EVAL_BATCH = 1000


def evaluate(
    model_path: Path, directory: Path, limit: int | None, background: str = "auto"
) -> dict[str, object]:
    """Accuracy, counts, seconds, mode and the set's preparation of the model at `model_path` on
    the test images in `directory` (the first `limit` of them), brought to the model's input
    convention as a whole (`background`: "auto", "light" or "dark", as prepare_set)."""
    graph = load_model(model_path)
    images, labels = load_mnist(directory, "t10k")
    images, labels = images[:limit], labels[:limit]
    if images.shape[1] != graph.tensors[graph.input].count:
        raise ProverError(
            f"{model_path}: the model input {graph.tensors[graph.input].dims} is not a 28x28 image"
        )
    images, preparation = prepare_set(images, graph, background, f"{directory} (t10k)")
    start = time.perf_counter()
    predictions = []
    for first in tqdm(range(0, len(images), EVAL_BATCH), desc="eval", unit="batch", leave=False):
        predictions.append(run(graph, images[first : first + EVAL_BATCH]).argmax(axis=1))
    correct = int((np.concatenate(predictions) == labels).sum())
    return {
        "accuracy": round(100 * correct / len(labels), 4),
        "correct": correct,
        "total": len(labels),
        "seconds": round(time.perf_counter() - start, 3),
        "mode": graph.metadata.get("mode"),
        "input": preparation.to_json() if preparation else None,
    }
