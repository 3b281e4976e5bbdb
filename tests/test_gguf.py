"""GGUF in (prover/model/importers/gguf*.py) and language-model text (prover/model/vocabulary.py):
small random LLaMA files written here with gguf's writer are read memory-mapped with F32, F16 and
Q8_0 tensors, converted by `prover convert --from gguf`, decoded by `prover generate --model
m.gguf`, quantized on text; the byte-level LM of #13 goes to GGUF and back unchanged; bad files
are one error line and write nothing."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from gguf_files import PROMPTS, TEXTS, SmallLlama, trained_tokenizer, write_llama_gguf

from prover.cli.main import cli
from prover.errors import ProverError
from prover.model import engine
from prover.model.decode import CachedDecoder
from prover.model.importers.gguf import open_gguf
from prover.model.importers.gguf_export import export_gguf
from prover.model.importers.gguf_import import import_gguf, import_gguf_deferred
from prover.model.modelfile import load_model, save_model, write_model
from prover.model.vocabulary import byte_vocabulary, tokenizer_path, vocabulary_for

POSITIONS = 16


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], object]:
    directory = tmp_path_factory.mktemp("gguf")
    return {
        (kind, tensor_type): write_llama_gguf(directory / f"{kind}_{tensor_type}.gguf", tensor_type, kind)
        for kind in ("llama", "gpt2")
        for tensor_type in ("f32", "f16", "q8_0")
    }


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_tensors_read_back_per_type(files) -> None:
    from gguf import GGMLQuantizationType, dequantize, quantize

    f32 = open_gguf(files["llama", "f32"]).tensors
    for tensor_type in ("f16", "q8_0"):
        other = open_gguf(files["llama", tensor_type]).tensors
        assert other.type_name("blk.0.attn_q.weight") == tensor_type.upper()
        assert other.type_name("blk.0.attn_norm.weight") == "F32"
        for name in ("token_embd.weight", "blk.1.ffn_down.weight", "output.weight"):
            exact = f32[name]
            if tensor_type == "f16":
                expected = exact.astype(np.float16).astype(np.float32)
            else:
                expected = dequantize(quantize(exact, GGMLQuantizationType.Q8_0), GGMLQuantizationType.Q8_0)
            assert other[name].shape == exact.shape and other[name].dtype == np.float32
            assert np.array_equal(other[name], expected)
    assert isinstance(f32["output.weight"], np.memmap)  # F32 is the mapped file itself, no copy


def test_hyper_parameters_come_from_the_metadata(files) -> None:
    graph = import_gguf(files["llama", "f32"], POSITIONS)
    c = SmallLlama()
    assert graph.metadata["llama_dim"] == c.dim and graph.metadata["llama_kv_heads"] == c.kv_heads
    assert graph.metadata["llama_ffn_dim"] == c.ffn_dim and graph.metadata["llama_context"] == c.context
    assert graph.tensors[graph.input].dims == (POSITIONS,)
    assert graph.tensors[graph.output].dims == (vocabulary_for(files["llama", "f32"]).size, POSITIONS)


def test_f16_and_q8_0_stay_close_to_f32(files) -> None:
    ids = np.array([vocabulary_for(files["llama", "f32"]).encode(PROMPTS[0])[:POSITIONS]], np.int32)
    ids = np.pad(ids, ((0, 0), (0, POSITIONS - ids.shape[1])))
    logits = {
        t: engine.run(import_gguf(files["llama", t], POSITIONS), ids)[0] for t in ("f32", "f16", "q8_0")
    }
    scale = np.abs(logits["f32"]).max()
    assert 0 < np.abs(logits["f16"] - logits["f32"]).max() < 2e-3 * scale
    assert 0 < np.abs(logits["q8_0"] - logits["f32"]).max() < 5e-2 * scale


@pytest.mark.parametrize("tensor_type", ["f32", "f16", "q8_0"])
def test_f16_and_q8_0_weights_are_converted_one_at_a_time_as_written(files, tmp_path, tensor_type) -> None:
    """`prover convert`'s graph holds zero-stride placeholders (no memory) for the F16 and Q8_0
    weights, each converted when save_model writes it: the file import_gguf's graph gives."""
    path = files["llama", tensor_type]
    graph, fill = import_gguf_deferred(path, POSITIONS)
    tensors = open_gguf(path).tensors
    converted = {name for name in tensors if tensors.type_name(name) != "F32"}
    placeholders = {t.name for t in graph.tensors if t.data is not None and not any(t.data.strides)}
    assert placeholders == converted and (tensor_type == "f32") == (not converted)
    save_model(graph, tmp_path / "m.ggml", fill)
    assert (tmp_path / "m.ggml").read_bytes() == write_model(import_gguf(path, POSITIONS))


