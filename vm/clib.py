"""Small C libraries of this package (vm/native.c, prover/task/merkle.c), built for this host with
the pinned `zig cc` (the PyPI ziglang package the guest is built with) and loaded through ctypes.

Each is built once per source version into the user's cache directory ($XDG_CACHE_HOME or
~/.cache, `opml-prover/`), named by the sha256 of its source and flags, and written atomically:
processes that build it at the same time each write a whole file, and any of them is the same."""

import ctypes
import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

from vm.errors import VmError

FLAGS = ("-O3", "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "opml-prover"


def library_path(source: Path) -> Path:
    """Where the built library for the current `source` lives (built on first use)."""
    digest = hashlib.sha256(source.read_bytes() + "\0".join(FLAGS).encode()).hexdigest()[:16]
    return cache_dir() / f"{source.stem}-{digest}.so"


def build_library(source: Path, out: Path) -> Path:
    """Compile `source` for the host with `zig cc` into `out` (atomically: built beside it under a
    name of this process and thread, then renamed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + f".{os.getpid()}.{threading.get_ident()}.build")
    command = [sys.executable, "-m", "ziglang", "cc", *FLAGS, str(source), "-o", str(temporary)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        temporary.unlink(missing_ok=True)
        raise VmError(f"building {source.name} with zig cc failed: {result.stderr.strip()}")
    os.replace(temporary, out)
    return out


def load_library(source: Path) -> ctypes.CDLL:
    """The library of `source`, built first if this version was never built here."""
    path = library_path(source)
    if not path.exists():
        build_library(source, path)
    return ctypes.CDLL(str(path))
