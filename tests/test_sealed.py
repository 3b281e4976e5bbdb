"""A sealed record (prover/task/sealed.py: a file, its copy, each with its digest) survives any
one of its two files damaged, says what it repaired in one line, and refuses when both are."""

import json
from pathlib import Path

import pytest

from prover.errors import ProverError
from prover.task.sealed import copy_path, read_sealed, remove_sealed, sealed_exists, write_sealed

RECORD = {"input": "0x" + "ab" * 40, "node_count": 6, "class": 7, "fault_node": None}


def written(tmp_path: Path) -> Path:
    path = tmp_path / "graph.json"
    write_sealed(path, RECORD)
    return path


def read(path: Path) -> tuple[dict, list[str]]:
    lines: list[str] = []
    return read_sealed(path, "a graph task", lines.append), lines


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_sound_record_reads_back_without_a_word(tmp_path: Path) -> None:
    path = written(tmp_path)
    assert read(path) == (RECORD, [])
    assert path.read_bytes() == copy_path(path).read_bytes()


def test_every_bit_of_the_file_flipped_is_repaired_from_the_copy(tmp_path: Path) -> None:
    path = written(tmp_path)
    good = path.read_bytes()
    for at in range(len(good)):
        flip(path, at)
        harmless = _same_content(path.read_bytes(), good)  # a space turned into a tab, say
        record, lines = read(path)
        assert record == RECORD
        assert len(lines) == (0 if harmless else 1), (at, lines)
        assert harmless or path.read_bytes() == good
        path.write_bytes(good)


def _same_content(data: bytes, good: bytes) -> bool:
    try:
        return json.loads(data) == json.loads(good)
    except (ValueError, UnicodeDecodeError):
        return False


def test_the_file_deleted_or_truncated_is_restored_from_the_copy(tmp_path: Path) -> None:
    path = written(tmp_path)
    good = path.read_bytes()
    path.unlink()
    record, lines = read(path)
    assert record == RECORD and len(lines) == 1 and "no such file" in lines[0] and "restored from" in lines[0]
    path.write_bytes(good[:40])
    record, lines = read(path)
    assert record == RECORD and "not valid JSON" in lines[0]
    assert path.read_bytes() == good


def test_a_damaged_or_missing_copy_is_written_again(tmp_path: Path) -> None:
    path = written(tmp_path)
    copy = copy_path(path)
    data = json.loads(copy.read_text())
    data["class"] = 1  # valid JSON, wrong content: only the digest tells
    copy.write_text(json.dumps(data))
    record, lines = read(path)
    assert record == RECORD and lines == [
        f"{copy}: its content does not match its digest (damaged); written again from {path}"
    ]
    copy.unlink()
    assert read(path)[0] == RECORD and copy.read_bytes() == path.read_bytes()


def test_a_copy_older_than_the_file_follows_it(tmp_path: Path) -> None:
    """Killed between the two writes: the file is the newer (written first), the copy follows it."""
    path = written(tmp_path)
    old = copy_path(path).read_bytes()
    write_sealed(path, {**RECORD, "class": 3})
    copy_path(path).write_bytes(old)
    record, lines = read(path)
    assert record["class"] == 3 and "older than graph.json" in lines[0]


def test_both_damaged_is_one_error_naming_both(tmp_path: Path) -> None:
    path = written(tmp_path)
    flip(path, 20)
    copy_path(path).unlink()
    with pytest.raises(ProverError) as error:
        read(path)
    message = str(error.value)
    assert str(path) in message and str(copy_path(path)) in message and "a graph task is lost" in message


def test_a_record_is_there_while_either_file_is(tmp_path: Path) -> None:
    path = written(tmp_path)
    path.unlink()
    assert sealed_exists(path)
    remove_sealed(path)
    assert not sealed_exists(path) and not copy_path(path).exists()
