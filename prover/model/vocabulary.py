"""Text to token ids and back for a language model, with the `tokenizers` library (a claim is over
token ids; this is only how text gets there and back).

    vocabulary = vocabulary_for(Path("model.gguf"))    # or a .ggml: its NAME.tokenizer.json beside
    ids = vocabulary.encode("Hello")                     # with the BOS token when the file asks for it
    text = vocabulary.decode(ids)                        # control tokens (BOS, EOS) left out

A GGUF file's vocabulary is built from its own tokenizer.ggml.* keys the way llama.cpp reads them:
- `llama` (SentencePiece-style): pieces with scores; a merge of two adjacent pieces is taken in the
  order of the merged piece's score (llama.cpp's rule), which is a BPE whose merges are every split
  of every piece into two pieces, ranked by score; characters without a piece fall back to the
  <0xXX> byte tokens; spaces are "▁" and a space is put before the text (add_space_prefix).
- `gpt2` (byte-level BPE): the file's merges, after llama.cpp's pre-tokenizer regexes for
  tokenizer.ggml.pre (gpt-2, llama-bpe / llama3, or default when absent).
Control and unknown tokens in the text are read as plain text (llama.cpp's parse_special = false);
user-defined tokens are matched as a whole. tokenizer.ggml.add_bos_token (llama.cpp's default for
each kind when absent) puts the BOS token first.

A .ggml model converted from GGUF keeps its vocabulary beside it as NAME.tokenizer.json (the
`tokenizers` JSON); without one, the model's tokens are bytes (the byte-level LM of #13).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prover.errors import ProverError

SPACE = "▁"  # SentencePiece's space
# llama.cpp's token types (tokenizer.ggml.token_type)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
LLAMA3_PATTERN = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# llama.cpp's pre-tokenizers (regexes applied one after the other, each splitting the pieces of the
# one before), by tokenizer.ggml.pre; "default" is its choice when the key is absent
PRE_TOKENIZERS = {
    "default": (r"[\p{P}\$\+<=>\^~\|]+", GPT2_PATTERN, r"\p{N}+", "[0-9][0-9][0-9]"),
    "gpt-2": (GPT2_PATTERN,),
    "llama-bpe": (LLAMA3_PATTERN,),
    "llama3": (LLAMA3_PATTERN,),
    "llama-v3": (LLAMA3_PATTERN,),
}
IGNORE_MERGES = ("llama-bpe", "llama3", "llama-v3")  # a whole piece in the vocabulary is one token


def byte_alphabet() -> list[str]:
    """GPT-2's byte-level alphabet: the character standing for each byte 0..255 (printable bytes
    stand for themselves, the others are moved to 256 and up), as GGUF's gpt2 vocabularies use."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


class Vocabulary:
    def __init__(self, tokenizer: Any) -> None:
        tokenizer.encode_special_tokens = True  # control tokens in the text are plain text
        self.tokenizer = tokenizer
        self.size = tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text).ids)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_str(text))


class TextStream:
    """The text of generated tokens as it grows: `push` gives what a new token adds (held back
    while it ends in an incomplete UTF-8 sequence), `finish` what is left at the end."""

    def __init__(self, vocabulary: Vocabulary, prompt: list[int]) -> None:
        self.vocabulary = vocabulary
        self.ids = list(prompt)
        self.shown = len(vocabulary.decode(self.ids))
        self.prompt_length = self.shown

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.vocabulary.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        new, self.shown = text[self.shown :], len(text)
        return new

    def finish(self) -> str:
        """What was held back at the end (an incomplete UTF-8 sequence, as replacement characters)."""
        text = self.vocabulary.decode(self.ids)
        new, self.shown = text[self.shown :], len(text)
        return new

    def generated_text(self) -> str:
        return self.vocabulary.decode(self.ids)[self.prompt_length :]


def byte_vocabulary() -> Vocabulary:
    """Token b is byte b (the byte-level LM of #13): a byte-level BPE without merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {char: b for b, char in enumerate(byte_alphabet())}
    tokenizer = Tokenizer(models.BPE(vocab, []))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    return Vocabulary(tokenizer)


def tokenizer_path(model_path: Path) -> Path:
    """Where a .ggml model's vocabulary is kept: NAME.tokenizer.json beside NAME.ggml."""
    return model_path.with_suffix(".tokenizer.json")


