"""`prover watch`: follow every claim on the DisputeGame, challenge the wrong ones, play every game
of this account, settle its claims (prover/watch/watcher.py; docs/watch.md)."""

import os
import signal
import sys
from pathlib import Path

import click

from prover.cli.options import chain_options
from prover.errors import ProverError
from prover.game.party import Party
from prover.output import Output
from prover.watch.log import EventLog
from prover.watch.metrics import WatchMetrics
from prover.watch.pool import LocalPool, Pool
from prover.watch.status import StatusServer
from prover.watch.store import Store
from prover.watch.summary import Summary
from prover.watch.watcher import Watcher


@click.command("watch")
@chain_options
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Content-addressed store of programs, models and inputs (`prover golden --store`).",
)
@click.option(
    "--from-block", type=click.IntRange(0), help="Read events from this block [default: the deployment's]."
)
@click.option(
    "--workers", type=click.IntRange(1), help="Local processes re-executing tasks [default: the CPUs]."
)
@click.option(
    "--ray", "ray_address", help="Re-execute on the Ray cluster at ADDRESS ('local': start one here)."
)
@click.option(
    "--metrics-port", type=click.IntRange(0, 65535), help="Serve /metrics and a status page (0: any port)."
)
@click.option(
    "--poll", type=click.FloatRange(0.01), default=0.2, show_default=True, help="Seconds between looks."
)
def watch_command(
    party: Party,
    out: Output,
    store_dir: Path,
    from_block: int | None,
    workers: int | None,
    ray_address: str | None,
    metrics_port: int | None,
    poll: float,
) -> None:
    """Follow every claim: re-execute it, challenge it if wrong, play every game of this account
    in either role, claim timeouts, finalize and withdraw; one log line per event (--json: JSON)."""
    if workers is not None and ray_address is not None:
        raise ProverError("--workers and --ray exclude each other (Ray places the runs itself)")
    if not store_dir.is_dir():
        raise ProverError(f"--store {store_dir}: no such directory (fill it with `prover golden --store`)")
    # SIGTERM (a service manager's stop) ends the watcher as Ctrl-C does: its workers are shut down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    log = EventLog(out.as_json)
    party.basedir.mkdir(parents=True, exist_ok=True)
    store = Store(store_dir)
    pool: Pool
    if ray_address is not None:
        from prover.watch.ray_pool import RayPool  # imports ray: only with --ray

        pool = RayPool(store, ray_address)
    else:
        pool = LocalPool(store, party.basedir / "tasks", workers or os.cpu_count() or 1)
    server = None
    try:
        watcher = Watcher(party, pool, log, from_block, poll)
        if metrics_port is not None:
            server = StatusServer(
                metrics_port, WatchMetrics(), Summary(party.sender, watcher.game.address, 0)
            )
            server.start()
            watcher.publish = server.publish
            url = f"http://127.0.0.1:{server.port}"
            log.event("serving", f"metrics at {url}/metrics, status page at {url}/", url=url)
        watcher.run()
    finally:
        if server is not None:
            server.close()
        pool.close()
