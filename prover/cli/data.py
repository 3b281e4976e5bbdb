"""`prover data mnist`: download and check the MNIST set (prover/model/download.py).

prover data mnist [--dir DIR] [--url BASE] [--checksums FILE] [--json]
"""

from pathlib import Path

import click

from prover.cli.options import json_option
from prover.model.data import mnist_dir
from prover.model.download import CANONICAL_URL, fetch_mnist, read_checksums
from prover.output import Output, Record


@click.command("data")
@click.argument("dataset", type=click.Choice(["mnist"]))
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="where to put the files [default: $MNIST_DIR, ../shared/data/mnist if it exists, data/mnist]",
)
@click.option("--url", default=CANONICAL_URL, show_default=True, help="base URL of the four .gz files")
@click.option(
    "--checksums",
    type=click.Path(dir_okay=False, path_type=Path),
    help="`md5sum`/`sha256sum` lines for another mirror's files [default: the canonical MD5s]",
)
@json_option
def data_command(dataset: str, directory: Path | None, url: str, checksums: Path | None, out: Output) -> None:
    """Download the MNIST training and test sets (four .gz files) and check them; files already
    there are checked, not fetched again (--json: each file's path, size, digest and status)."""
    target = mnist_dir(directory)
    digests = read_checksums(checksums) if checksums else None
    fetched = fetch_mnist(target, url, digests, progress=not out.as_json)
    lines = [f"{f.status} {f.path} ({f.bytes:,} bytes, {f.algorithm} {f.digest})" for f in fetched]
    default = mnist_dir(None)
    hint = "" if target.resolve() == default.resolve() else f"; the commands look in {default}: set MNIST_DIR"
    lines.append(f"{dataset} is in {target}{hint}")
    out.emit(Record({"dir": str(target), "files": [f.to_json() for f in fetched]}, "\n".join(lines)))
