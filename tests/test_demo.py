"""The README's main job, `bash scripts/challenge_simple.sh`, plays a whole MNIST dispute (the
multi-phase game by default, the single-phase game with PHASES=single) and exits 0 with the honest
defender the winner (the e2e tests play the same game through the Python side;
this one keeps the script itself working)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mnist_data import MNIST_DIR, needs_mnist

from prover.model.data import load_mnist

REPO = Path(__file__).resolve().parent.parent


# The default game of the int8 MLP is multi-phase: a graph round over its 5 nodes, the node's
# opening, then at most ceil(log16 of the node's steps) = 5 VM rounds; single-phase, at most 6.
DEMOS = {
    "auto": r"^winner: the defender; node \d \((LINEAR|CONCAT|REQUANTIZE)\); rounds: [2-7];",
    "single": r"^winner: the defender; rounds: [1-6];",
}


@pytest.mark.slow
@pytest.mark.parametrize("phases", DEMOS)
def test_challenge_simple_demo_ends_with_the_honest_defender_winning(tmp_path, phases):
    """Without the full MNIST set (an empty MNIST_DIR): the shipped digit is the input."""
    result = subprocess.run(
        ["bash", "scripts/challenge_simple.sh"],
        cwd=REPO,
        env=dict(os.environ, PYTHON=sys.executable, MNIST_DIR=str(tmp_path), PHASES=phases),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert re.search(DEMOS[phases], result.stdout, re.M)


def python_the_demos_pick(cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess:
    """`scripts/demo_common.sh`'s choice of Python in an environment of `env` only (and a PATH)."""
    return subprocess.run(
        ["bash", "-c", 'set -euo pipefail; source scripts/demo_common.sh; echo "$PYTHON"'],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_demos_use_the_activated_environment(tmp_path):
    venv = Path(sys.executable).parent.parent
    # Run from a copy of the scripts elsewhere, so no .venv in the checkout can be the answer.
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "demo_common.sh").write_text((REPO / "scripts" / "demo_common.sh").read_text())
    chosen = python_the_demos_pick(tmp_path, VIRTUAL_ENV=str(venv))
    assert chosen.stdout.strip() == f"{venv}/bin/python", chosen.stderr
    on_path = python_the_demos_pick(PATH=f"{venv}/bin:/usr/bin:/bin")
    assert on_path.stdout.strip() == "python", on_path.stderr


def test_demos_pass_over_a_python_that_imports_prover_only_from_the_checkout(tmp_path):
    """A Python without the dependencies imports `prover` from the checkout all the same: the
    demos take the README's .venv after it (the main job run without activating the venv)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    bare = tmp_path / "bare" / "bin"  # a Python with nothing installed
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "scripts" / "demo_common.sh").write_text((REPO / "scripts" / "demo_common.sh").read_text())
    (checkout / "prover").symlink_to(REPO / "prover")
    (checkout / ".venv").symlink_to(Path(sys.executable).parent.parent)
    result = python_the_demos_pick(checkout, PATH=f"{bare}:/usr/bin:/bin")
    assert result.stdout.strip() == ".venv/bin/python", result.stderr


def test_demos_say_when_prover_is_not_installed(tmp_path):
    no_prover = tmp_path / "python"
    no_prover.write_text("#!/bin/sh\nexit 1\n")
    no_prover.chmod(0o755)
    result = python_the_demos_pick(PYTHON=str(no_prover))
    assert result.returncode != 0
    assert result.stderr.strip().startswith("error: no Python with the prover package installed")
    assert len(result.stderr.strip().splitlines()) == 1


def digit_the_demos_pick(image: str, mnist_dir: Path, out: Path) -> subprocess.CompletedProcess:
    """`scripts/demo_common.sh`'s input for IMAGE=`image` (choose_digit), with MNIST_DIR=`mnist_dir`."""
    return subprocess.run(
        [
            "bash",
            "-c",
            f'set -euo pipefail; source scripts/demo_common.sh; choose_digit {out}; echo "$DIGIT"',
        ],
        cwd=REPO,
        env=dict(os.environ, PYTHON=sys.executable, IMAGE=image, MNIST_DIR=str(mnist_dir)),
        capture_output=True,
        text=True,
        check=False,
    )


def test_demos_take_a_shipped_digit_and_say_when_the_full_set_is_needed(tmp_path):
    shipped = digit_the_demos_pick("7", tmp_path, tmp_path / "digit.raw")
    assert shipped.returncode == 0, shipped.stderr
    assert shipped.stdout.splitlines()[-1] == "examples/mnist/test_0007_label_9.png"
    for image, message in (
        ("20", "only test images 0..19 ship in"),
        ("x", "expected an MNIST test image index"),
    ):
        refused = digit_the_demos_pick(image, tmp_path, tmp_path / "digit.raw")
        assert refused.returncode != 0
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], refused.stderr
    assert not (tmp_path / "digit.raw").exists()


@needs_mnist()
def test_demos_take_a_digit_beyond_the_samples_from_the_full_set(tmp_path):
    picked = digit_the_demos_pick("20", MNIST_DIR, tmp_path / "digit.raw")
    assert picked.returncode == 0, picked.stderr
    assert (tmp_path / "digit.raw").read_bytes() == load_mnist(MNIST_DIR, "t10k")[0][20].tobytes()
