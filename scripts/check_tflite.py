"""Bit-exactness against the real TFLite interpreter: each .tflite file is imported
(`prover convert --from tflite`) and its int8 logits (the input of the final softmax) are compared
byte for byte with LiteRT's reference kernels (BUILTIN_REF, the definition we match), image by
image over the MNIST test set: from the numpy engine on every image, from the guest in the VM on the
first --vm-limit images. Agreement of LiteRT's default kernels with its reference kernels, and the
accuracy of each, are printed beside.

    python scripts/check_tflite.py [--limit N] [--vm-limit M] [--mnist-dir DIR] [FILE.tflite ...]

Default files: models/tflite/*.tflite. Per file, the last line is
`N/N images: logits byte-identical to the LiteRT interpreter (FILE)` (or the count that are). Exits 1
on any difference from the reference kernels.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prover.model import engine  # noqa: E402
from prover.model.data import load_mnist, mnist_dir  # noqa: E402
from prover.model.graph import Graph  # noqa: E402
from prover.model.importers.tflite_import import import_tflite  # noqa: E402
from prover.model.litert import interpreter_logits  # noqa: E402
from prover.model.modelfile import write_model  # noqa: E402
from prover.task.golden import GoldenTemplate  # noqa: E402
from prover.task.run import MAX_STEPS, output_payload  # noqa: E402

CHUNK = 500  # images per engine call


def vm_logits(graph: Graph, images: np.ndarray) -> np.ndarray:
    """The guest's output tensor for each image, run to its exit in the VM (fast executor)."""
    template = GoldenTemplate(write_model(graph))
    rows = []
    for image in tqdm(images, desc="VM", unit="image", mininterval=10):
        golden = template.image(image.astype(np.uint8).tobytes())
        golden.machine.run(MAX_STEPS)
        if golden.machine.state.exit_code != 0:
            raise SystemExit(f"the guest exited with {golden.machine.state.exit_code}")
        rows.append(np.frombuffer(output_payload(golden.machine)[4:], np.int8).astype(np.int64))
    return np.array(rows)


def matching(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per image: whether the two rows of logits are equal."""
    return np.all(a == b, axis=1)


def check(path: Path, images: np.ndarray, labels: np.ndarray, vm_limit: int) -> bool:
    graph = import_tflite(path)
    count = len(images)
    start = time.perf_counter()
    reference = interpreter_logits(path, graph, images)
    default = interpreter_logits(path, graph, images, reference=False)
    interpreted = time.perf_counter() - start
    # in chunks: a convolution's windows of 10,000 images at once would take gigabytes
    ours = np.concatenate([engine.run(graph, images[i : i + CHUNK]) for i in range(0, count, CHUNK)])
    ours = ours.astype(np.int64)

    def accuracy(logits: np.ndarray) -> str:
        return f"{np.mean(logits.argmax(axis=1) == labels[: len(logits)]) * 100:.2f} %"

    print(
        f"{path}: {len(graph.nodes)} nodes; accuracy: reference kernels {accuracy(reference)}, "
        f"default kernels {accuracy(default)}, numpy engine {accuracy(ours)} ({count} images)"
    )
    print(
        f"  default kernels = reference kernels on {matching(default, reference).sum()}/{count} images "
        f"(largest difference {int(np.abs(default - reference).max())} LSB); interpreter {interpreted:.1f} s"
    )
    same = matching(ours, reference)
    print(
        f"  numpy engine: {same.sum()}/{count} images byte-identical to the reference kernels "
        f"({matching(ours, default).sum()}/{count} to the default kernels)"
    )
    if vm_limit:
        start = time.perf_counter()
        guest = vm_logits(graph, images[:vm_limit])
        in_vm = matching(guest, reference[:vm_limit])
        print(
            f"  VM (first {vm_limit} images): {in_vm.sum()}/{vm_limit} byte-identical to the reference "
            f"kernels ({time.perf_counter() - start:.1f} s)"
        )
        same[:vm_limit] &= in_vm
    print(
        f"{same.sum()}/{count} images: logits byte-identical to the LiteRT interpreter ({path})", flush=True
    )
    return bool(same.all())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--limit", type=int, default=10_000, help="MNIST test images (default all)")
    parser.add_argument("--vm-limit", type=int, default=0, help="images also run in the VM (default 0)")
    parser.add_argument("--mnist-dir", type=Path)
    args = parser.parse_args()
    files = args.files or sorted((ROOT / "models" / "tflite").glob("*.tflite"))
    images, labels = load_mnist(mnist_dir(args.mnist_dir), "t10k")
    images, labels = images[: args.limit], labels[: args.limit]
    results = [check(path, images, labels, min(args.vm_limit, len(images))) for path in files]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
