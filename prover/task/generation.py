"""Generation claims (docs/dispute-game.md, "Generation claims"): a prompt and the N tokens a
language model generates from it greedily, claimed as ONE graph task, the causal forward pass over
the prompt and the first N - 1 generated tokens (padded with id 0 to the graph's T positions),
answered by GREEDY (prover/model/answer.py).

    claim = write_generation_claim(basedir, model_path, prompt, count)      # the submitter
    claim = write_generation_claim(basedir, model_path, prompt, count, claimed=tokens)  # a checker

The party decodes natively with the KV cache (prover/model/decode.py: prefill, then one position
per token), then writes the graph task of the window and its run (graph.json, as `prover graph`),
the run's node values taken from the decode (the positions past the tokens decoded in one step)
and generation.json: the prompt, the tokens it generated, the tokens the claim states and whether
the claim's answer is a greedy generation of them. A checker (`claimed`) builds the task of the
tokens another party claims, so both play the same task, and learns whether its own decode agrees.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from prover.errors import ProverError
from prover.model.answer import generation
from prover.model.decode import CachedDecoder, rows_are_exact
from prover.model.modelfile import load_model
from prover.model.tiling import DEFAULT_TILE_MACS
from prover.task.basedir import write_json
from prover.task.graph_run import tiled_model, warn_on_stderr, write_graph_task_and_run

GENERATION_JSON = "generation.json"


def claim_window(prompt: list[int], tokens: list[int], positions: int) -> np.ndarray:
    """The forward pass's ids: the prompt, the generated tokens but the last, zeros to the end."""
    ids = list(prompt) + list(tokens[:-1])
    if not prompt or not tokens or len(ids) > positions:
        raise ProverError(
            f"a prompt of {len(prompt)} and {len(tokens)} tokens need {len(ids)} positions (>= 1 each); "
            f"the model computes {positions}"
        )
    return np.array(ids + [0] * (positions - len(ids)), np.int32)


def write_generation_claim(
    basedir: Path,
    model_path: Path,
    prompt: list[int],
    count: int,
    claimed: list[int] | None = None,
    tile_macs: int = DEFAULT_TILE_MACS,
    fault_node: int | None = None,
    warn: Callable[[str], None] = warn_on_stderr,
    progress: bool = True,
) -> dict[str, object]:
    """Decode `count` tokens after `prompt`, write the graph task of the claimed tokens (`claimed`,
    else this decode's) and its run, and generation.json; returns generation.json."""
    if claimed is not None and len(claimed) != count:
        raise ProverError(f"the claim states {len(claimed)} tokens, not {count}")
    graph = load_model(model_path)
    model = tiled_model(model_path, graph, tile_macs, warn, progress, fault_node)
    # Recording: the claim's forward pass is then assembled from the decode's rows, not computed again.
    decoder = CachedDecoder(graph, record=rows_are_exact(graph))
    tokens = decoder.generate(prompt, count)
    stated = tokens if claimed is None else list(claimed)
    window = claim_window(prompt, stated, decoder.context)
    known = decoder.forward_values([int(i) for i in window]) if decoder.record else None
    payload = window.astype(">i4").tobytes()
    run = write_graph_task_and_run(basedir, model, payload, fault_node, known)
    try:
        _, answered = generation(bytes.fromhex(str(run["output"])[2:]), len(prompt), count)
        greedy = answered == stated
    except ProverError:
        answered, greedy = None, False
    record = {
        "model": str(model_path.resolve()),
        "vocabulary": decoder.vocabulary,
        "prompt": list(prompt),
        "tokens": tokens,
        "claimed": stated,
        "answered": answered,
        "greedy": greedy,
        "agrees": tokens == stated,
        "node_count": run["node_count"],
        "fault_node": fault_node,
    }
    write_json(basedir / GENERATION_JSON, record)
    return record
