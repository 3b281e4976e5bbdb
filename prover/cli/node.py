"""`prover node`: a local JSON-RPC node on the embedded chain (prover/chain/node.py)."""

import click

from prover.chain.node import DEFAULT_PORT, ChainNode, make_server
from prover.cli.options import json_option
from prover.output import Output, Record


@click.command("node")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="TCP port (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@json_option
def node_command(port: int, host: str, out: Output) -> None:
    """Run a local JSON-RPC node on the embedded chain until interrupted.

    Prints the URL first (one line, also with --port 0), then the funded accounts; with --json one
    line {rpc, chain_id, accounts} once it answers requests."""
    node = ChainNode()
    server = make_server(node, host, port)
    url = f"http://{server.server_address[0]}:{server.server_address[1]}"
    backend = node.tester.backend
    accounts = [key.public_key.to_checksum_address() for key in backend.account_keys]
    chain_id = backend.chain.chain_id
    lines = [
        f"JSON-RPC node listening on {url}",
        f"chain id {chain_id}; funded accounts (--account N):",
        *(f"  {index}: {account}" for index, account in enumerate(accounts)),
    ]
    # The server socket listens already: a client that reads this can connect at once.
    out.emit(Record({"rpc": url, "chain_id": chain_id, "accounts": accounts}, "\n".join(lines)))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        out.note("node stopped")
    finally:
        server.server_close()
