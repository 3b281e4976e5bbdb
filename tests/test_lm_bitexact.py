"""The trained byte-level language model (models/lm_int8.ggml, scripts/train_lm.py) in the VM equals
the numpy engine bit for bit: the whole output region (u32 first index of the maximum, then every
int8 logit of every position) of forward passes over windows of Python source. One pass in the fast
tests, 20 (the first 20 greedy steps from a prompt, each pass a fresh machine from its own S0) in
the slow ones."""

from pathlib import Path

import numpy as np
import pytest

from prover.model import engine
from prover.model.generate import LanguageModel
from prover.model.modelfile import load_model
from prover.task.golden import GoldenTemplate
from prover.task.run import output_payload

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "models" / "lm_int8.ggml"
PROMPT = b"import os\n\n\ndef main():\n    "


def payload(values: np.ndarray) -> bytes:
    return int(np.argmax(values)).to_bytes(4, "big") + values.astype(np.int8).tobytes()


def check_passes(count: int) -> None:
    lm = LanguageModel(load_model(MODEL))
    template = GoldenTemplate(MODEL.read_bytes())
    tokens, mismatches = list(PROMPT), []
    for index in range(count):
        window = lm.window(tokens)
        token, outputs = lm.next_token(tokens)
        assert np.array_equal(outputs, engine.run(lm.graph, window[None])[0])
        image = template.image(window.astype(">i4").tobytes())
        image.machine.run()
        if (image.machine.state.exit_code, output_payload(image.machine)) != (0, payload(outputs)):
            mismatches.append(index)
        tokens.append(token)
    assert mismatches == []


def test_lm_forward_pass_in_the_vm_equals_the_engine() -> None:
    check_passes(1)


@pytest.mark.slow
def test_20_lm_forward_passes_in_the_vm_equal_the_engine() -> None:
    check_passes(20)
