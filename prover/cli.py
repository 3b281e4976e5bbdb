"""The `prover` command line. Commands live in the module of their concept; this file only
assembles them and turns user errors into one line and a non-zero exit."""

import sys

import click

from prover.errors import ProverError
from prover.game_commands import GAME_COMMANDS
from prover.model_commands import MODEL_COMMANDS
from prover.node import node_command
from prover.run_commands import golden_command, run_command


@click.group()
@click.version_option(package_name="opml-prover")
def cli() -> None:
    """Verifiable ML inference: models, the MIPS VM, and the on-chain dispute game."""


cli.add_command(node_command)
cli.add_command(golden_command)
cli.add_command(run_command)
for command in (*GAME_COMMANDS, *MODEL_COMMANDS):
    cli.add_command(command)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ProverError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
