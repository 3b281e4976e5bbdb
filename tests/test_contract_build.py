"""The committed contract artifacts are what the pinned compiler makes of the committed sources."""

import json
import shutil
import subprocess

import pytest

from prover.chain.artifacts import ARTIFACTS_DIR, CONTRACTS_DIR, load_artifact, sources_sha256

DEPLOYABLE = ("MIPS", "DisputeGame", "ReentrantPayee", "StepBatch")


def test_every_artifact_records_the_current_sources() -> None:
    """Fails when a .sol file changed without `python -m prover.chain.artifacts build`."""
    current = sources_sha256()
    for path in sorted(ARTIFACTS_DIR.glob("*.json")):
        recorded = json.loads(path.read_text())["sourcesSha256"]
        rebuild = "python -m prover.chain.artifacts build"
        assert recorded == current, f"{path.name} is stale: rebuild with `{rebuild}`"


def test_artifacts_name_the_pinned_compiler() -> None:
    pinned = json.loads((CONTRACTS_DIR / "package.json").read_text())["dependencies"]["solc"]
    lock = json.loads((CONTRACTS_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/solc"]["version"] == pinned
    for name in DEPLOYABLE:
        artifact = load_artifact(name)
        assert artifact["compiler"]["version"].startswith(pinned + "+commit.")
        assert artifact["settings"]["evmVersion"] == "cancun"
        assert artifact["bytecode"].startswith("0x") and len(artifact["deployedBytecode"]) > 2


@pytest.mark.skipif(
    not (CONTRACTS_DIR / "node_modules" / "solc").is_dir() or shutil.which("node") is None,
    reason="the pinned solc is not installed (npm ci --prefix contracts)",
)
def test_a_fresh_build_reproduces_the_committed_artifacts() -> None:
    result = subprocess.run(
        ["node", str(CONTRACTS_DIR / "build.js"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
