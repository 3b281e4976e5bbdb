"""Agreement with llama.cpp (the `llama-cpp-python` package, `pip install -e '.[llama]'`) on small
random LLaMA GGUF files written by tests/gguf_files.py, and the Q8_0 requantization's perplexity.

    python scripts/check_llama_cpp.py [--tokens N] [--shape small|75m] [--json]

1. Token ids: our vocabulary (prover/model/vocabulary.py) against llama.cpp's tokenizer on
   tests/gguf_files.TEXTS, for a SentencePiece-style (llama) and a byte-level BPE (gpt2)
   vocabulary, the latter with each pre-tokenizer we support (gpt-2, llama-bpe, default).
2. Logits and greedy tokens for each prompt of tests/gguf_files.PROMPTS, on F32, F16 and Q8_0
   files: llama.cpp runs with an f32 KV cache (type_k / type_v f32), logits for every position,
   one thread (for F16 and Q8_0 matrices llama.cpp also rounds the activations: to f16, or to Q8_0
   blocks); we run the f32 graph of `prover convert --from gguf` (and, for Q8_0, the int8 graph
   `prover quantize` makes of it) with the KV cache of prover/model/decode.py. Each greedy sequence
   is llama.cpp's; our logits are taken over the same tokens (prompt and llama.cpp's continuation),
   and the relative error of a position is max |ours - theirs| / max |theirs|.
3. Q8_0 (docs/arithmetic.md, "Q8_0 files"): the perplexity over the default calibration text of
   the byte-level LM of #13 (models/lm_f32.ggml) in f32, exported to GGUF as Q8_0 and read back
   dequantized (f32), and each of these requantized per channel to int8 by our quantizer.
Parts 1 and 2 need llama_cpp; without it they are skipped with the reason, part 3 always runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the small GGUF files

from gguf_files import PROMPTS, TEXTS, SmallLlama, write_llama_gguf  # noqa: E402

from prover.model import engine  # noqa: E402
from prover.model.decode import CachedDecoder  # noqa: E402
from prover.model.graph import Graph  # noqa: E402
from prover.model.importers.gguf_export import export_gguf  # noqa: E402
from prover.model.importers.gguf_import import import_gguf  # noqa: E402
from prover.model.modelfile import load_model  # noqa: E402
from prover.model.quantize import quantize  # noqa: E402
from prover.model.text_calibration import default_text, perplexity, text_windows  # noqa: E402
from prover.model.vocabulary import byte_vocabulary, vocabulary_for  # noqa: E402

GGML_TYPE_F32 = 0
# the models of part 2: the tests' small one, and one of 75 M parameters (dim 768, 12 layers of
# 12 query and 4 key / value heads, SwiGLU of 2048, context 256)
SHAPES = {
    "small": SmallLlama(),
    "75m": SmallLlama(dim=768, layers=12, heads=12, kv_heads=4, ffn_dim=2048, context=256),
}
CALIBRATION_WINDOWS = 64  # of the byte LM (part 3)
CALIBRATION_POSITIONS = 2048  # the int8 LLaMA's calibration: windows of its context, this many positions
# (tokenizer.ggml.model, tokenizer.ggml.pre): SentencePiece-style, and byte-level BPE after each
# supported pre-tokenizer ("default": the key absent)
VOCABULARIES = (("llama", ""), ("gpt2", "gpt-2"), ("gpt2", "llama-bpe"), ("gpt2", "default"))


def llama_cpp_model(path: Path, context: int = SmallLlama().context):
    from llama_cpp import Llama

    return Llama(
        model_path=str(path),
        n_ctx=context,
        n_batch=context,
        n_threads=1,
        logits_all=True,
        type_k=GGML_TYPE_F32,
        type_v=GGML_TYPE_F32,
        flash_attn=False,
        verbose=False,
    )


def their_tokens(llm, text: str) -> list[int]:
    return list(llm.tokenize(text.encode(), add_bos=True, special=False))


def their_greedy(llm, prompt: list[int], count: int) -> tuple[list[int], np.ndarray]:
    """llama.cpp's greedy continuation and its logits at every position of prompt + continuation
    (the last generated token's own logits excluded)."""
    llm.reset()
    llm.eval(prompt)
    tokens: list[int] = []
    while True:
        tokens.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
        if len(tokens) == count:
            break
        llm.eval([tokens[-1]])
    return tokens, np.array(llm.scores[: llm.n_tokens], np.float64)


def our_logits(graph: Graph, tokens: list[int]) -> np.ndarray:
    """Logits (positions, vocab) of our graph over `tokens` (int8 ones through their scale)."""
    return engine.dequantized(graph, CachedDecoder(graph).step(tokens))


def relative_errors(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    return np.abs(ours - theirs).max(axis=1) / np.abs(theirs).max(axis=1)


def greedy_from(logits: np.ndarray, prompt_length: int) -> list[int]:
    """Greedy tokens read off teacher-forced logits: the argmax at the prompt's last position and
    at each generated one."""
    return [int(np.argmax(row)) for row in logits[prompt_length - 1 :]]


def check_tokenizers(directory: Path) -> dict:
    report = {}
    for kind, pre in VOCABULARIES:
        path = write_llama_gguf(directory / f"vocab_{kind}_{pre}.gguf", "f32", kind, pre=pre)
        kind = kind if kind == "llama" else f"{kind} ({pre} pre-tokenizer)"
        ours, llm = vocabulary_for(path), llama_cpp_model(path)
        same = [ours.encode(text) == their_tokens(llm, text) for text in TEXTS]
        report[kind] = {"texts": len(TEXTS), "identical": sum(same)}
        for text, equal in zip(TEXTS, same, strict=True):
            if not equal:
                report[kind].setdefault("differ", []).append(
                    {"text": text, "ours": ours.encode(text), "llama.cpp": their_tokens(llm, text)}
                )
        print(f"token ids, {kind} vocabulary: {sum(same)} / {len(TEXTS)} texts identical to llama.cpp's")
    return report


def check_logits(directory: Path, count: int, shape: str = "small") -> dict:
    report = {}
    config = SHAPES[shape]
    for tensor_type in ("f32", "f16", "q8_0"):
        path = write_llama_gguf(directory / f"model_{tensor_type}.gguf", tensor_type, "llama", config)
        vocabulary, llm = vocabulary_for(path), llama_cpp_model(path, config.context)
        graphs = {"f32": import_gguf(path)}
        if tensor_type == "q8_0":
            windows_count = max(4, CALIBRATION_POSITIONS // config.context)  # each of the context's length
            windows = text_windows(graphs["f32"], vocabulary, default_text(), windows_count)
            graphs["int8"] = quantize(graphs["f32"], windows)
        for mode, graph in graphs.items():
            errors, agree, total = [], 0, 0
            for prompt in PROMPTS:
                ids = vocabulary.encode(prompt)
                assert ids == their_tokens(llm, prompt), f"{prompt!r}: token ids differ from llama.cpp's"
                tokens, theirs = their_greedy(llm, ids, count)
                ours = our_logits(graph, ids + tokens[:-1])
                errors.append(relative_errors(ours, theirs))
                mine = greedy_from(ours, len(ids))
                agree += sum(a == b for a, b in zip(mine, tokens, strict=True))
                total += len(tokens)
            error = float(np.concatenate(errors).max())
            key = f"{tensor_type} file, our {mode}"
            report[key] = {"max_relative_logit_error": error, "greedy_agree": agree, "greedy_total": total}
            print(
                f"{key:24} vs llama.cpp: max relative logit error {error:.2e}, "
                f"greedy tokens {agree} / {total} equal ({len(PROMPTS)} prompts x {count})"
            )
    return report


def check_q8_0_perplexity(directory: Path) -> dict:
    lm = load_model(ROOT / "models" / "lm_f32.ggml")
    export_gguf(lm, directory / "lm_q8_0.gguf", "q8_0")
    q8_0 = import_gguf(directory / "lm_q8_0.gguf")
    windows = text_windows(lm, byte_vocabulary(), default_text(), CALIBRATION_WINDOWS)
    report = {}
    for name, graph in (("lm f32", lm), ("lm Q8_0 (dequantized, f32)", q8_0)):
        int8 = quantize(graph, windows)
        report[name] = {"f32": perplexity(graph, windows), "int8": perplexity(int8, windows)}
        print(
            f"perplexity of {name:27}: {report[name]['f32']:.4f}; requantized per channel to int8: "
            f"{report[name]['int8']:.4f} ({len(windows)} windows of 32 bytes of the default text)"
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=8, help="greedy tokens per prompt")
    parser.add_argument("--shape", choices=tuple(SHAPES), default="small", help="part 2's model")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict = {}
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            report["llama_cpp"] = f"skipped: llama_cpp is not importable ({exc}); pip install -e '.[llama]'"
            print(report["llama_cpp"])
        else:
            report["tokenizers"] = check_tokenizers(directory)
            report["logits"] = check_logits(directory, args.tokens, args.shape)
        report["q8_0_perplexity"] = check_q8_0_perplexity(directory)
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
