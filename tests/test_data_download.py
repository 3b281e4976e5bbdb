"""`prover data mnist` against a local HTTP server on 127.0.0.1 serving the project's MNIST copy:
the files arrive whole and checked, and a dead server, a 404, a truncated or corrupted download, a
file of the wrong shape or a foreign file already in place is one error line with nothing written.

The copy served is not the canonical MNIST files, so the tests give the command the digests they
compute themselves (--checksums); without them the command checks the canonical MD5s, which the
served files fail."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mnist_data import MNIST_DIR

from prover.model.download import CANONICAL_MD5

NAMES = list(CANONICAL_MD5)
pytestmark = pytest.mark.skipif(
    not all((MNIST_DIR / name).is_file() for name in NAMES),
    reason=f"serves the full MNIST set's four .gz files, not found in {MNIST_DIR}",
)


class Server:
    """Serves `files` (name -> bytes) at http://127.0.0.1:PORT/; a name in `truncated` gets its
    full Content-Length announced and half its bytes sent before the connection closes."""

    def __init__(self) -> None:
        self.files = {name: (MNIST_DIR / name).read_bytes() for name in NAMES}
        self.truncated: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(name)
                if name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in server.truncated:
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/mnist/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def checksums(self, path: Path, algorithm: str = "md5") -> Path:
        """A checksums file (`md5sum` format) of the files as served, unmodified."""
        originals = {name: (MNIST_DIR / name).read_bytes() for name in NAMES}
        path.write_text(
            "".join(f"{hashlib.new(algorithm, data).hexdigest()}  {n}\n" for n, data in originals.items())
        )
        return path


@pytest.fixture
def server() -> Iterator[Server]:
    server = Server()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def prover(*args: object) -> subprocess.CompletedProcess:
    # Traffic to 127.0.0.1 only: no proxy from the environment in between.
    env = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    return subprocess.run(
        [sys.executable, "-m", "prover.cli", *map(str, args)], capture_output=True, text=True, env=env
    )


def one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1 and result.stdout == "", result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_downloads_and_checks_the_four_files_then_finds_them_there(server: Server, tmp_path: Path) -> None:
    sums = server.checksums(tmp_path / "md5sums")
    target = tmp_path / "mnist"
    result = prover("data", "mnist", "--dir", target, "--url", server.url, "--checksums", sums, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dir"] == str(target)
    assert [f["status"] for f in report["files"]] == ["downloaded"] * 4
    for name in NAMES:
        assert (target / name).read_bytes() == (MNIST_DIR / name).read_bytes()
    assert sorted(p.name for p in target.iterdir()) == sorted(NAMES)  # no temporary files left
    # The commands read the downloaded set.
    evaluated = prover("eval", "--model", "models/mlp_int8.ggml", "--mnist-dir", target, "--limit", 100)
    assert evaluated.returncode == 0 and evaluated.stdout.startswith("accuracy "), evaluated.stderr

    server.requests.clear()
    again = prover("data", "mnist", "--dir", target, "--url", server.url, "--checksums", sums)
    assert again.returncode == 0, again.stderr
    assert server.requests == []  # checked in place, not fetched again
    assert again.stdout.count("present ") == 4


def test_sha256_checksums_are_accepted(server: Server, tmp_path: Path) -> None:
    sums = server.checksums(tmp_path / "sha256sums", "sha256")
    result = prover(
        "data", "mnist", "--dir", tmp_path / "m", "--url", server.url, "--checksums", sums, "--json"
    )
    assert result.returncode == 0, result.stderr
    assert {f["algorithm"] for f in json.loads(result.stdout)["files"]} == {"sha256"}


def test_the_canonical_md5s_are_checked_by_default(server: Server, tmp_path: Path) -> None:
    """The project's copy is not the canonical files: refused, nothing written."""
    result = prover("data", "mnist", "--dir", tmp_path / "m", "--url", server.url)
    one_error_line(result, server.url, "not the expected file", f"expected {CANONICAL_MD5[NAMES[0]]}")
    assert not (tmp_path / "m").exists() or list((tmp_path / "m").iterdir()) == []


