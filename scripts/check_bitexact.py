"""Bit-exactness over the MNIST test set: the guest in the VM against the same C sources built for
the host (and so, through tests/test_guest_*.py, against the spec).

    python scripts/check_bitexact.py --model models/mlp_int8.ggml [--count 10000] [--jobs 2]

For each image: a golden image, a run with the fast executor to the exit, and the output region
(class + every logit) compared byte for byte with the native build's. Prints the mismatches (none
expected) and the throughput. MNIST comes from $MNIST_DIR (default ../shared/data/mnist).
"""

import argparse
import gzip
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prover.golden import OUTPUT_BASE, REGION_HEADER, build_golden  # noqa: E402
from prover.guest.native import NativeGuest, build_library  # noqa: E402
from vm.fast import FastExecutor  # noqa: E402


def mnist_test_images(count: int) -> list[bytes]:
    directory = Path(os.environ.get("MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))
    with gzip.open(directory / "t10k-images-idx3-ubyte.gz") as file:
        data = file.read()
    return [data[16 + 784 * i : 16 + 784 * (i + 1)] for i in range(min(count, (len(data) - 16) // 784))]


def vm_output(model: bytes, image: bytes) -> tuple[int, bytes, int]:
    machine = build_golden(model, image).machine
    steps = FastExecutor(machine).run(None)
    length = machine.memory.read_word(OUTPUT_BASE)
    return machine.state.exit_code, machine.memory.read(OUTPUT_BASE + REGION_HEADER, length), steps


def check_chunk(job: tuple[Path, Path, int, list[bytes]]) -> tuple[list[int], int]:
    """(indices whose VM output differs from the native one, total VM steps) for one chunk."""
    model_path, library, first, chunk = job
    model = model_path.read_bytes()
    native = NativeGuest(library)
    mismatches, steps = [], 0
    for offset, image in enumerate(chunk):
        expected = native.run(model, image)
        code, output, count = vm_output(model, image)
        steps += count
        if (code, output) != (expected.exit_code, expected.output):
            mismatches.append(first + offset)
    return mismatches, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    images = mnist_test_images(args.count)
    with tempfile.TemporaryDirectory() as directory:
        library = build_library(Path(directory))
        size = -(-len(images) // (args.jobs * 8))
        jobs = [(args.model, library, i, images[i : i + size]) for i in range(0, len(images), size)]
        start = time.perf_counter()
        mismatches, steps = [], 0
        with ProcessPoolExecutor(args.jobs) as pool:
            for chunk_mismatches, chunk_steps in pool.map(check_chunk, jobs):
                mismatches += chunk_mismatches
                steps += chunk_steps
        elapsed = time.perf_counter() - start
    print(f"{args.model}: {len(images)} images, {len(mismatches)} mismatches {mismatches[:20]}")
    rate = steps / elapsed / 1e6
    print(f"{steps / len(images):,.0f} steps per image, {elapsed:.1f} s ({rate:.2f} M steps/s)")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
