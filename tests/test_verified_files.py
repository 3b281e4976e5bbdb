"""A party's local files, each kind of damage alone (tests/fault_injection.py's CORRUPTIONS, three
draws each), never change what the party plays from: its run loads with the same claim and the
same trace hashes, and each repair is said in at most a few warning lines. The fault-injection
games check the same under kills and proxies; this checks every kind on every draw, directly."""

import json
import random
import shutil
from pathlib import Path

import pytest
from dispute_helpers import honest_run, tiny_run
from fault_injection import GRAPH_CORRUPTIONS, VALUES_CORRUPTIONS, VM_CORRUPTIONS, corrupt

from prover.game.party import load_run

DRAWS = 3


def loaded(basedir: Path) -> tuple[tuple, list[str]]:
    lines: list[str] = []
    run, trace = load_run(basedir, lines.append)
    probes = [trace.state_hash_at(step) for step in (0, 1, run.steps // 2, run.steps)]
    return (run.roots, run.steps, run.output, run.final_hash, probes), lines


def check_every_kind(run: Path, kinds: dict, tmp_path: Path) -> None:
    expected, _ = loaded(run)
    for kind in kinds:
        for draw in range(DRAWS):
            party = tmp_path / "party"
            shutil.rmtree(party, ignore_errors=True)
            shutil.copytree(run, party)
            assert corrupt(party, kind, random.Random(draw)), (kind, "nothing to corrupt")
            got, lines = loaded(party)
            assert got == expected, (kind, draw, lines)
            assert len(lines) <= 3, (kind, draw, lines)
            assert loaded(party) == (expected, []), (kind, draw)  # repaired for good


def test_every_damage_of_a_single_phase_run(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    check_every_kind(tiny_run(tmp_path_factory), VM_CORRUPTIONS, tmp_path)


def test_every_damage_of_a_graph_run(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = honest_run("mlp", tmp_path_factory, phases="multi")
    # The party's own commitment cache, where fault_injection.commitment_cache finds it.
    monkeypatch.setenv("PROVER_COMMITMENT_CACHE", str(tmp_path / "cache-party"))
    check_every_kind(run, {**GRAPH_CORRUPTIONS, **VALUES_CORRUPTIONS}, tmp_path)


@pytest.mark.parametrize("field", ["S0", "input_root"])
def test_a_case_flipped_hash_in_golden_json(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, field: str
) -> None:
    """'a' -> 'A' in a hash reads as the same bytes but not as the same text: golden.json is
    written again from the golden image, in one line."""
    party = tmp_path / "party"
    run = tiny_run(tmp_path_factory)
    expected, _ = loaded(run)
    shutil.copytree(run, party)
    golden = json.loads((party / "golden.json").read_text())
    letter = next(index for index, char in enumerate(golden[field]) if char in "abcdef")
    golden[field] = golden[field][:letter] + golden[field][letter].upper() + golden[field][letter + 1 :]
    (party / "golden.json").write_text(json.dumps(golden))
    got, lines = loaded(party)
    assert got == expected and len(lines) == 1 and "not written as prover writes them" in lines[0]
