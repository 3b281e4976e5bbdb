"""Bit-exactness over the MNIST test set: the guest in the VM against the numpy reference engine
(prover/model/engine.py) and against the same C sources built for the host.

    python scripts/check_bitexact.py --model models/mlp_int8.ggml [--count 10000] [--start 0]
        [--jobs 1] [--progress FILE] [--no-native]

For each image: a golden image (the program and model laid out once, prover.task.golden.GoldenTemplate;
each image a fresh machine checked against its own S0), a full run with the fast executor from that
initial state to the exit, and the output region (u32 class + every logit) compared byte for byte
with the engine's output for the image and, unless --no-native, with the native build's. The
progress file (JSON, rewritten after every chunk of images) holds the figures so far, so an
interrupted check still says exactly how many images were checked. Exits 1 on any mismatch.
MNIST comes from $MNIST_DIR (default ../shared/data/mnist, else data/mnist), either polarity.
"""

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prover.model import engine  # noqa: E402
from prover.model.data import load_mnist, mnist_dir, prepare_set  # noqa: E402
from prover.model.modelfile import read_model  # noqa: E402
from prover.task.golden import GoldenTemplate  # noqa: E402
from prover.task.guest.native import NativeGuest, build_library  # noqa: E402
from prover.task.run import MAX_STEPS, output_payload  # noqa: E402

CHUNK = 100  # images per unit of work and per progress update


def expected_payloads(model: bytes, images: np.ndarray) -> tuple[list[bytes], list[bytes]]:
    """(the guest's input payload, the engine's output payload) per image: the payload is the
    output region's content, u32 class (first index of the maximum) then the output tensor
    big-endian in its dtype."""
    graph = read_model(model)
    inputs = graph.tensors[graph.input].dtype.numpy.newbyteorder(">")
    output = graph.tensors[graph.output].dtype.numpy.newbyteorder(">")
    logits = engine.run(graph, images)
    payloads = [int(np.argmax(row)).to_bytes(4, "big") + row.astype(output).tobytes() for row in logits]
    return [image.astype(inputs).tobytes() for image in images], payloads


@dataclass
class ChunkResult:
    first: int
    count: int
    engine_mismatches: list[int] = field(default_factory=list)
    native_mismatches: list[int] = field(default_factory=list)
    failed_exits: list[int] = field(default_factory=list)
    correct: int = 0  # predicted class == MNIST label
    steps: list[int] = field(default_factory=list)


def check_chunk(job: tuple[Path, Path | None, int, np.ndarray, np.ndarray]) -> ChunkResult:
    model_path, library, first, images, labels = job
    model = model_path.read_bytes()
    template = GoldenTemplate(model)
    native = NativeGuest(library) if library is not None else None
    data, expected = expected_payloads(model, images)
    result = ChunkResult(first, len(images))
    for offset, (payload, want, label) in enumerate(zip(data, expected, labels, strict=True)):
        image = template.image(payload)
        result.steps.append(image.machine.run(MAX_STEPS))
        machine = image.machine
        output = output_payload(machine)
        index = first + offset
        if machine.state.exit_code != 0:
            result.failed_exits.append(index)
        if machine.state.exit_code != 0 or output != want:
            result.engine_mismatches.append(index)
        if native is not None:
            theirs = native.run(model, payload)
            if (machine.state.exit_code, output) != (theirs.exit_code, theirs.output):
                result.native_mismatches.append(index)
        result.correct += int(int.from_bytes(output[:4], "big") == int(label))
    return result


def chunks(args: argparse.Namespace, library: Path | None) -> Iterator[tuple]:
    directory = mnist_dir(None)
    images, labels = load_mnist(directory, "t10k")
    # in the model's input convention, as `prover eval` and `prover golden` bring them
    images, _ = prepare_set(images, read_model(args.model.read_bytes()), "auto", str(directory))
    end = min(len(images), args.start + args.count)
    for first in range(args.start, end, CHUNK):
        last = min(end, first + CHUNK)
        yield args.model, library, first, images[first:last], labels[first:last]


def write_progress(path: Path, report: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=2) + "\n")
    temporary.replace(path)  # atomic: a reader never sees half a file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--start", type=int, default=0, help="first test image index")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--progress", type=Path, help="JSON progress file (default bitexact-<model>.json)")
    parser.add_argument("--no-native", action="store_true", help="compare with the engine only")
    args = parser.parse_args()
    progress = args.progress or Path(f"bitexact-{args.model.stem}.json")
    report: dict = {
        "model": str(args.model),
        "command": "python " + shlex.join(sys.argv),
        "first_image": args.start,
        "images_checked": 0,
        "engine_mismatches": [],
        "native_compared": not args.no_native,
        "native_mismatches": [],
        "failed_exits": [],
        "correct": 0,
        "steps_min": None,
        "steps_max": None,
        "steps_mean": None,
        "elapsed_s": 0.0,
        "complete": False,
    }
    total_steps = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        library = None if args.no_native else build_library(Path(directory))
        jobs = chunks(args, library)
        with ProcessPoolExecutor(args.jobs) if args.jobs > 1 else _InProcess() as pool:
            for result in pool.map(check_chunk, jobs):
                report["images_checked"] += result.count
                report["engine_mismatches"] += result.engine_mismatches
                report["native_mismatches"] += result.native_mismatches
                report["failed_exits"] += result.failed_exits
                report["correct"] += result.correct
                total_steps += sum(result.steps)
                lows = [x for x in (report["steps_min"], min(result.steps)) if x is not None]
                highs = [x for x in (report["steps_max"], max(result.steps)) if x is not None]
                report["steps_min"], report["steps_max"] = min(lows), max(highs)
                report["steps_mean"] = round(total_steps / report["images_checked"])
                report["elapsed_s"] = round(time.perf_counter() - start, 1)
                write_progress(progress, report)
                print(
                    f"{report['images_checked']} images, {len(report['engine_mismatches'])} engine / "
                    f"{len(report['native_mismatches'])} native mismatches, {report['elapsed_s']} s",
                    flush=True,
                )
    report["complete"] = True
    write_progress(progress, report)
    checked = report["images_checked"]
    mismatches = report["engine_mismatches"] + report["native_mismatches"]
    native = "not compared" if args.no_native else f"{len(report['native_mismatches'])} mismatches"
    print(
        f"{args.model}: {checked} images, {len(report['engine_mismatches'])} mismatches with the engine "
        f"{report['engine_mismatches'][:20]}; native build: {native}"
    )
    elapsed, per_image = report["elapsed_s"], report["elapsed_s"] / max(checked, 1)
    low, high = report["steps_min"], report["steps_max"]
    print(
        f"{report['steps_mean']:,} steps per image (min {low:,}, max {high:,}), {elapsed:.1f} s "
        f"({per_image:.2f} s/image), accuracy {report['correct'] / max(checked, 1):.4f}"
    )
    sys.exit(1 if mismatches else 0)


class _InProcess:
    """ProcessPoolExecutor's `map` in this process (--jobs 1: no worker, results as they come)."""

    def __enter__(self) -> "_InProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, function: Callable[[tuple], ChunkResult], jobs: Iterable[tuple]) -> Iterator[ChunkResult]:
        return map(function, jobs)


if __name__ == "__main__":
    main()
