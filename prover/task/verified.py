"""A party's run as it can trust it: every file of its base directory checked, or re-derived from
what is still good, before a move depends on it (issue 20: an honest party never loses its bond
to its own machine).

- golden.snapshot: its pages hash to its memRoot (the snapshot format), its state hash is
  golden.json's S0, and S0 is the hash of a fresh task over golden.json's three roots. Lost, it
  is restored from the run's first checkpoint (the same machine), checked against the same S0.
- golden.json: re-derived from golden.snapshot when missing or inconsistent (the roots are read
  off the machine's memory, and must give its state hash as S0).
- checkpoints: each checked against the state hash the trace index recorded when it was written
  (vm/trace.py); a bad one is recomputed from the last good one, a bad index from the golden image.
- final.json: re-derived from the trace's final machine whenever it differs.

Each repair is said in one line through `report`; what cannot be repaired is a ProverError."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prover.errors import ProverError
from prover.task.basedir import CHECKPOINTS, FINAL_JSON, GOLDEN_JSON, GOLDEN_SNAPSHOT, read_json, write_json
from prover.task.golden import golden_of_machine, initial_state_hash
from prover.task.run import DEFAULT_CHECKPOINT_INTERVAL, final_report, record_run
from vm import Machine, SnapshotError
from vm.snapshot import load_snapshot, save_snapshot
from vm.trace import Trace, checkpoint_name

Report = Callable[[str], None]
ROOTS = ("program_root", "input_root", "model_root")


def _golden_json_problem(golden: object) -> str | None:
    """What is wrong with golden.json's content (None: nothing): its S0 must be the initial state
    of its three roots."""
    try:
        s0 = bytes.fromhex(golden["S0"][2:])
        roots = [bytes.fromhex(golden[name][2:]) for name in ROOTS]
    except (TypeError, KeyError, ValueError, IndexError):
        return "not a golden image's description"
    # As written: a flipped case bit ('a' -> 'A') reads as the same bytes but not the same text,
    # and later checks compare the text.
    if [golden[name] for name in ("S0", *ROOTS)] != ["0x" + value.hex() for value in (s0, *roots)]:
        return "its hashes are not written as prover writes them"
    if initial_state_hash(*roots) != s0:
        return "its S0 is not the initial state of its roots"
    return None


def _golden_machine(path: Path, golden: dict | None) -> tuple[Machine | None, str]:
    """The machine of a snapshot file, if it loads (pages against memRoot) and, when golden.json
    is sound, has its S0 as state hash; else None and what is wrong."""
    try:
        machine = load_snapshot(path)
    except SnapshotError as exc:
        return None, str(exc)
    if golden is not None and "0x" + machine.state_hash().hex() != golden["S0"]:
        return None, f"{path}: its state is not golden.json's S0"
    return machine, ""


def verified_golden(basedir: Path, report: Report) -> tuple[Machine, dict]:
    """The golden machine and golden.json, each checked against the other: a sound golden.json
    (its S0 the initial state of its roots) judges the snapshot, restored from the first
    checkpoint if it fails; an unsound one is written again from the snapshot."""
    golden_path, snapshot_path = basedir / GOLDEN_JSON, basedir / GOLDEN_SNAPSHOT
    try:
        golden = read_json(golden_path, "a golden image (run `prover golden` first)")
        problem = _golden_json_problem(golden)
        if problem is not None:
            problem = f"{golden_path}: {problem}"
    except ProverError as exc:
        golden, problem = None, str(exc)
    sound = golden if problem is None else None
    machine, machine_problem = _golden_machine(snapshot_path, sound)
    if machine is None and sound is not None:
        first_path = basedir / CHECKPOINTS / checkpoint_name(0)
        first, _ = _golden_machine(first_path, sound)
        if first is not None:
            save_snapshot(first, snapshot_path)
            report(f"{machine_problem}; restored from {first_path}")
            return first, sound
    if machine is None:
        raise ProverError(f"{machine_problem}; the golden image is lost: run `prover golden` again")
    if problem is not None:
        image = golden_of_machine(machine)
        if image is None:
            raise ProverError(f"{snapshot_path}: not a golden image (its state is not the S0 of its roots)")
        golden = image.to_json()
        write_json(golden_path, golden)
        report(f"{problem}; written again from {snapshot_path}")
    return machine, golden


@dataclass(frozen=True)
class VerifiedRun:
    golden: dict  # golden.json
    trace: Trace
    final: dict  # final.json


def verified_run(basedir: Path, report: Report) -> VerifiedRun:
    """The golden image, the checkpointed trace and final.json, each checked (and repaired)."""
    machine, golden = verified_golden(basedir, report)
    if not (basedir / CHECKPOINTS).exists() and not (basedir / FINAL_JSON).exists():
        raise ProverError(
            f"{basedir}: no run of the golden image; run `prover run --basedir {basedir}` first"
        )
    trace = _verified_trace(basedir, machine, report)
    return VerifiedRun(golden, trace, _verified_final(basedir, trace, report))


def _verified_trace(basedir: Path, machine: Machine, report: Report) -> Trace:
    """The run's checkpointed trace, every checkpoint checked; recomputed from the last good
    checkpoint, or from the golden image `machine` when the index itself is lost."""
    try:
        return Trace.load(basedir / CHECKPOINTS, start=machine, report=report)
    except SnapshotError as exc:
        report(f"{exc}; running the golden image again")
    record_run(basedir, machine, DEFAULT_CHECKPOINT_INTERVAL, progress=False)
    return Trace.load(basedir / CHECKPOINTS)


def _verified_final(basedir: Path, trace: Trace, report: Report) -> dict:
    """final.json as the trace's final machine says it (written again if it says otherwise)."""
    machine = trace.machine_at(trace.steps)
    if machine.state.encode() != trace.final_state:
        raise ProverError(f"{basedir / CHECKPOINTS}: the run does not end in the state its index records")
    final = final_report(machine)
    path = basedir / FINAL_JSON
    try:
        recorded = read_json(path, "a finished run (run `prover run` first)")
    except ProverError as exc:
        recorded, problem = None, str(exc)
    else:
        problem = f"{path}: not the run's final state and output"
    if recorded != final:
        write_json(path, final)
        report(f"{problem}; written again from the checkpoints")
    return final
