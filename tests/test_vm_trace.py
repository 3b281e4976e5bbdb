"""Snapshots and checkpointed traces: round trips, and every step's state and witness equal to
stepping from the start."""

from pathlib import Path

import pytest
from eth_abi import decode
from vm_asm import SYSCALL, T0, T1, T2, V0, addiu, code, i_type, r_type

from vm import Machine, SnapshotError
from vm.hashing import keccak
from vm.memory import verify_proof
from vm.snapshot import (
    decode_snapshot,
    encode_snapshot,
    load_snapshot,
    machine_from_bytes,
    machine_to_bytes,
    save_snapshot,
)
from vm.trace import Trace

CODE = 0x00400000
DATA = 0x10000000
ITERATIONS = 40


def program() -> Machine:
    """A loop storing into a fresh page every iteration (so checkpoints differ in their pages),
    then exit_group(0)."""
    words = [
        i_type(15, T0, 0, DATA >> 16),  # lui t0, DATA
        addiu(T1, 0, ITERATIONS),
        # loop:
        i_type(0x2B, T1, T0, 0),  # sw t1, 0(t0)
        i_type(0x28, T1, T0, 5),  # sb t1, 5(t0)
        r_type(33, T2, T2, T1),  # addu t2, t2, t1
        addiu(T1, T1, -1),
        i_type(5, 0, T1, -5),  # bne t1, zero, loop
        i_type(15, 1, 0, 0x10),  # (delay slot) lui at, 0x10
        r_type(33, T0, T0, 1),  # addu t0, t0, at: the next 1 MiB
        addiu(4, 0, 0),
        addiu(V0, 0, 4246),
        SYSCALL,
    ]
    machine = Machine.from_bytes(code(words), addr=CODE, pc=CODE)
    machine.state.registers[29] = 0x7FFFD000
    return machine


def reference_states() -> list[tuple[bytes, bytes]]:
    """(state encoding, proof) before every step, from step 0, then the final state."""
    machine = program()
    states = []
    while not machine.state.exited:
        witness = machine.step()
        states.append((witness.state_data, witness.proof))
    states.append((machine.state.encode(), bytes(1792)))
    return states


def test_snapshot_round_trip(tmp_path: Path) -> None:
    machine = program()
    machine.run(100)
    data = machine_to_bytes(machine)
    assert data == machine_to_bytes(machine)  # deterministic
    restored = machine_from_bytes(data)
    assert restored.state.encode() == machine.state.encode()
    assert list(restored.memory.nonzero_pages()) == list(machine.memory.nonzero_pages())
    save_snapshot(machine, tmp_path / "m.snap")
    assert load_snapshot(tmp_path / "m.snap").state_hash() == machine.state_hash()
    restored.run()
    machine.run()
    assert restored.state_hash() == machine.state_hash()


def test_snapshot_errors(tmp_path: Path) -> None:
    data = machine_to_bytes(program())
    for bad, message in (
        (data[:100], "truncated"),
        (b"X" + data[1:], "not a VM snapshot"),
        (data[:-5], "corrupt"),
        (data[:20] + bytes([data[20] ^ 1]) + data[21:], "memRoot"),
    ):
        with pytest.raises(SnapshotError, match=message):
            machine_from_bytes(bad)
    with pytest.raises(SnapshotError, match="cannot read"):
        load_snapshot(tmp_path / "missing.snap")


@pytest.mark.parametrize("interval", [1, 7, 50, 10_000])
def test_every_step_from_checkpoints(interval: int) -> None:
    expected = reference_states()
    trace = Trace.record(program(), interval=interval)
    assert trace.exited and trace.steps == len(expected) - 1
    for step, (state_data, proof) in enumerate(expected):
        assert trace.state_at(step) == state_data, step
        assert trace.witness_at(step) == (state_data, proof), step
    assert trace.state_at(trace.steps + 5) == expected[-1][0]
    assert trace.witness_at(trace.steps + 5) == (expected[-1][0], bytes(1792))


def test_witness_proofs_verify() -> None:
    trace = Trace.record(program(), interval=16)
    for step in range(0, trace.steps, 3):
        state_data, proof = trace.witness_at(step)
        pc = int.from_bytes(state_data[68:72], "big")
        assert verify_proof(state_data[:32], pc, proof[:896])
        assert trace.state_hash_at(step + 1) == Machine(*_restore(state_data, trace, step)).step().post_hash


def _restore(state_data: bytes, trace: Trace, step: int):
    machine = trace.machine_at(step)
    assert machine.state.encode() == state_data
    return machine.state, machine.memory


