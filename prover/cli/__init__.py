"""The `prover` command line: one module per group of commands, each thin (parse the options, call
the layer that does the work, print its Records)."""

from prover.cli.main import main

__all__ = ["main"]
