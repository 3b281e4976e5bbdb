"""The contracts' committed build artifacts (contracts/artifacts/*.json: ABI, bytecode, compiler,
sources hash) and the developer's build.

Users never compile: the artifacts are committed, and `sources_sha256()` tells when they no longer
match contracts/src (tests fail then). `python -m prover.chain.artifacts build` reruns the pinned
npm solc (contracts/build.js) for developers who changed a contract.
"""

import hashlib
import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from prover.errors import ProverError

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"
SOURCE_DIRS = ("src", "test")


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """The committed build artifact of contract `name` (ABI, bytecode, compiler, sources hash)."""
    path = ARTIFACTS_DIR / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ProverError(
            f"no contract artifact {path}: run `python -m prover.chain.artifacts build`"
        ) from None


def sources_sha256() -> str:
    """The hash contracts/build.js records: sha256 over "<path>\\0<content>\\0" of every .sol
    file under contracts/src and contracts/test, in sorted path order."""
    digest = hashlib.sha256()
    files = sorted(
        f"{folder}/{path.name}" for folder in SOURCE_DIRS for path in (CONTRACTS_DIR / folder).glob("*.sol")
    )
    for name in files:
        digest.update(name.encode() + b"\0" + (CONTRACTS_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()


def build(check: bool = False) -> None:
    """Recompile with the pinned solc (needs node and `npm ci --prefix contracts`). With check,
    only compare against the committed artifacts."""
    node = shutil.which("node")
    if node is None:
        raise ProverError("node is not installed: building the contracts needs node and npm")
    if not (CONTRACTS_DIR / "node_modules" / "solc").is_dir():
        raise ProverError(f"solc is not installed: run `npm ci --prefix {CONTRACTS_DIR}`")
    command = [node, str(CONTRACTS_DIR / "build.js"), *(["--check"] if check else [])]
    if subprocess.run(command, check=False).returncode != 0:
        raise ProverError("contracts/build.js failed" + (" (stale artifacts)" if check else ""))


def main() -> None:
    """`python -m prover.chain.artifacts build [--check]`: the developer's build entry point."""
    args = sys.argv[1:]
    if not args or args[0] != "build" or args[1:] not in ([], ["--check"]):
        sys.exit("usage: python -m prover.chain.artifacts build [--check]")
    try:
        build(check=args[1:] == ["--check"])
    except ProverError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
