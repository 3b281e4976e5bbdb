"""The chain commands of a party: `prover deploy`, `submit`, `challenge`, `respond`, `step`,
`status`, `dispute`, `finalize` and `withdraw` (docs/cli.md); what each does is prover/game/play.py.

Every command takes the chain options and --json (prover/cli/options.py)."""

import click

from prover.chain.game_view import Side
from prover.cli.options import chain_options, fault_option
from prover.game import play
from prover.game.party import Party
from prover.game.records import ETHER
from prover.output import Output


@click.command("deploy")
@chain_options(deploys=True)
@click.option(
    "--k", "arity", type=click.IntRange(2, 64), default=16, show_default=True, help="Dissection arity."
)
@click.option("--submit-bond", type=click.IntRange(0), default=ETHER, show_default=True, help="Wei.")
@click.option("--challenge-bond", type=click.IntRange(0), default=ETHER, show_default=True, help="Wei.")
@click.option("--clock", type=click.IntRange(1), default=3600, show_default=True, help="Seconds per side.")
@click.option(
    "--window", type=click.IntRange(0), default=3600, show_default=True, help="Challenge window (s)."
)
def deploy_command(
    party: Party, out: Output, arity: int, submit_bond: int, challenge_bond: int, clock: int, window: int
) -> None:
    """Deploy the MIPS verifier and the DisputeGame; write deployment.json."""
    play.deploy(party, out, arity, submit_bond, challenge_bond, clock, window)


@click.command("submit")
@chain_options
@fault_option
def submit_command(party: Party, out: Output, fault_step: int | None) -> None:
    """Post the claim of BASEDIR/final.json with the submit bond (creating the task if needed)."""
    play.submit(party, out, fault_step)


@click.command("challenge")
@chain_options
@click.option(
    "--claim", "claim_id", type=click.IntRange(1), help="Claim id [default: the latest on our task]."
)
@click.option(
    "--other-task",
    is_flag=True,
    help="Challenge a claim on another task than our run's (a game we lose: fault injection only).",
)
@fault_option
def challenge_command(
    party: Party, out: Output, claim_id: int | None, other_task: bool, fault_step: int | None
) -> None:
    """Compare our own run with a claim; open a game with the challenge bond when they differ."""
    play.challenge(party, out, claim_id, other_task, fault_step)


@click.command("respond")
@chain_options
@click.option(
    "--game", "game_id", type=click.IntRange(1), help="Game id [default: ours where it is our turn]."
)
def respond_command(party: Party, out: Output, game_id: int | None) -> None:
    """Make the next dissection move for our side (an error when it is the other side's turn)."""
    play.respond(party, out, game_id)


@click.command("step")
@chain_options
@click.option("--game", "game_id", type=click.IntRange(1), help="Game id [default: ours].")
def step_command(party: Party, out: Output, game_id: int | None) -> None:
    """The one-step proof: the contract executes the last disputed instruction and decides."""
    play.step(party, out, game_id)


@click.command("status")
@chain_options
@click.option("--game", "game_id", type=click.IntRange(1), help="Only this game (and no claims).")
def status_command(party: Party, out: Output, game_id: int | None) -> None:
    """Claims and games of the deployment: interval, round, whose turn, clocks, winner, gas; and
    what the sender can withdraw."""
    play.status(party, out, game_id)


@click.command("dispute")
@chain_options
@click.option(
    "--side", type=click.Choice([side.value for side in Side]), required=True, help="The side to play."
)
@click.option("--game", "game_id", type=click.IntRange(1), help="Game id [default: ours].")
@click.option("--claim", "claim_id", type=click.IntRange(1), help="Challenger: the claim to dispute.")
@click.option(
    "--poll", type=click.FloatRange(0.01), default=0.1, show_default=True, help="Seconds between looks."
)
@fault_option
def dispute_command(
    party: Party,
    out: Output,
    side: str,
    game_id: int | None,
    claim_id: int | None,
    poll: float,
    fault_step: int | None,
) -> None:
    """Play every move for one side until the game ends (--json: one object per line, each with
    its "event": waiting, challenge, playing, move; the last one the result)."""
    play.dispute(party, out, side, game_id, claim_id, poll, fault_step)


@click.command("finalize")
@chain_options
@click.option("--claim", "claim_id", type=click.IntRange(1), help="Claim id [default: BASEDIR/claim.json's].")
def finalize_command(party: Party, out: Output, claim_id: int | None) -> None:
    """Make an unrefuted claim final after its challenge window (its bond is credited back)."""
    play.finalize(party, out, claim_id)


@click.command("withdraw")
@chain_options
def withdraw_command(party: Party, out: Output) -> None:
    """Withdraw everything the dispute game credits to the sender (bonds back, won bonds)."""
    play.withdraw(party, out)
