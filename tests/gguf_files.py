"""Small LLaMA-architecture GGUF files written with the `gguf` package's writer: random weights,
llama.cpp's tensor names and metadata keys, and a small vocabulary trained here with the
`tokenizers` library on a fixed text (SentencePiece-style "llama" or byte-level BPE "gpt2").

    path = write_llama_gguf(tmp_path / "m.gguf", "f32", "llama")     # or "f16", "q8_0"; "gpt2"

The same files serve the tests and scripts/check_llama_cpp.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The text the test vocabularies are trained on (their pieces; other characters fall back to bytes).
CORPUS = """The quick brown fox jumps over the lazy dog. A model file holds the weights of a network,
and the tokenizer turns text into the ids that the network reads. Verified inference means that
anyone can check the answer: the claim is over token ids, one forward pass at a time.
def main(): return 42  # numbers 0123456789 and punctuation (a, b; c: d!) "quoted" 'single'
"""
# Texts whose token ids are compared with llama.cpp's (spaces, newlines, bytes outside the
# vocabulary's pieces, digits, a control token's text).
TEXTS = (
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    " leading space and  two   spaces",
    "new\nlines\n\n  indented",
    "unicode: héllo wörld ☃ 日本語 🙂",
    "numbers 12345 and 3.14159",
    "<s> is plain text here </s>",
    "tab\tand trailing space ",
    "don't, I'm, we'll, THEY'RE",
    "a\r\nb   \n\n\t  def f(x):\n        return x ** 2",
    "1234567 12 123456789012",
    "ÀÉÎÕÜ çà et là; 中文 text; Ελληνικά",
    "",
)
PROMPTS = ("The quick brown", "Verified inference means", "def main():", "héllo 🙂")


@dataclass(frozen=True)
class SmallLlama:
    dim: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    ffn_dim: int = 96
    context: int = 64
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5


def trained_tokenizer(kind: str, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    if kind == "llama":
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False)
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, show_progress=False)
    tokenizer.train_from_iterator([CORPUS] * 4, trainer)
    return tokenizer


def add_vocabulary(writer, kind: str, pre: str = "gpt-2") -> int:
    """Write the tokenizer.ggml.* keys of a small trained vocabulary (gpt2: with the
    pre-tokenizer `pre`, or none for llama.cpp's default); its size."""
    import json

    from gguf import TokenType

    if kind == "llama":
        trained = trained_tokenizer("llama", 160)
        pieces = sorted(trained.get_vocab().items(), key=lambda item: item[1])
        tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
        types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
        scores = [0.0] * len(tokens)
        for piece, rank in pieces:
            if piece in tokens:
                continue
            tokens.append(piece)
            types.append(TokenType.NORMAL)
            scores.append(-float(rank))
        writer.add_tokenizer_model("llama")
        writer.add_token_scores(scores)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_unk_token_id(0)
        writer.add_add_bos_token(True)
    else:
        trained = trained_tokenizer("gpt2", 400)
        pieces = sorted(trained.get_vocab().items(), key=lambda item: item[1])
        tokens = [piece for piece, _ in pieces] + ["<|endoftext|>"]
        types = [TokenType.NORMAL] * (len(tokens) - 1) + [TokenType.CONTROL]
        merges = json.loads(trained.to_str())["model"]["merges"]
        writer.add_tokenizer_model("gpt2")
        if pre != "default":
            writer.add_tokenizer_pre(pre)
        writer.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
        writer.add_bos_token_id(len(tokens) - 1)
        writer.add_eos_token_id(len(tokens) - 1)
        writer.add_add_bos_token(False)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    return len(tokens)


def _add_weight(writer, name: str, value: np.ndarray, tensor_type: str) -> None:
    from gguf import GGMLQuantizationType, quantize

    value = value.astype(np.float32)
    if value.ndim == 1 or tensor_type == "f32":  # norms stay f32, as in llama.cpp's own files
        writer.add_tensor(name, value)
    elif tensor_type == "f16":
        writer.add_tensor(name, value.astype(np.float16))
    else:
        writer.add_tensor(
            name, quantize(value, GGMLQuantizationType.Q8_0), raw_dtype=GGMLQuantizationType.Q8_0
        )


def write_llama_gguf(
    path: Path,
    tensor_type: str = "f32",
    vocabulary: str = "llama",
    config: SmallLlama = SmallLlama(),
    seed: int = 0,
    pre: str = "gpt-2",
) -> Path:
    """A random-weight LLaMA GGUF file with F32, F16 or Q8_0 matrices (`tensor_type`) and a
    `vocabulary` of kind llama or gpt2 (pre-tokenizer `pre`)."""
    from gguf import GGUFWriter, LlamaFileType

    writer = GGUFWriter(str(path), "llama")
    vocab = add_vocabulary(writer, vocabulary, pre)
    c = config
    head_dim = c.dim // c.heads
    writer.add_name(f"random llama {tensor_type}")
    writer.add_context_length(c.context)
    writer.add_embedding_length(c.dim)
    writer.add_block_count(c.layers)
    writer.add_feed_forward_length(c.ffn_dim)
    writer.add_head_count(c.heads)
    writer.add_head_count_kv(c.kv_heads)
    writer.add_rope_freq_base(c.rope_theta)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(c.rms_eps)
    writer.add_vocab_size(vocab)
    file_types = {
        "f32": LlamaFileType.ALL_F32,
        "f16": LlamaFileType.MOSTLY_F16,
        "q8_0": LlamaFileType.MOSTLY_Q8_0,
    }
    writer.add_file_type(file_types[tensor_type])
    rng = np.random.default_rng(seed)

    def matrix(rows: int, cols: int) -> np.ndarray:  # (out, in), the reader's numpy shape
        return rng.normal(0, 1 / np.sqrt(cols), (rows, cols))

    def norm(n: int) -> np.ndarray:
        return 1 + 0.1 * rng.normal(size=n)

    _add_weight(writer, "token_embd.weight", rng.normal(0, 1, (vocab, c.dim)), tensor_type)
    for i in range(c.layers):
        _add_weight(writer, f"blk.{i}.attn_norm.weight", norm(c.dim), tensor_type)
        _add_weight(writer, f"blk.{i}.attn_q.weight", matrix(c.dim, c.dim), tensor_type)
        _add_weight(writer, f"blk.{i}.attn_k.weight", matrix(c.kv_heads * head_dim, c.dim), tensor_type)
        _add_weight(writer, f"blk.{i}.attn_v.weight", matrix(c.kv_heads * head_dim, c.dim), tensor_type)
        _add_weight(writer, f"blk.{i}.attn_output.weight", matrix(c.dim, c.dim), tensor_type)
        _add_weight(writer, f"blk.{i}.ffn_norm.weight", norm(c.dim), tensor_type)
        _add_weight(writer, f"blk.{i}.ffn_gate.weight", matrix(c.ffn_dim, c.dim), tensor_type)
        _add_weight(writer, f"blk.{i}.ffn_up.weight", matrix(c.ffn_dim, c.dim), tensor_type)
        _add_weight(writer, f"blk.{i}.ffn_down.weight", matrix(c.dim, c.ffn_dim), tensor_type)
    _add_weight(writer, "output_norm.weight", norm(c.dim), tensor_type)
    _add_weight(writer, "output.weight", matrix(vocab, c.dim), tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
