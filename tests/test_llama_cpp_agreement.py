"""Agreement with llama.cpp (scripts/check_llama_cpp.py), when the optional llama_cpp package is
installed (`pip install -e '.[llama]'`, which compiles llama.cpp): token ids equal llama.cpp's on
every test text for both vocabulary kinds; on F32 files the greedy tokens are llama.cpp's and the
logits agree within 1e-4 relative; on F16 files (llama.cpp also rounds activations to f16) within
2e-3; on Q8_0 (llama.cpp also rounds activations to Q8_0 blocks) the greedy tokens mostly agree,
for our f32 graph of the dequantized weights and for our int8 graph of it."""

import sys
import tempfile
from pathlib import Path

import pytest

llama_cpp = pytest.importorskip("llama_cpp", reason="llama_cpp is not installed (the llama extra)")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import check_llama_cpp  # noqa: E402


def test_token_ids_and_logits_agree_with_llama_cpp() -> None:
    with tempfile.TemporaryDirectory() as name:
        tokens = check_llama_cpp.check_tokenizers(Path(name))
        logits = check_llama_cpp.check_logits(Path(name), 4)
    for kind, figures in tokens.items():
        assert figures["identical"] == figures["texts"], (kind, figures)
    for key, tolerance in (("f32 file, our f32", 1e-4), ("f16 file, our f32", 2e-3)):
        assert logits[key]["max_relative_logit_error"] < tolerance, (key, logits[key])
        assert logits[key]["greedy_agree"] == logits[key]["greedy_total"], (key, logits[key])
    for key in ("q8_0 file, our f32", "q8_0 file, our int8"):
        assert logits[key]["greedy_agree"] >= 0.75 * logits[key]["greedy_total"], (key, logits[key])
