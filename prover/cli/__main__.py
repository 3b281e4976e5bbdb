"""`python -m prover.cli`: the `prover` command."""

from prover.cli.main import main

main()
