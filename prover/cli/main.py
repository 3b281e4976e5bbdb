"""The `prover` command line. Commands live in the module of their concept; this file only
assembles them and turns user errors into one line and a non-zero exit.

A command's module is imported only when that command runs: `prover predict` or `prover run`
should not pay for importing web3 and the embedded chain (about 1.5 s)."""

import importlib
import sys

import click

from prover.errors import ProverError

# Where each command is defined: every click command at the top level of these modules is a
# `prover` subcommand. The names are only a shortcut; a name missing here is looked up in all.
COMMAND_MODULES = {
    "prover.cli.model": ("predict", "eval", "convert", "quantize", "generate"),
    "prover.cli.data": ("data",),
    "prover.cli.run": ("golden", "run", "graph", "commit"),
    "prover.cli.node": ("node",),
    "prover.cli.game": (
        "deploy",
        "submit",
        "challenge",
        "respond",
        "step",
        "status",
        "dispute",
        "finalize",
        "withdraw",
    ),
    "prover.cli.watch": ("watch",),
}


def _commands_of(module_name: str) -> dict[str, click.Command]:
    module = importlib.import_module(module_name)
    return {value.name: value for value in vars(module).values() if isinstance(value, click.Command)}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for module in COMMAND_MODULES for name in _commands_of(module))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        named = [module for module, names in COMMAND_MODULES.items() if cmd_name in names]
        for module in named or COMMAND_MODULES:
            if command := _commands_of(module).get(cmd_name):
                return command
        return None


@click.group(cls=_LazyGroup)
@click.version_option(package_name="opml-prover")
def cli() -> None:
    """Verifiable ML inference: models, the MIPS VM, and the on-chain dispute game."""


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
