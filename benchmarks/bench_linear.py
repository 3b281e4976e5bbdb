"""The int8 LINEAR's dot products: the native kernel (prover/model/linear.c) against the exact
numpy path it replaced (`blas_linear`), on the matrix shapes of the LLaMA models of
scripts/make_llama.py, for one position (a decode step) and for a prompt of 26:

    .venv/bin/python benchmarks/bench_linear.py [--repeat 5]

Prints milliseconds per product, G multiply-adds per second, the speed-up, and the load average
(the machine is shared: run under `nice`, the figures depend on the load). The two results are
compared too: they must be equal.
"""

import argparse
import os
import time

import numpy as np

from prover.model.engine import blas_linear
from prover.model.linear import THREADS, native_linear

SHAPES = {  # (OUT, IN) of the LLaMA models' matrices
    "125m q/o": (768, 768),
    "125m ffn": (2048, 768),
    "1b ffn": (5632, 2048),
    "1b ffn down": (2048, 5632),
}


def seconds(run: object, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        run()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"threads {THREADS}; load average {os.getloadavg()[0]:.2f}")
    for name, (out, inputs) in SHAPES.items():
        w = rng.integers(-127, 128, (out, inputs), dtype=np.int8)
        for rows in (1, 26):
            x = rng.integers(-128, 128, (rows, inputs)).astype(np.int64)
            native, numpy = native_linear(x, w, 0), blas_linear(x, w, 0)
            assert native is not None and np.array_equal(native, numpy)
            fast = seconds(lambda x=x, w=w: native_linear(x, w, 0), args.repeat)
            slow = seconds(lambda x=x, w=w: blas_linear(x, w, 0), 1)
            macs = rows * out * inputs
            print(
                f"{name:12} {out:5} x {inputs:5}, {rows:2} rows: native {fast * 1e3:7.1f} ms "
                f"({macs / fast / 1e9:5.2f} G MAC/s), numpy {slow * 1e3:7.1f} ms, {slow / fast:5.1f}x"
            )
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
