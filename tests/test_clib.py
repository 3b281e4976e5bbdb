"""vm/clib.py: C libraries built with the pinned zig cc, once per source version, safely when
several threads or processes build the same one at once."""

import ctypes
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from prover.task import merkle
from prover.task.golden import region_root
from vm.clib import build_library, library_path, load_library
from vm.errors import VmError


def test_threads_building_one_library_at_once_each_write_a_whole_file(tmp_path: Path) -> None:
    source = tmp_path / "answer.c"
    source.write_text("int answer(void) { return 42; }\n")
    out = tmp_path / "answer.so"
    with ThreadPoolExecutor(3) as pool:
        built = list(pool.map(lambda _: build_library(source, out), range(3)))
    assert built == [out] * 3
    assert ctypes.CDLL(str(out)).answer() == 42
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answer.c", "answer.so"]  # no temporaries left


def test_a_library_is_built_once_per_source_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    source = tmp_path / "answer.c"
    source.write_text("int answer(void) { return 42; }\n")
    assert load_library(source).answer() == 42
    first = library_path(source)
    source.write_text("int answer(void) { return 43; }\n")
    assert library_path(source) != first
    assert load_library(source).answer() == 43


def test_a_source_that_does_not_compile_is_a_one_line_error(tmp_path: Path) -> None:
    source = tmp_path / "broken.c"
    source.write_text("int broken(void) { return }\n")
    with pytest.raises(VmError, match=r"building broken\.c with zig cc failed"):
        build_library(source, tmp_path / "broken.so")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.c"]


def test_threads_hashing_before_the_merkle_library_is_loaded_load_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graph trace hashes its tensors on every core: the first calls race to load the library."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    merkle._loaded.cache_clear()
    try:
        with ThreadPoolExecutor(4) as pool:
            roots = list(pool.map(lambda _: merkle.region_root(b"abc"), range(4)))
    finally:
        merkle._loaded.cache_clear()  # later tests load it from their own cache directory again
    assert roots == [region_root(b"abc")] * 4
    assert [p.name for p in (tmp_path / "opml-prover").iterdir()] == [library_path(merkle.SOURCE).name]
