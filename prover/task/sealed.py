"""A record that no single damaged file can lose (issue 20): written twice, as FILE and its copy
FILE.copy, each with the sha256 digest of its content, and read back from whichever of the two
still matches its digest, the other written again with one report line.

graph.json is such a record: a graph task's input payload is nowhere else on the party's machine
(a single-phase run has its golden image and the first checkpoint to rebuild each other), so one
flipped bit or a deleted file would otherwise leave an honest party unable to move in its game.
The digest is over the canonical JSON (sorted keys, no spaces) without the `digest` field itself,
so a record is judged by its content, not its layout. Light on purpose: the chain commands read
it before they import the model code."""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prover.errors import ProverError
from prover.task.basedir import read_json, write_json

DIGEST = "digest"


def copy_path(path: Path) -> Path:
    return path.with_name(path.name + ".copy")


def _digest(record: dict) -> str:
    content = {name: value for name, value in record.items() if name != DIGEST}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_sealed(path: Path, record: dict) -> None:
    """Write `record` (without a digest field) to `path` and its copy, each atomically, with the
    digest. The file comes first: killed in between, the file is the newer and the reader keeps it."""
    sealed = {**record, DIGEST: _digest(record)}
    write_json(path, sealed)
    write_json(copy_path(path), sealed)


def sealed_exists(path: Path) -> bool:
    return path.exists() or copy_path(path).exists()


def remove_sealed(path: Path) -> None:
    path.unlink(missing_ok=True)
    copy_path(path).unlink(missing_ok=True)


def _checked(path: Path, what: str) -> tuple[dict | None, str]:
    """The record in `path` if it matches its digest, else None and what is wrong with it."""
    try:
        record = read_json(path, what)
    except ProverError as exc:
        return None, str(exc)
    if not isinstance(record, dict) or record.get(DIGEST) != _digest(record):
        return None, f"{path}: its content does not match its digest (damaged)"
    return record, ""


def read_sealed(path: Path, what: str, report: Callable[[str], None]) -> dict[str, Any]:
    """The record of `path` (without its digest): the file if it is sound, else its copy; the
    damaged or older one of the two is written again from the other and said in one line. Both
    damaged is a ProverError naming both problems and `what` the record should be."""
    record, problem = _checked(path, what)
    copy, copy_problem = _checked(copy_path(path), what)
    if record is None and copy is None:
        raise ProverError(f"{problem}; {copy_problem}: {what} is lost")
    if record is None:
        write_json(path, copy)
        report(f"{problem}; restored from {copy_path(path)}")
        record = copy
    elif copy != record:
        write_json(copy_path(path), record)
        report(f"{copy_problem or f'{copy_path(path)}: older than {path.name}'}; written again from {path}")
    return {name: value for name, value in record.items() if name != DIGEST}
