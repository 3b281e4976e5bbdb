"""The README's main job, `bash scripts/challenge_simple.sh`, plays a whole MNIST dispute and exits 0
with the honest defender the winner (the e2e tests play the same game through the Python side;
this one keeps the script itself working)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_challenge_simple_demo_ends_with_the_honest_defender_winning():
    result = subprocess.run(
        ["bash", "scripts/challenge_simple.sh"],
        cwd=REPO,
        env=dict(os.environ, PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "winner: the defender; rounds: 6;" in result.stdout