@pytest.mark.parametrize(
    ("fault", "fragments"),
    [
        ("missing", ["t10k-images-idx3-ubyte.gz", "HTTP 404"]),
        ("truncated", ["t10k-images-idx3-ubyte.gz", "truncated download"]),
        ("corrupted", ["t10k-images-idx3-ubyte.gz", "corrupted or not the expected file"]),
    ],
)
def test_a_bad_download_is_one_error_line_and_leaves_no_file(
    server: Server, tmp_path: Path, fault: str, fragments: list[str]
) -> None:
    sums = server.checksums(tmp_path / "md5sums")
    name = "t10k-images-idx3-ubyte.gz"
    if fault == "missing":
        del server.files[name]
    elif fault == "truncated":
        server.truncated.add(name)
    else:
        data = bytearray(server.files[name])
        data[len(data) // 2] ^= 0xFF
        server.files[name] = bytes(data)
    target = tmp_path / "m"
    one_error_line(
        prover("data", "mnist", "--dir", target, "--url", server.url, "--checksums", sums), *fragments
    )
    # The files before it arrived whole; it and the ones after are not there, nor any partial file.
    assert sorted(p.name for p in target.iterdir()) == sorted(NAMES[: NAMES.index(name)])


def test_a_file_of_the_wrong_shape_is_refused_even_with_matching_checksums(
    server: Server, tmp_path: Path
) -> None:
    """A mirror whose checksums file lists the wrong file: the IDX check catches it."""
    server.files["t10k-labels-idx1-ubyte.gz"] = server.files["train-labels-idx1-ubyte.gz"]
    sums = server.checksums(tmp_path / "md5sums")
    wrong = hashlib.md5(server.files["train-labels-idx1-ubyte.gz"]).hexdigest()
    text = sums.read_text().splitlines()
    sums.write_text(
        "\n".join(
            line if "t10k-labels" not in line else f"{wrong}  t10k-labels-idx1-ubyte.gz" for line in text
        )
    )
    target = tmp_path / "m"
    one_error_line(
        prover("data", "mnist", "--dir", target, "--url", server.url, "--checksums", sums),
        "t10k-labels-idx1-ubyte.gz",
        "shape (60000,), expected (10000,)",
    )
    assert not (target / "t10k-labels-idx1-ubyte.gz").exists()


def test_a_dead_server_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = prover("data", "mnist", "--dir", tmp_path / "m", "--url", f"http://127.0.0.1:{port}/")
    one_error_line(result, f"http://127.0.0.1:{port}/train-images-idx3-ubyte.gz", "cannot reach the server")
    assert not (tmp_path / "m").exists() or list((tmp_path / "m").iterdir()) == []


def test_a_foreign_file_in_place_is_refused_not_overwritten(server: Server, tmp_path: Path) -> None:
    sums = server.checksums(tmp_path / "md5sums")
    target = tmp_path / "m"
    target.mkdir()
    (target / NAMES[0]).write_bytes(b"someone's own file")
    one_error_line(
        prover("data", "mnist", "--dir", target, "--url", server.url, "--checksums", sums),
        str(target / NAMES[0]),
        "remove it or choose another --dir",
    )
    assert (target / NAMES[0]).read_bytes() == b"someone's own file"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("not a checksum\n", ":1: expected `HEX  NAME`"),
        ("0" * 32 + "  other.gz\n", "expected the digests of"),
    ],
)
def test_a_bad_checksums_file_is_one_error_line(tmp_path: Path, content: str, fragment: str) -> None:
    (tmp_path / "sums").write_text(content)
    one_error_line(
        prover("data", "mnist", "--dir", tmp_path / "m", "--checksums", tmp_path / "sums"), fragment
    )
