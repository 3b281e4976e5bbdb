"""State files of a party's base directory, written atomically: a command killed at any moment
leaves either the old file or the new one, never a torn one (prover.files).

The names of what `prover golden` and `prover run` leave there are here too, so that the chain
commands find a party's run without importing the run commands (numpy and the model code: a
quarter of a chain command's start-up)."""

import json
from pathlib import Path
from typing import Any

from prover.errors import ProverError
from prover.files import write_atomically

GOLDEN_JSON = "golden.json"
GOLDEN_SNAPSHOT = "golden.snapshot"
FINAL_JSON = "final.json"
CHECKPOINTS = "checkpoints"
GRAPH_JSON = "graph.json"  # a graph run (`prover graph`): the base directory plays multi-phase games
GRAPH_VALUES = "graph.values"  # the graph run's node values and states (graph_trace.trace_pieces)


def write_json(path: Path, data: Any) -> None:
    """Replace `path` with `data` as indented JSON, atomically."""
    write_atomically(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path, what: str) -> Any:
    """The JSON in `path`; a missing or malformed file is a ProverError naming `what` it should be
    (e.g. "the deployment (run `prover deploy` first)")."""
    try:
        with open(path) as file:
            return json.load(file)
    except FileNotFoundError:
        raise ProverError(f"{path}: no such file; expected {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProverError(f"{path}: not valid JSON ({exc}); expected {what}") from None
