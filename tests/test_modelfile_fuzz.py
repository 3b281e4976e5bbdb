"""Fuzzing the .ggml reader: mutated valid files end in a Graph or a ModelFormatError, never in
another exception or a hang. Mutants the reader accepts also run through the engine, where only a
ProverError may come out (a per-channel shift out of range is a run-time error, as in the guest)."""

import contextlib
import random
import struct
import time

import numpy as np
from test_modelfile import elementwise_graph, sample_f32_graph, sample_int8_graph
from transformer_graphs import attention_block

from prover.errors import ProverError
from prover.model.engine import run
from prover.model.modelfile import ModelFormatError, read_model, write_model

MUTANTS_PER_SEED_FILE = 3400  # four seed files: over 10,000 mutants
INTERESTING_U32 = [
    0,
    1,
    2,
    3,
    4,
    5,
    16,
    31,
    32,
    33,
    255,
    256,
    0x7FFF,
    0xFFFF,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
]
MAX_RUN_BYTES = 1 << 20  # run accepted mutants only when their tensors are small


def mutate(data: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(7)
    n = len(data)
    at = rng.randrange(n)
    if kind == 0:  # flip one bit
        return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]
    if kind == 1:  # random bytes
        length = rng.randint(1, 8)
        return data[:at] + rng.randbytes(length) + data[at + length :]
    if kind == 2:  # truncate
        return data[:at]
    if kind == 3:  # insert
        return data[:at] + rng.randbytes(rng.randint(1, 40)) + data[at:]
    if kind == 4:  # delete
        return data[:at] + data[at + rng.randint(1, 40) :]
    # field-targeted: an interesting u32 (or a small change) at a word of the header and tables
    data_start = int.from_bytes(data[28:32], "big")
    at = rng.randrange(0, max(4, min(data_start, n) - 4))
    at -= at % 4 if kind == 5 else 0
    old = int.from_bytes(data[at : at + 4].ljust(4, b"\0"), "big")
    value = (
        rng.choice(INTERESTING_U32) if rng.random() < 0.6 else (old + rng.choice([-2, -1, 1, 2, 32])) % 2**32
    )
    return data[:at] + struct.pack(">I", value) + data[at + 4 :]


def fuzz(seed_file: bytes, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    accepted = ran = 0
    for _ in range(MUTANTS_PER_SEED_FILE):
        data = mutate(seed_file, rng)
        if rng.random() < 0.3:
            data = mutate(data, rng)
        try:
            graph = read_model(data)
        except ModelFormatError:
            continue
        accepted += 1
        if sum(t.nbytes for t in graph.tensors) > MAX_RUN_BYTES:
            continue
        ran += 1
        inputs = np.frombuffer(rng.randbytes(2 * graph.tensors[graph.input].nbytes), np.uint8)
        with contextlib.suppress(ProverError):
            run(graph, inputs.view(graph.tensors[graph.input].dtype.numpy))
    return accepted, ran


def test_fuzz_reader_and_engine():
    start = time.perf_counter()
    totals = [0, 0]
    attention = lambda: attention_block(np.random.default_rng(1)).graph  # noqa: E731
    seeds = [sample_f32_graph, sample_int8_graph, elementwise_graph, attention]
    for seed, build in enumerate(seeds):
        accepted, ran = fuzz(write_model(build()), seed)
        totals[0] += accepted
        totals[1] += ran
    elapsed = time.perf_counter() - start
    # The mutants must reach past the header: some are accepted (changed weights, names, metadata).
    assert totals[1] > 100, totals
    mutants = len(seeds) * MUTANTS_PER_SEED_FILE
    print(f"{mutants} mutants, {totals[0]} accepted, {totals[1]} run, {elapsed:.1f} s")
