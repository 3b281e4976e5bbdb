"""The trained int8 models (models/*_int8.ggml) in the VM equal the numpy reference engine bit for
bit: the whole output region (u32 class, then all ten int8 logits) of a full run of the machine
(the native executor, Machine.run) from the image's initial state, on MNIST test images.

The expected payload is written here from docs/memory-map.md (class = first index of the maximum,
then the output tensor's bytes), not taken from prover code, so the check does not share a bug with
the code it checks.

Cost: the MLP takes 1.55 M steps per image, LeNet-5 2.96 M, the ViT 12.0 M. The slow tests lay the
images out with prover.task.golden.GoldenTemplate (program and model pages hashed once). Every
image is still a fresh machine run from its own S0 to its exit; the fast tests check on a few
images that this path ends in exactly the final state of the plain path (build_golden), and the
tests at the end that programs which store into their own code end as the reference stepper says.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mnist_data import MNIST_DIR, needs_mnist, sample_images

from prover.model import engine
from prover.model.data import load_mnist
from prover.model.modelfile import load_model
from prover.task.golden import INPUT_BASE, GoldenImage, GoldenTemplate, build_golden, sibling_slot_root
from prover.task.run import output_payload
from vm import Machine
from vm.instructions import execute

REPO = Path(__file__).resolve().parent.parent
INT8_MODELS = ["mlp_int8", "lenet5_int8", "vit_int8"]
FAST_IMAGES = [0, 1]  # the non-slow subset, among the shipped samples
SLOW_IMAGES = 200


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    return load_mnist(MNIST_DIR, "t10k")


def engine_payloads(name: str, images: np.ndarray) -> list[bytes]:
    """The output region's payload the engine predicts for each image."""
    graph = load_model(REPO / "models" / f"{name}.ggml")
    logits = engine.run(graph, images)
    assert logits.dtype == np.int8 and logits.shape == (len(images), 10)
    return [int(np.argmax(row)).to_bytes(4, "big") + row.astype(">i1").tobytes() for row in logits]


@pytest.mark.parametrize("name", INT8_MODELS)
def test_int8_model_in_the_vm_equals_the_engine(name: str) -> None:
    """The plain path (build_golden) equals the engine, and the template path of the slow tests
    ends in the very same final state."""
    model = (REPO / "models" / f"{name}.ggml").read_bytes()
    template = GoldenTemplate(model)
    images = sample_images()[0][FAST_IMAGES]
    for image, want in zip(images, engine_payloads(name, images), strict=True):
        plain = build_golden(model, image.tobytes())
        plain.machine.run()
        assert (plain.machine.state.exit_code, output_payload(plain.machine)) == (0, want)
        shared = template.image(image.tobytes())
        assert shared.to_json() == plain.to_json()  # S0, the three roots, the memory map
        shared.machine.run()
        assert shared.machine.state.encode() == plain.machine.state.encode()


@pytest.mark.slow
@needs_mnist()
@pytest.mark.parametrize("name", INT8_MODELS)
def test_int8_model_in_the_vm_equals_the_engine_on_200_images(
    name: str, mnist: tuple[np.ndarray, np.ndarray]
) -> None:
    images = mnist[0]
    model = (REPO / "models" / f"{name}.ggml").read_bytes()
    template = GoldenTemplate(model)

    mismatches = []
    for index, want in enumerate(engine_payloads(name, images[:SLOW_IMAGES])):
        image = template.image(images[index].tobytes())
        image.machine.run()
        if (image.machine.state.exit_code, output_payload(image.machine)) != (0, want):
            mismatches.append(index)
    assert mismatches == []


# -------------------------------------------------------------- programs that store into their code

BASE = 0x00400000
PAGE = 0x1000


def words(*values: int) -> bytes:
    return b"".join(value.to_bytes(4, "big") for value in values)


# exit_group(a0): addiu $v0, $zero, 4246; syscall
EXIT = (0x24020000 | 4246, 0x0000000C)


