"""`prover generate`: greedy decoding with the numpy engine on a small random int8 causal LM, the
text printed as it grows, --json with the token ids, --verify running each forward pass as a task
in the VM; bad models and prompts are one error line."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from prover.cli.main import cli
from prover.model.engine import run
from prover.model.generate import LanguageModel
from prover.model.modelfile import load_model, save_model
from prover.model.network import Linear, Network
from prover.model.quantize import quantize
from prover.model.sequence_layers import Embedding, LayerNorm, PositionalEmbedding, TransformerBlock

CONTEXT = 8


@pytest.fixture(scope="module")
def lm_file(tmp_path_factory: pytest.TempPathFactory):
    net = Network(
        (CONTEXT,),
        [
            Embedding(256, 16),
            PositionalEmbedding(),
            TransformerBlock(2, 16, 32, causal=True),
            LayerNorm(),
            Linear(256),
        ],
    )
    f32 = net.to_graph(net.init_parameters(3), {"name": "tiny-lm"})
    path = tmp_path_factory.mktemp("lm") / "lm.ggml"
    save_model(quantize(f32, np.random.default_rng(0).integers(0, 256, (50, CONTEXT))), path)
    return path


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def greedy(path, prompt: bytes, count: int) -> list[int]:
    """Greedy decoding written out here: one engine pass per token over the padded window."""
    graph = load_model(path)
    tokens = list(prompt)
    for _ in range(count):
        kept = tokens[-CONTEXT:]
        logits = run(graph, np.array(kept + [0] * (CONTEXT - len(kept)))[None])[0].reshape(CONTEXT, 256)
        tokens.append(int(np.argmax(logits[len(kept) - 1])))
    return tokens[len(prompt) :]


def test_json_gives_ids_and_text(lm_file) -> None:
    result = invoke("generate", "--model", lm_file, "--prompt", "import os", "--tokens", 12, "--json")
    assert result.exit_code == 0, result.output
    fields = json.loads(result.output)
    assert fields["prompt_ids"] == list(b"import os")
    assert fields["ids"] == greedy(lm_file, b"import os", 12)  # past the context of 8: windows slide
    assert fields["text"] == bytes(fields["ids"]).decode("utf-8", "replace")


def test_text_grows_after_the_prompt(lm_file) -> None:
    result = invoke("generate", "--model", lm_file, "--prompt", "x", "--tokens", 3)
    assert result.exit_code == 0, result.output
    text = bytes(greedy(lm_file, b"x", 3)).decode("utf-8", "replace")
    assert result.output.startswith("x" + text)
    assert "3 tokens" in result.output


def test_verify_runs_each_pass_in_the_vm(lm_file, tmp_path) -> None:
    result = invoke(
        "generate",
        "--model",
        lm_file,
        "--prompt",
        "ab",
        "--tokens",
        2,
        "--verify",
        "--basedir",
        tmp_path,
        "--json",
    )
    assert result.exit_code == 0, result.output
    passes = json.loads(result.output)["verified"]
    assert len(passes) == 2 and all(p["steps"] > 0 and p["S0"] != p["SN"] for p in passes)
    assert (tmp_path / "token-1" / "final.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", ""], "the prompt is empty"),
        (["--prompt", "x", "--model", "models/mlp_int8.ggml"], "not a language model"),
    ],
)
def test_bad_input_is_one_error_line(lm_file, args: list[str], message: str) -> None:
    options = ["--model", lm_file, *args] if "--model" not in args else args
    result = invoke("generate", *options)
    assert result.exit_code != 0
    assert message in result.output or message in str(result.exception)


def test_window_pads_and_slides(lm_file) -> None:
    lm = LanguageModel(load_model(lm_file))
    assert lm.window([5, 6]).tolist() == [5, 6, 0, 0, 0, 0, 0, 0] and lm.position([5, 6]) == 1
    assert lm.window(list(range(10))).tolist() == list(range(2, 10)) and lm.position(list(range(10))) == 7