def test_save_and_load(tmp_path: Path) -> None:
    trace = Trace.record(program(), interval=20)
    trace.save(tmp_path / "trace")
    loaded = Trace.load(tmp_path / "trace")
    assert loaded.steps == trace.steps and len(loaded.checkpoints) == len(trace.checkpoints)
    for step in (0, 1, 19, 20, 21, trace.steps - 1, trace.steps):
        assert loaded.witness_at(step) == trace.witness_at(step)
    # Later checkpoint files hold only the pages written since the previous checkpoint.
    files = sorted((tmp_path / "trace").glob("checkpoint-*.snap"))
    assert len(files) == len(trace.checkpoints)


def test_a_trace_that_did_not_exit() -> None:
    trace = Trace.record(program(), interval=10, max_steps=55)
    assert not trace.exited and trace.steps == 55
    assert trace.state_at(55) == reference_states()[55][0]
    with pytest.raises(ValueError, match="past the end"):
        trace.state_at(56)


def test_witness_calldata_is_the_abi_encoding() -> None:
    witness = program().step()
    calldata = witness.calldata()
    assert calldata[:4] == keccak(b"step(bytes,bytes)")[:4]
    assert decode(["bytes", "bytes"], calldata[4:]) == (witness.state_data, witness.proof)
    assert len(calldata) == 4 + 32 * 2 + 32 + 256 + 32 + 1792


def flip_state_bit(path: Path) -> None:
    """One bit of register $k0 flipped in a checkpoint's state header (after magic and version)."""
    data = bytearray(path.read_bytes())
    data[12 + 98 + 4 * 26 + 3] ^= 1
    path.write_bytes(bytes(data))


def flip_page_bit(path: Path) -> None:
    """One bit flipped inside a page, the file's compression redone so that only the pages'
    memRoot can tell."""
    state_data, pages = decode_snapshot(path.read_bytes())
    index = max(pages)
    page = bytearray(pages[index])
    page[100] ^= 0x10
    path.write_bytes(encode_snapshot(state_data, [*pages.items(), (index, bytes(page))][1:]))


CORRUPTIONS = {
    "state header": (flip_state_bit, "its state is not the one the trace index recorded"),
    "page": (flip_page_bit, "its pages do not hash to its state's memRoot"),
    "truncation": (lambda path: path.write_bytes(path.read_bytes()[:-10]), "corrupt page data|truncated"),
    "deletion": (Path.unlink, "cannot read"),
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_corrupted_checkpoint_is_refused_or_recomputed(tmp_path: Path, kind: str) -> None:
    """Every checkpoint is checked when loaded: without the start machine a bad one is an error
    naming the file; with it, the run is recomputed from the last good checkpoint, the files are
    rewritten (a second load finds them whole) and one line says so."""
    trace = Trace.record(program(), interval=20)
    trace.save(tmp_path)
    corrupt, problem = CORRUPTIONS[kind]
    corrupt(tmp_path / "checkpoint-000003.snap")
    with pytest.raises(SnapshotError, match=rf"checkpoint-000003\.snap: ({problem})"):
        Trace.load(tmp_path)
    reports: list[str] = []
    repaired = Trace.load(tmp_path, start=program(), report=reports.append)
    (line,) = reports
    assert "checkpoint-000003.snap" in line and line.endswith("recomputed from checkpoint 2")
    again = Trace.load(tmp_path)
    for step in (0, 59, 60, 61, 75, trace.steps):
        assert repaired.state_at(step) == again.state_at(step) == trace.state_at(step)


def test_the_first_checkpoint_is_recomputed_from_the_start(tmp_path: Path) -> None:
    trace = Trace.record(program(), interval=20)
    trace.save(tmp_path)
    flip_state_bit(tmp_path / "checkpoint-000000.snap")
    reports: list[str] = []
    Trace.load(tmp_path, start=program(), report=reports.append)
    assert reports[0].endswith("recomputed from the start")
    assert Trace.load(tmp_path).state_at(trace.steps) == trace.final_state
    other = program()
    other.state.registers[5] = 1
    flip_state_bit(tmp_path / "checkpoint-000000.snap")
    with pytest.raises(SnapshotError, match="did not start from the given machine"):
        Trace.load(tmp_path, start=other)


@pytest.mark.parametrize("offset", [30, 200, -80])
def test_a_changed_index_is_refused(tmp_path: Path, offset: int) -> None:
    """The index carries a checksum: any changed byte of it (a step count, a recorded hash, the
    final state) makes it unusable, and the caller recomputes the whole run."""
    Trace.record(program(), interval=20).save(tmp_path)
    index = tmp_path / "trace.json"
    data = bytearray(index.read_bytes())
    data[offset] = ord("7") if data[offset] != ord("7") else ord("8")
    index.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match=r"trace\.json: not (an intact|a readable)"):
        Trace.load(tmp_path, start=program())
    index.unlink()
    with pytest.raises(SnapshotError, match=r"trace\.json: no trace index"):
        Trace.load(tmp_path)
