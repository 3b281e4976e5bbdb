"""docs/tflite.md's worked example (the classic question: the forward pass of an int8 .tflite file
in numpy) runs as written, from the repository root, and its assertions hold: the integer pass
equals the interpreter's logits to the bit, the naive pass does not work, dequantizing does."""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_the_worked_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = (REPO / "docs" / "tflite.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        exec(compile(blocks[0], "docs/tflite.md", "exec"), {"__name__": "docs_tflite"})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out.strip()
    assert printed in text  # the figures the page quotes are the ones the example prints
