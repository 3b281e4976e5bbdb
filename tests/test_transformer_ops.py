"""The transformer ops, one node at a time on random operands: the numpy engine equals the guest's C
(native build with UBSan, many cases; the committed ELF in the VM, a few per op) bit for bit in
int8. In f32, data movement and ROPE are bit-exact too; the ops using the guest's own exp / sqrt /
erf (SOFTMAX, LAYERNORM, RMSNORM, GELU, SILU) or another summation order (MATMUL) agree within
1e-4 relative (docs/arithmetic.md)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_guest_models import native_guest
from test_guest_vm import run_in_vm
from transformer_graphs import CASES, F32_EXACT, F32_ONLY, INT8, Built, attention_block

from prover.errors import ProverError
from prover.model import engine
from prover.model.graph import DType
from prover.model.modelfile import write_model
from prover.task.guest.native import NativeGuest

__all__ = ["native_guest"]  # the fixture, imported for this module

SEEDS = st.integers(0, 2**32 - 1)


def engine_output(built: Built) -> np.ndarray:
    return engine.run(built.graph, built.data[None])[0]


def guest_output(payload: bytes, built: Built) -> np.ndarray:
    out = built.graph.tensors[built.graph.output]
    return np.frombuffer(payload[4:], out.dtype.numpy.newbyteorder(">")).astype(out.dtype.numpy)


def check(built: Built, exit_code: int, payload: bytes, exact: bool) -> None:
    assert exit_code == 0
    want = engine_output(built)
    got = guest_output(payload, built)
    if exact:
        assert got.tobytes() == want.tobytes()
        assert int.from_bytes(payload[:4], "big") == int(np.argmax(want))
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [INT8, DType.F32], ids=["int8", "f32"])
@settings(max_examples=60, deadline=None)
@given(seed=SEEDS)
def test_native_guest_equals_engine(native_guest: NativeGuest, name: str, dtype: DType, seed: int) -> None:
    built = CASES[name](np.random.default_rng(seed), dtype)
    result = native_guest.run(write_model(built.graph), built.payload())
    check(built, result.exit_code, result.output, dtype == INT8 or name in F32_EXACT)


@pytest.mark.parametrize("name", sorted(F32_ONLY))
@settings(max_examples=30, deadline=None)
@given(seed=SEEDS)
def test_native_f32_activations_near_engine(native_guest: NativeGuest, name: str, seed: int) -> None:
    built = F32_ONLY[name](np.random.default_rng(seed))
    result = native_guest.run(write_model(built.graph), built.payload())
    check(built, result.exit_code, result.output, exact=False)


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=3, deadline=None)
@given(seed=SEEDS)
def test_vm_equals_engine_int8(name: str, seed: int) -> None:
    built = CASES[name](np.random.default_rng(seed), INT8)
    check(built, *run_in_vm(write_model(built.graph), built.payload()), exact=True)


@pytest.mark.parametrize("name", sorted(CASES))
def test_vm_equals_native_f32(native_guest: NativeGuest, name: str) -> None:
    built = CASES[name](np.random.default_rng(5), DType.F32)
    model = write_model(built.graph)
    want = native_guest.run(model, built.payload())
    assert run_in_vm(model, built.payload()) == (0, want.output)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_attention_block_vm_equals_native_equals_engine(native_guest: NativeGuest, seed: int) -> None:
    """A whole causal attention block of every transformer op (int8, random parameters)."""
    built = attention_block(np.random.default_rng(seed))
    model = write_model(built.graph)
    native = native_guest.run(model, built.payload())
    check(built, native.exit_code, native.output, exact=True)
    assert run_in_vm(model, built.payload()) == (0, native.output)


def test_token_id_outside_the_table_stops_guest_and_engine(native_guest: NativeGuest) -> None:
    built = attention_block(np.random.default_rng(4))
    built.data[2] = 11  # the table has 11 rows
    assert native_guest.run(write_model(built.graph), built.payload()).exit_code == 20  # ERR_INDEX
    with pytest.raises(ProverError, match="GATHER"):
        engine_output(built)


def test_bad_softmax_table_stops_guest_and_engine(native_guest: NativeGuest) -> None:
    built = CASES["softmax"](np.random.default_rng(0), INT8)
    table = next(t for t in built.graph.tensors if t.name == "exp")
    table.data[7] = (1 << 20) + 1
    assert native_guest.run(write_model(built.graph), built.payload()).exit_code == 16  # ERR_QUANT_PARAM
    with pytest.raises(ProverError, match="SOFTMAX"):
        engine_output(built)
