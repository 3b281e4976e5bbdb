"""The byte-level LM of scripts/train_lm.py (models/lm_f32.ggml) as a GGUF file of llama.cpp's
`gpt2` architecture, the one whose layers it has (learned positions, pre-norm LayerNorm with bias,
fused qkv, GELU MLP); prover.model.importers.gguf_import reads it back to the same graph.

    export_gguf(load_model(Path("models/lm_f32.ggml")), Path("lm.gguf"))

It is not LLaMA-shaped (no RMSNorm, RoPE, SwiGLU), so it maps to `gpt2`, not `llama`. What does
not map: its output head has a bias, which llama.cpp's gpt2 lacks (written as `output.bias`, so
llama.cpp refuses the file: one tensor too many), and its GELU is erf's where llama.cpp's is the
tanh approximation. Its vocabulary is the 256 bytes, written as a byte-level BPE without merges
(token b is byte b); gguf's writer leaves an empty tokenizer.ggml.merges out, and llama.cpp refuses
a gpt2 vocabulary without that key (a merge would need a 257th token), a second reason llama.cpp
does not load this file. Our reader takes the absent key as no merges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prover.errors import ProverError
from prover.model.graph import Graph, Op
from prover.model.sequence_layers import LAYERNORM_EPS
from prover.model.vocabulary import byte_alphabet

# our parameter name (layer index stripped) -> llama.cpp's tensor name within a block
BLOCK_NAMES = {
    "ln1": "attn_norm",
    "qkv": "attn_qkv",
    "proj": "attn_output",
    "ln2": "ffn_norm",
    "fc1": "ffn_up",
    "fc2": "ffn_down",
}


def export_gguf(graph: Graph, path: Path, tensor_type: str = "f32") -> None:
    """Write the f32 byte-level LM `graph` (prover.model.sequence_layers' names) as GGUF, its
    matrices as F32 or Q8_0 (`tensor_type` "f32" or "q8_0"; vectors stay F32, as llama.cpp's)."""
    from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType, TokenType, quantize

    if graph.metadata.get("mode") != "f32":
        raise ProverError("only an f32 language model can be exported to GGUF")
    stored = {t.name: t.data.astype(np.float32) for t in graph.tensors if t.data is not None}
    blocks = sorted({name.split(".")[0] for name in stored if name.endswith(".qkv.weight")}, key=int)
    if not blocks:
        raise ProverError("not a transformer language model: no qkv weights")
    embedding, positions = str(int(blocks[0]) - 2), str(int(blocks[0]) - 1)
    final, head = str(int(blocks[-1]) + 1), str(int(blocks[-1]) + 2)
    vocab, dim = stored[f"{embedding}.weight"].shape
    context = stored[f"{positions}.weight"].shape[0]
    attention = next(n for n in graph.nodes if n.op == Op.MATMUL)
    heads = graph.tensors[attention.inputs[0]].dims[2]

    if tensor_type not in ("f32", "q8_0"):
        raise ProverError(f"GGUF tensor type {tensor_type!r}: f32 or q8_0")
    writer = GGUFWriter(str(path), "gpt2")
    writer.add_name(str(graph.metadata.get("name", "lm")))
    writer.add_file_type(LlamaFileType.ALL_F32 if tensor_type == "f32" else LlamaFileType.MOSTLY_Q8_0)

    def add(name: str, value: np.ndarray) -> None:
        if tensor_type == "f32" or value.ndim == 1 or value.shape[-1] % 32:
            writer.add_tensor(name, value)
        else:
            q8_0 = GGMLQuantizationType.Q8_0
            writer.add_tensor(name, quantize(value, q8_0), raw_dtype=q8_0)

    writer.add_context_length(context)
    writer.add_embedding_length(dim)
    writer.add_block_count(len(blocks))
    writer.add_feed_forward_length(stored[f"{blocks[0]}.fc1.weight"].shape[0])
    writer.add_head_count(heads)
    writer.add_layer_norm_eps(LAYERNORM_EPS)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(byte_alphabet()[:vocab])
    writer.add_token_types([TokenType.NORMAL] * vocab)
    writer.add_token_merges([])
    writer.add_add_bos_token(False)
    add("token_embd.weight", stored[f"{embedding}.weight"])
    add("position_embd.weight", stored[f"{positions}.weight"])
    for i, block in enumerate(blocks):
        for ours, theirs in BLOCK_NAMES.items():
            for kind in ("weight", "bias"):
                add(f"blk.{i}.{theirs}.{kind}", stored[f"{block}.{ours}.{kind}"])
    add("output_norm.weight", stored[f"{final}.weight"])
    add("output_norm.bias", stored[f"{final}.bias"])
    add("output.weight", stored[f"{head}.weight"])
    add("output.bias", stored[f"{head}.bias"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
