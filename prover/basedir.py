"""State files of a party's base directory, written atomically: a command killed at any moment
leaves either the old file or the new one, never a torn one (temporary file in the same
directory, flushed to disk, then os.replace)."""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from prover.errors import ProverError


def write_json(path: Path, data: Any) -> None:
    """Replace `path` with `data` as indented JSON, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w") as file:
            json.dump(data, file, indent=2, sort_keys=True)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
