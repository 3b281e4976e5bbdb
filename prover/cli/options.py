"""The options many commands share: --json (an Output for the command), the chain options (a
connected Party) and --fault-step."""

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from web3.exceptions import BadFunctionCallOutput, TimeExhausted, Web3RPCError

from prover.chain.connect import reaching
from prover.errors import ProverError
from prover.game.party import DEFAULT_RPC, connect_party
from prover.model.convention import BACKGROUNDS
from prover.output import Output
from prover.task.basedir import read_json


def json_option(command: Callable[..., None]) -> Callable[..., None]:
    """--json, turned into the command's `out` (an Output)."""

    @click.option("--json", "as_json", is_flag=True, help="Machine-readable: one JSON object per line.")
    @functools.wraps(command)
    def wrapper(*args: Any, as_json: bool, **kwargs: Any) -> None:
        return command(*args, out=Output(as_json), **kwargs)

    return wrapper


def chain_options(command: Callable[..., None] | None = None, *, deploys: bool = False) -> Any:
    """--rpc, --basedir, --account/--key and --deployment, turned into a connected Party; and
    --json, turned into the command's `out`. Every command but the one that `deploys` needs the
    deployment file: it is read before the node is reached, so a missing file is named as such."""
    if command is None:
        return functools.partial(chain_options, deploys=deploys)

    @click.option(
        "--rpc", envvar="PROVER_RPC", default=DEFAULT_RPC, show_default=True, help="JSON-RPC endpoint."
    )
    @click.option(
        "--basedir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="This party's directory (golden.json, final.json, checkpoints, its state files).",
    )
    @click.option(
        "--account", type=click.IntRange(0), default=0, show_default=True, help="Node account index."
    )
    @click.option(
        "--key", envvar="PROVER_KEY", help="Private key (hex) to sign with instead of a node account."
    )
    @click.option(
        "--deployment",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="PROVER_DEPLOYMENT",
        help="deployment.json of `prover deploy` [default: BASEDIR/deployment.json].",
    )
    @functools.wraps(command)
    def wrapper(
        rpc: str, basedir: Path, account: int, key: str | None, deployment: Path | None, **kwargs: Any
    ):
        deployment = deployment or basedir / "deployment.json"
        if not deploys:
            read_json(deployment, "a deployment (run `prover deploy` first)")
        with reaching(rpc):
            party = connect_party(rpc, basedir, account, key, deployment)
            try:
                return command(party, **kwargs)
            except BadFunctionCallOutput:
                # The address holds a contract, but not one that answers as this version's
                # DisputeGame does (an older deployment on a long-lived node).
                raise ProverError(
                    f"{party.deployment_path}: the contract at {party.deployment()['dispute_game']} does "
                    "not answer as this version's DisputeGame; run `prover deploy` with a new --deployment"
                ) from None
            except TimeExhausted as exc:
                raise ProverError(f"the node at {rpc} did not mine a transaction: {exc}") from None
            except Web3RPCError as exc:
                # The node refused a request (a sender that cannot pay for gas, a nonce too low).
                error = (exc.rpc_response or {}).get("error", {})
                raise ProverError(f"the node at {rpc} refused: {error.get('message', exc)}") from None

    return json_option(wrapper)


def background_option(command: Callable[..., None]) -> Callable[..., None]:
    """--background: the input's background (its polarity), detected from its border by default."""
    return click.option(
        "--background",
        type=click.Choice(BACKGROUNDS),
        default="auto",
        show_default=True,
        help="The input's background: auto (from its border pixels), light or dark; an input of the "
        "other polarity than the model's is inverted.",
    )(command)


def fault_option(command: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--fault-step",
        type=click.IntRange(1),
        help="Dishonest party: corrupt register $k0 from this step on (recorded in BASEDIR/fault.json).",
    )(command)
