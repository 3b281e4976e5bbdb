"""Inputs of either polarity (issue 19): the shipped models record their input convention, and a
digit or an MNIST set drawn light on dark (canonical MNIST) is brought to the models' dark on light
before inference, so it gets the class of the original, through `predict`, `eval` and `golden` +
`run` (identical input bytes after the conversion); an input with no clear background is used as
given with one line saying so; --background forces either way; `convert` records a convention."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mnist_data import MNIST_DIR, needs_mnist, sample_images, write_set
from PIL import Image
from test_opml import opml_file

from prover.cli.main import cli
from prover.model.convention import DARK, LIGHT, InputConvention
from prover.model.data import load_mnist
from prover.model.engine import run
from prover.model.modelfile import load_model
from prover.task.golden import region_root
from prover.task.run import load_task

REPO = Path(__file__).resolve().parent.parent
MODELS = ["mlp_int8", "lenet5_int8", "mlp_f32", "lenet5_f32"]
CHECKED_IMAGES = 200


def invoke(*args: object) -> dict:
    result = CliRunner().invoke(cli, [*map(str, args), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def model_path(name: str) -> Path:
    return REPO / "models" / f"{name}.ggml"


def save_png(pixels: np.ndarray, path: Path) -> Path:
    Image.fromarray(pixels.reshape(28, 28).astype(np.uint8)).save(path)
    return path


def test_the_convention_is_read_off_the_border() -> None:
    convention = InputConvention(28, 28)
    images, _ = sample_images()
    assert convention.detect(images) == LIGHT  # the project's copy
    assert all(convention.detect(image) == LIGHT for image in images)
    assert all(convention.detect(255 - image) == DARK for image in images)
    assert convention.detect(np.full(784, 128, np.uint8)) is None  # uniform gray: no background
    noise = np.random.default_rng(0).integers(0, 256, 784, dtype=np.uint8)
    assert convention.detect(noise) is None


@pytest.fixture(scope="module")
def test_images() -> tuple[np.ndarray, np.ndarray]:
    """The first CHECKED_IMAGES test images: from the full set when it is there, else the samples."""
    if (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        images, labels = load_mnist(MNIST_DIR, "t10k")
        return images[:CHECKED_IMAGES], labels[:CHECKED_IMAGES]
    return sample_images()


@pytest.mark.parametrize("name", MODELS)
def test_inverted_digits_get_the_class_of_the_original_through_predict(
    name: str, test_images: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    images, _ = test_images
    graph = load_model(model_path(name))
    original = run(graph, images).argmax(axis=1)
    for index, image in enumerate(images):
        png = save_png(255 - image, tmp_path / f"inverted-{index}.png")
        report = invoke("predict", "--model", model_path(name), "--data", png)
        assert report["class"] == original[index], index
        assert report["input"]["background"] == DARK and report["input"]["inverted"]
        # the same bytes as the original's: the task's input is identical
        assert load_task(model_path(name), png).data == image.tobytes()


@pytest.mark.parametrize("name", MODELS)
def test_an_inverted_digit_gives_the_golden_image_and_run_of_the_original(name: str, tmp_path: Path) -> None:
    image = sample_images()[0][0]
    original = invoke("golden", "--model", model_path(name), "--data", save_png(image, tmp_path / "o.png"),
                      "--basedir", tmp_path / "original", "--phases", "single")  # fmt: skip
    inverted_png = save_png(255 - image, tmp_path / "i.png")
    inverted = invoke(
        "golden", "--model", model_path(name), "--data", inverted_png, "--basedir", tmp_path / "inv",
        "--phases", "single",
    )  # fmt: skip
    assert inverted["S0"] == original["S0"] and inverted["input_root"] == original["input_root"]
    assert (original["input"]["inverted"], inverted["input"]["inverted"]) == (False, True)
    if name.endswith("int8"):  # the f32 guest takes 39-67 M steps: identical S0 says it all
        final = invoke("run", "--basedir", tmp_path / "inv")
        assert final["exit_code"] == 0 and final["class"] == 7


def test_background_forces_either_way(tmp_path: Path) -> None:
    image = sample_images()[0][0]
    png = save_png(image, tmp_path / "digit.png")
    model = model_path("mlp_int8")
    forced = invoke(
        "golden", "--model", model, "--data", png, "--basedir", tmp_path / "a", "--background", DARK
    )
    assert forced["input"] == {"background": DARK, "inverted": True, "note": forced["input"]["note"]}
    assert forced["input_root"] == "0x" + region_root((255 - image).tobytes()).hex()
    as_is = invoke("predict", "--model", model, "--data", png, "--background", LIGHT)
    assert as_is["input"] == {"background": LIGHT, "inverted": False, "note": None} and as_is["class"] == 7


@pytest.mark.parametrize("kind", ["gray", "noise"])
def test_an_input_with_no_clear_background_is_used_as_given_and_said_in_one_line(
    kind: str, tmp_path: Path
) -> None:
    pixels = np.full(784, 128) if kind == "gray" else np.random.default_rng(1).integers(0, 256, 784)
    png = save_png(pixels, tmp_path / f"{kind}.png")
    model = model_path("lenet5_int8")
    result = CliRunner().invoke(cli, ["predict", "--model", str(model), "--data", str(png)])
    assert result.exit_code == 0, result.output
    note, answer = result.output.splitlines()
    assert note.startswith(f"{png}: no clear background") and "used as given" in note
    assert answer.startswith("class ")
    report = invoke("predict", "--model", model, "--data", png)
    assert report["input"]["background"] is None and not report["input"]["inverted"]
    assert load_task(model, png).data == pixels.astype(np.uint8).tobytes()


def inverted_set(directory: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    return write_set(directory, "t10k", 255 - images, labels)


def test_eval_on_an_inverted_set_gives_the_accuracy_on_the_original(tmp_path: Path) -> None:
    images, labels = sample_images()
    for name in MODELS:
        original = invoke(
            "eval",
            "--model",
            model_path(name),
            "--mnist-dir",
            write_set(tmp_path / "o", "t10k", images, labels),
        )
        inverted = invoke(
            "eval", "--model", model_path(name), "--mnist-dir", inverted_set(tmp_path / "i", images, labels)
        )
        assert inverted["correct"] == original["correct"] and inverted["input"]["inverted"]


@pytest.mark.slow
@needs_mnist()
@pytest.mark.parametrize("name", MODELS)
def test_eval_on_the_inverted_test_set(name: str, tmp_path: Path) -> None:
    """The README's figure on the inverted test set: within 0.2 points of the original's."""
    images, labels = load_mnist(MNIST_DIR, "t10k")
    original = invoke("eval", "--model", model_path(name), "--mnist-dir", MNIST_DIR)
    inverted = invoke(
        "eval", "--model", model_path(name), "--mnist-dir", inverted_set(tmp_path, images, labels)
    )
    assert abs(inverted["accuracy"] - original["accuracy"]) <= 0.2


def test_quantize_calibrates_on_images_in_the_model_convention(tmp_path: Path) -> None:
    images, labels = sample_images()
    f32 = model_path("mlp_f32")
    for directory, pixels in (("o", images), ("i", 255 - images)):
        write_set(tmp_path / directory, "train", pixels, labels)
        invoke(
            "quantize",
            "--model",
            f32,
            "--out",
            tmp_path / f"{directory}.ggml",
            "--mnist-dir",
            tmp_path / directory,
        )
    assert (tmp_path / "o.ggml").read_bytes() == (tmp_path / "i.ggml").read_bytes()


@pytest.mark.parametrize(("option", "background"), [([], 0), (["--input-background", LIGHT], 255)])
def test_convert_records_the_input_convention(tmp_path: Path, option: list[str], background: int) -> None:
    """OPML's legacy MLP (raw 784 pixels): canonical MNIST's dark background unless told."""
    source = tmp_path / "m.opml"
    source.write_bytes(opml_file()[0])
    invoke("convert", "--from", "opml", *option, source, tmp_path / "m.ggml")
    convention = InputConvention.of(load_model(tmp_path / "m.ggml"))
    assert convention == InputConvention(28, 28, 0, 255, background)
