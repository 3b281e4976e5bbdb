"""Downloading and checking the MNIST set (`prover data mnist`).

    results = fetch_mnist(Path("data/mnist"))      # the canonical files, checked against their MD5s

Each of the four .gz files is fetched over HTTP(S) into memory with a progress bar, checked (the
whole length the server announced, the expected digest, a gzipped IDX file of the expected shape),
and only then written, atomically: a dead server, an HTTP error, a truncated or corrupted download
is one ProverError line and leaves no file behind. A file already in the directory is checked, not
fetched again; one that does not match is refused, never overwritten (it may be someone's own copy).

The canonical digests are the .gz MD5s that torchvision and others publish. Another mirror or
variant comes with its own checksums file (`md5sum` or `sha256sum` output: "HEX  NAME" lines).
"""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
import urllib.request
import zlib
from dataclasses import asdict, dataclass
from http.client import HTTPException
from pathlib import Path

from tqdm import tqdm

from prover.errors import ProverError
from prover.files import write_atomically
from prover.model.data import parse_idx

CANONICAL_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CANONICAL_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
SHAPES = {
    "train-images-idx3-ubyte.gz": (60000, 28, 28),
    "train-labels-idx1-ubyte.gz": (60000,),
    "t10k-images-idx3-ubyte.gz": (10000, 28, 28),
    "t10k-labels-idx1-ubyte.gz": (10000,),
}
ALGORITHMS = {32: "md5", 64: "sha256"}  # by the length of the hex digest
TIMEOUT = 30.0  # seconds without an answer before the server counts as dead
CHUNK = 1 << 16


@dataclass(frozen=True)
class Fetched:
    """One file of the set: where it is, its size and digest, and whether it was downloaded now
    or already there."""

    name: str
    path: str
    bytes: int
    algorithm: str
    digest: str
    status: str  # "downloaded" or "present"

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def read_checksums(path: Path) -> dict[str, str]:
    """File name -> hex digest from `md5sum` / `sha256sum` output ("HEX  NAME" or "HEX *NAME")."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProverError(f"{path}: cannot read the checksums: {exc}") from None
    digests = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        digest = parts[0].lower()
        is_hex = all(c in "0123456789abcdef" for c in digest)
        if len(parts) != 2 or len(digest) not in ALGORITHMS or not is_hex:
            raise ProverError(f"{path}:{number}: expected `HEX  NAME` with an MD5 or SHA-256 digest")
        digests[parts[1].strip().lstrip("*")] = digest
    if set(digests) != set(SHAPES):
        raise ProverError(f"{path}: expected the digests of {', '.join(SHAPES)}")
    return digests


def fetch_mnist(
    directory: Path,
    base_url: str = CANONICAL_URL,
    digests: dict[str, str] | None = None,
    progress: bool = True,
) -> list[Fetched]:
    """The four MNIST files in `directory`, downloaded from `base_url` where missing, each checked
    against `digests` (default: the canonical MD5s)."""
    digests = digests or CANONICAL_MD5
    results = []
    for name, expected in digests.items():
        path = directory / name
        algorithm = ALGORITHMS[len(expected)]
        if path.is_file():
            data, status = path.read_bytes(), "present"
            digest = hashlib.new(algorithm, data).hexdigest()
            if digest != expected:
                raise ProverError(
                    f"{path}: already there but not the expected file ({algorithm} {digest}, expected "
                    f"{expected}); remove it or choose another --dir"
                )
        else:
            url = base_url.rstrip("/") + "/" + name
            data, status = _download(url, progress), "downloaded"
            digest = hashlib.new(algorithm, data).hexdigest()
            if digest != expected:
                raise ProverError(
                    f"{url}: corrupted or not the expected file ({algorithm} {digest}, expected {expected}); "
                    "nothing written"
                )
        _check_idx(path, data, name)
        if status == "downloaded":
            write_atomically(path, data)
        results.append(Fetched(name, str(path), len(data), algorithm, digest, status))
    return results


def _download(url: str, progress: bool) -> bytes:
    """The whole body at `url`; a ProverError naming the url for anything short of that."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            body = bytearray()
            name = url.rsplit("/", 1)[-1]
            # disable=None: a bar on a terminal only, none in a log or a pipe
            bar = tqdm(
                total=total,
                desc=name,
                unit="B",
                unit_scale=True,
                leave=False,
                disable=None if progress else True,
            )
            with bar:
                while chunk := response.read(CHUNK):
                    body += chunk
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise ProverError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise ProverError(f"{url}: cannot reach the server ({exc.reason})") from None
    except TimeoutError:
        raise ProverError(f"{url}: the server did not answer within {TIMEOUT:.0f} s") from None
    except (HTTPException, ConnectionError) as exc:
        # http.client's IncompleteRead: the connection closed before the announced length.
        raise ProverError(f"{url}: truncated download, the connection broke ({exc!r})") from None
    if total is not None and len(body) != total:
        raise ProverError(f"{url}: truncated download ({len(body)} of {total} bytes)")
    return bytes(body)


def _check_idx(path: Path, data: bytes, name: str) -> None:
    """`data` is a gzipped IDX file of the shape the MNIST file `name` has."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ProverError(f"{path}: not a gzip file ({exc}); nothing written") from None
    try:
        shape = parse_idx(raw, path).shape
    except ProverError as exc:
        raise ProverError(f"{exc}; nothing written") from None
    if shape != SHAPES[name]:
        raise ProverError(f"{path}: an IDX file of shape {shape}, expected {SHAPES[name]}; nothing written")
