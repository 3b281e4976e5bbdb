"""Malformed models never make the guest read past its regions, hit undefined behaviour or loop:
thousands of mutations of valid files run through the native build with UBSan trapping and each
region ending at an inaccessible page. The mutations run in a child process, so a fault (SIGSEGV,
SIGILL from UBSan) fails the test instead of killing pytest."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_guest_models import f32_convnet, int8_convnet, int8_mlp
from transformer_graphs import attention_block

from prover.model.modelfile import write_model
from prover.task.guest.native import build_library

FUZZER = """
import json, random, sys
from prover.task.guest.native import NativeGuest
guest = NativeGuest(sys.argv[1])
base, data = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
rng = random.Random(int(sys.argv[4]))
interesting = [0, 1, 2, 3, 4, 31, 32, 255, 256, 65535, 65536, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
codes = set()
for _ in range(int(sys.argv[5])):
    model = bytearray(base)
    kind = rng.randrange(4)
    if kind == 0:
        model = model[: rng.randrange(len(model))]
    elif kind == 1:
        for _ in range(rng.randint(1, 8)):
            model[rng.randrange(len(model))] = rng.randrange(256)
    else:  # a u32 field: in the header and tables (kind 2) or anywhere (kind 3)
        position = rng.randrange(min(len(model), 1024)) & ~3 if kind == 2 else rng.randrange(len(model) - 4)
        model[position : position + 4] = rng.choice(interesting).to_bytes(4, "big")
    codes.add(guest.run(bytes(model), data).exit_code)
print(json.dumps(sorted(codes)))
"""

GUEST_CODES = set(range(0, 21))
ATTENTION = attention_block(np.random.default_rng(1))


def pixels(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(size % 256)


@pytest.mark.parametrize(
    ("name", "model", "data", "mutations"),
    [
        ("mlp", int8_mlp(), pixels(784), 10_000),
        ("convnet", int8_convnet(), pixels(784), 3000),
        ("f32", f32_convnet(), pixels(144), 3000),
        ("attention", write_model(ATTENTION.graph), ATTENTION.payload(), 5000),
    ],
)
def test_mutated_models_only_produce_documented_exit_codes(
    tmp_path: Path, name: str, model: bytes, data: bytes, mutations: int
) -> None:
    library = build_library(tmp_path, sanitize=True)
    (tmp_path / "model").write_bytes(model)
    (tmp_path / "input").write_bytes(data)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            FUZZER,
            str(library),
            str(tmp_path / "model"),
            str(tmp_path / "input"),
            "1",
            str(mutations),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, f"the guest crashed ({child.returncode}): {child.stderr[-2000:]}"
    codes = set(json.loads(child.stdout))
    assert codes <= GUEST_CODES
    assert 0 in codes and len(codes) > 5  # mutations reached both success and many different checks