def test_convert_writes_the_graph_and_its_vocabulary(files, tmp_path) -> None:
    out = tmp_path / "m.ggml"
    result = invoke(
        "convert", "--from", "gguf", files["llama", "q8_0"], out, "--positions", POSITIONS, "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["mode"] == "f32"
    assert write_model(load_model(out)) == write_model(import_gguf(files["llama", "q8_0"], POSITIONS))
    vocabulary = vocabulary_for(out)
    assert tokenizer_path(out).exists()
    assert all(vocabulary.encode(t) == vocabulary_for(files["llama", "q8_0"]).encode(t) for t in TEXTS)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_vocabulary_round_trips_text(files, kind: str) -> None:
    vocabulary = vocabulary_for(files[kind, "f32"])
    for text in TEXTS:
        ids = vocabulary.encode(text)
        assert vocabulary.decode(ids) == text
        assert all(0 <= i < vocabulary.size for i in ids)
    if kind == "llama":  # BOS first (add_bos_token), "<s>" in the text is plain text, a space before
        ids = vocabulary.encode("<s> the")
        assert ids[0] == 1 and 1 not in ids[1:]
        assert vocabulary.tokenizer.id_to_token(ids[1]).startswith("▁")
        assert vocabulary.encode("") == [1]
        # characters without a piece fall back to <0xXX> byte tokens: the snowman is 3 bytes
        snowman = [vocabulary.tokenizer.id_to_token(i) for i in vocabulary.encode("☃")[1:]]
        assert snowman[-3:] == ["<0xE2>", "<0x98>", "<0x83>"]
    else:  # no BOS; the pieces the vocabulary learned are whole tokens
        assert vocabulary.encode("") == []
        trained = trained_tokenizer("gpt2", 400)  # the tokenizer the file's vocabulary and merges came from
        assert all(vocabulary.encode(t) == trained.encode(t).ids for t in TEXTS)


def test_byte_vocabulary_is_the_bytes() -> None:
    vocabulary = byte_vocabulary()
    text = "héllo ☃\n\t"
    assert vocabulary.encode(text) == list(text.encode()) and vocabulary.decode(list(text.encode())) == text


def test_byte_lm_goes_to_gguf_and_back(tmp_path) -> None:
    lm = load_model("models/lm_f32.ggml")
    export_gguf(lm, tmp_path / "lm.gguf")
    back = import_gguf(tmp_path / "lm.gguf")
    back.metadata = dict(lm.metadata)
    assert write_model(back) == write_model(lm)  # every tensor and node as before
    assert vocabulary_for(tmp_path / "lm.gguf").encode("import os\n") == list(b"import os\n")


def test_generate_streams_through_the_files_vocabulary(files) -> None:
    path = files["llama", "f16"]
    result = invoke("generate", "--model", path, "--prompt", PROMPTS[1], "--tokens", 6, "--json")
    assert result.exit_code == 0, result.output
    fields = json.loads(result.output)
    vocabulary = vocabulary_for(path)
    assert fields["prompt_ids"] == vocabulary.encode(PROMPTS[1])
    assert fields["ids"] == CachedDecoder(import_gguf(path)).generate(fields["prompt_ids"], 6)
    assert fields["text"] == vocabulary.decode(fields["prompt_ids"] + fields["ids"])[len(PROMPTS[1]) :]
    shown = invoke("generate", "--model", path, "--prompt", PROMPTS[1], "--tokens", 6)
    assert shown.exit_code == 0 and shown.output.startswith(PROMPTS[1] + fields["text"])


def test_quantize_on_text_keeps_greedy_tokens_mostly(files, tmp_path) -> None:
    f32, int8 = tmp_path / "m_f32.ggml", tmp_path / "m_int8.ggml"
    assert (
        invoke("convert", "--from", "gguf", files["llama", "f32"], f32, "--positions", POSITIONS).exit_code
        == 0
    )
    text = tmp_path / "text.txt"
    text.write_text(" ".join(TEXTS) * 3)
    result = invoke("quantize", "--model", f32, "--out", int8, "--calibration-text", text, "--calibration", 8)
    assert result.exit_code == 0, result.output
    assert "windows of" in result.output and tokenizer_path(int8).exists()
    default = invoke("quantize", "--model", f32, "--out", tmp_path / "d.ggml", "--calibration", 4)
    assert default.exit_code == 0 and "the default text" in default.output
    graph = load_model(int8)
    assert graph.metadata["mode"] == "int8"
    generated = invoke("generate", "--model", int8, "--prompt", PROMPTS[0], "--tokens", 3, "--json")
    assert generated.exit_code == 0, generated.output


def _write_with(path, architecture: str = "llama", drop: str = "", bad_type: bool = False) -> None:
    from gguf import GGMLQuantizationType, GGUFWriter, quantize

    source = open_gguf(write_llama_gguf(path.with_suffix(".src.gguf"))).reader
    writer = GGUFWriter(str(path), architecture)
    for key, field in source.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value = field.contents()
        if key.startswith("llama."):
            key = f"{architecture}.{key[len('llama.') :]}"
        writer.add_key_value(key, value, field.types[0], field.types[-1] if len(field.types) > 1 else None)
    for tensor in source.tensors:
        data = np.array(tensor.data).reshape(tuple(reversed(tensor.shape.tolist())))
        if tensor.name == drop:
            continue
        if bad_type and tensor.name == "output.weight":
            writer.add_tensor(
                tensor.name, quantize(data, GGMLQuantizationType.Q4_0), raw_dtype=GGMLQuantizationType.Q4_0
            )
        else:
            writer.add_tensor(tensor.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("falcon", "unsupported architecture 'falcon'"),
        ("q4_0", "tensor output.weight: unsupported type Q4_0"),
        ("missing", "blk.1.ffn_up.weight is missing"),
        ("truncated", "truncated"),
        ("not gguf", "not a readable GGUF file"),
    ],
)
def test_bad_files_are_one_error_line(files, tmp_path, damage: str, message: str) -> None:
    path, out = tmp_path / "bad.gguf", tmp_path / "out.ggml"
    if damage == "falcon":
        _write_with(path, "falcon")
    elif damage == "q4_0":
        _write_with(path, bad_type=True)
    elif damage == "missing":
        _write_with(path, drop="blk.1.ffn_up.weight")
    elif damage == "truncated":
        data = files["llama", "q8_0"].read_bytes()
        path.write_bytes(data[: len(data) - 1000])
    else:
        shutil.copy("models/lm_f32.ggml", path)
    command = [sys.executable, "-m", "prover.cli", "convert", "--from", "gguf", str(path), str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and message in lines[0], done.stderr
    assert not out.exists() and not tokenizer_path(out).exists()
    with pytest.raises(ProverError, match=message.split("'")[0]):
        import_gguf(path)