def image_of(code: dict[int, bytes]) -> GoldenImage:
    """A stand-in golden image: `code` (address -> bytes) at pc = BASE. The runner only uses the
    machine and the program root (slot 0's root)."""
    machine = Machine.from_bytes(b"", pc=BASE)
    for addr, data in code.items():
        machine.memory.write(addr, data)
    root = sibling_slot_root(machine.memory.proof(INPUT_BASE))
    return GoldenImage(machine, root, b"", b"", machine.state_hash(), ())


def reference_state(code: dict[int, bytes]) -> bytes:
    machine = image_of(code).machine
    execute(machine.state, machine.memory, None, lambda fd, data: None)
    return machine.state.encode()


def self_modifying_same_page() -> dict[int, bytes]:
    """Stores `ori $a0, $zero, 7` over the `ori $a0, $zero, 1` two words later, then exits with $a0:
    the block compiled before the store is invalidated in the run (exit code 7)."""
    new = 0x34040007
    return {
        BASE: words(
            0x3C080000 | (new >> 16),  # lui $t0, hi(new)
            0x35080000 | (new & 0xFFFF),  # ori $t0, $t0, lo(new)
            0x3C090000 | (BASE >> 16),  # lui $t1, hi(BASE)
            0xAD280000 | 0x18,  # sw $t0, 0x18($t1)   (the word at BASE + 0x18)
            0x00000000,
            0x00000000,
            0x34040001,  # BASE + 0x18: ori $a0, $zero, 1  (replaced)
            *EXIT,
        )
    }


def modifies_another_page(value: int) -> dict[int, bytes]:
    """The next page holds `ori $a0, $zero, 1` + exit. With a non-zero first input word, the program
    first overwrites that `ori` with `ori $a0, $zero, value`; then it jumps there."""
    target = BASE + PAGE
    program = [
        0x3C0C0000 | (INPUT_BASE >> 16),  # lui $t4, hi(INPUT_BASE)
        0x8D8B0000 | 32,  # lw $t3, 32($t4)   (the input payload's first word)
        0x3C090000 | (target >> 16),  # lui $t1, hi(target)
        0x35290000 | (target & 0xFFFF),  # ori $t1, $t1, lo(target)
        0x11600004,  # beq $t3, $zero, +4  (to the jr)
        0x00000000,
        0x3C083404,  # lui $t0, 0x3404   (ori $a0, $zero, 0)
        0x010B4025,  # or $t0, $t0, $t3
        0xAD280000,  # sw $t0, 0($t1)
        0x01200008,  # jr $t1
        0x00000000,
    ]
    return {BASE: words(*program), target: words(0x34040001, *EXIT), INPUT_BASE + 32: words(value)}


def modifies_and_restores() -> dict[int, bytes]:
    """self_modifying_same_page, then the replaced word is stored back before the exit: the code
    ends as it began."""
    old, new = 0x34040001, 0x34040007
    return {
        BASE: words(
            0x3C080000 | (new >> 16),  # lui $t0, hi(new)
            0x35080000 | (new & 0xFFFF),  # ori $t0, $t0, lo(new)
            0x3C090000 | (BASE >> 16),  # lui $t1, hi(BASE)
            0xAD280000 | 0x18,  # sw $t0, 0x18($t1)
            0x00000000,
            0x00000000,
            old,  # BASE + 0x18: ori $a0, $zero, 1  (replaced, then restored)
            0x3C0A0000 | (old >> 16),  # lui $t2, hi(old)
            0x354A0000 | (old & 0xFFFF),  # ori $t2, $t2, lo(old)
            0xAD2A0000 | 0x18,  # sw $t2, 0x18($t1)
            *EXIT,
        )
    }


@pytest.mark.parametrize("program", [self_modifying_same_page, modifies_and_restores])
def test_a_program_that_stores_into_its_code(program: Callable[[], dict[int, bytes]]) -> None:
    for _ in range(2):
        image = image_of(program())
        image.machine.run()
        assert image.machine.state.exited and image.machine.state.exit_code == 7
        assert image.machine.state.encode() == reference_state(program())


def test_a_program_that_stores_into_another_code_page() -> None:
    for value, exit_code in ((9, 9), (0, 1)):
        image = image_of(modifies_another_page(value))
        image.machine.run()
        assert image.machine.state.exited and image.machine.state.exit_code == exit_code
        assert image.machine.state.encode() == reference_state(modifies_another_page(value))
