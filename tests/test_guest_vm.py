"""The committed guest ELF in the VM gives the same bytes as the native build of the same sources:
output region, class and exit code, for every op in int8 and f32 and for malformed models."""

import pytest
from test_guest_models import f32_convnet, f32_mlp, images, int8_convnet, int8_mlp, native_guest

from prover.task.golden import OUTPUT_BASE, REGION_HEADER, build_golden
from prover.task.guest.native import NativeGuest

__all__ = ["native_guest"]  # the fixture, imported for this module


def run_in_vm(model: bytes, data: bytes) -> tuple[int, bytes]:
    machine = build_golden(model, data).machine
    machine.run()
    assert machine.state.exited
    length = machine.memory.read_word(OUTPUT_BASE)
    return machine.state.exit_code, machine.memory.read(OUTPUT_BASE + REGION_HEADER, length)


@pytest.mark.parametrize(
    ("model", "size"),
    [(int8_mlp(), 784), (int8_convnet(), 784), (f32_mlp(), 784), (f32_convnet(), 144)],
    ids=["int8-mlp", "int8-convnet", "f32-mlp", "f32-convnet"],
)
def test_vm_output_equals_native_output(native_guest: NativeGuest, model: bytes, size: int) -> None:
    for image in images(2, size, seed=7):
        expected = native_guest.run(model, image)
        assert expected.exit_code == 0
        assert run_in_vm(model, image) == (0, expected.output)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda m: m[:100],  # truncated tables
        lambda m: b"GGML" + m[4:],  # bad magic
        lambda m: m[:-1],  # the last tensor's data runs past the end
        lambda m: m[:12] + (5000).to_bytes(4, "big") + m[16:],  # n_tensors over the limit
    ],
    ids=["truncated", "magic", "short-data", "limits"],
)
def test_malformed_models_exit_with_the_native_code(native_guest: NativeGuest, corrupt) -> None:
    model = corrupt(int8_mlp())
    image = images(1)[0]
    expected = native_guest.run(model, image).exit_code
    assert 0 < expected < 0xF0
    assert run_in_vm(model, image) == (expected, b"")