def vocabulary_for(model_path: Path) -> Vocabulary:
    """The vocabulary of a .gguf file (its own) or a .ggml file (NAME.tokenizer.json, else bytes)."""
    if model_path.suffix == ".gguf":
        from prover.model.importers.gguf import open_gguf

        return gguf_vocabulary(open_gguf(model_path).value)
    beside = tokenizer_path(model_path)
    if beside.exists():
        try:
            return Vocabulary.from_json(beside.read_text())
        except Exception as exc:  # tokenizers raises its own Exception type on a bad file
            raise ProverError(f"{beside}: not a tokenizer file ({exc})") from None
    return byte_vocabulary()


def gguf_vocabulary(value: Any) -> Vocabulary:
    """The vocabulary of a GGUF file from its metadata (`value(key, default)` as
    GGUFModel.value)."""
    from tokenizers import AddedToken, processors

    kind = value("tokenizer.ggml.model")
    tokens = [str(t) for t in value("tokenizer.ggml.tokens")]
    types = value("tokenizer.ggml.token_type", [NORMAL] * len(tokens))
    if len(types) != len(tokens):
        raise ProverError(f"tokenizer.ggml.token_type has {len(types)} entries for {len(tokens)} tokens")
    if kind == "llama":
        tokenizer = _sentencepiece(tokens, types, value)
        add_bos = bool(value("tokenizer.ggml.add_bos_token", True))
    elif kind == "gpt2":
        tokenizer = _byte_level_bpe(tokens, value)
        pre = str(value("tokenizer.ggml.pre", "default"))
        add_bos = bool(value("tokenizer.ggml.add_bos_token", pre in IGNORE_MERGES))
    else:
        raise ProverError(
            f"tokenizer.ggml.model {kind!r}: supported are llama (SentencePiece) and gpt2 (BPE)"
        )
    tokenizer.add_tokens(
        [
            AddedToken(t, special=False, normalized=False)
            for t, k in zip(tokens, types, strict=True)
            if k == USER_DEFINED
        ]
    )
    tokenizer.add_special_tokens(
        [
            AddedToken(t, special=True, normalized=False)
            for t, k in zip(tokens, types, strict=True)
            if k in (CONTROL, UNKNOWN)
        ]
    )
    if add_bos:
        bos = int(value("tokenizer.ggml.bos_token_id", 1 if kind == "llama" else 11))
        if not 0 <= bos < len(tokens):
            raise ProverError(f"tokenizer.ggml.bos_token_id {bos} is outside the vocabulary")
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{tokens[bos]} $A", special_tokens=[(tokens[bos], bos)]
        )
    return Vocabulary(tokenizer)


def _sentencepiece(tokens: list[str], types: list[int], value: Any) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers

    scores = value("tokenizer.ggml.scores", [0.0] * len(tokens))
    vocab = {token: index for index, token in reversed(list(enumerate(tokens)))}  # first id of a text
    merges = []
    for piece, score in zip(tokens, scores, strict=True):
        for split in range(1, len(piece)):
            left, right = piece[:split], piece[split:]
            if left in vocab and right in vocab:
                merges.append((-score, vocab[piece], split, (left, right)))
    merges.sort()
    unk = next((t for t, k in zip(tokens, types, strict=True) if k == UNKNOWN), None)
    model = models.BPE(vocab, [m[-1] for m in merges], unk_token=unk, byte_fallback=BYTE in types)
    tokenizer = Tokenizer(model)
    space_prefix = bool(value("tokenizer.ggml.add_space_prefix", True))
    steps = [normalizers.Prepend(SPACE)] if space_prefix else []
    tokenizer.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", SPACE)])
    decode = [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    tokenizer.decoder = decoders.Sequence([*decode, decoders.Strip(" ", 1, 0)] if space_prefix else decode)
    return tokenizer


def _byte_level_bpe(tokens: list[str], value: Any) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    pre = str(value("tokenizer.ggml.pre", "default"))
    if pre not in PRE_TOKENIZERS:
        raise ProverError(f"tokenizer.ggml.pre {pre!r}: supported are {', '.join(PRE_TOKENIZERS)}")
    merges = []
    for merge in value("tokenizer.ggml.merges", []):
        left, _, right = str(merge).partition(" ")
        merges.append((left, right))
    vocab = {token: index for index, token in reversed(list(enumerate(tokens)))}
    tokenizer = Tokenizer(models.BPE(vocab, merges, ignore_merges=pre in IGNORE_MERGES))
    splits = [pre_tokenizers.Split(Regex(pattern), "isolated") for pattern in PRE_TOKENIZERS[pre]]
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([*splits, byte_level])
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer
