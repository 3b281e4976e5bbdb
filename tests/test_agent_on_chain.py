"""The agent's moves against the real DisputeGame contract (in-process chain), without the VM: the
contract only compares the state hashes of the dissection, so synthetic traces play it. The game
must narrow to exactly the step where the liar's trace starts to differ; nobody proves that step
here, and the side whose clock runs out loses when the other side's agent claims the timeout."""

import json

import pytest
from contract_fixtures import deploy, final_state, output_commitment
from eth_hash.auto import keccak

from prover.chain.game_view import Side
from prover.game.party import Party
from prover.game.play import play_one_move
from prover.game.records import find_claim, find_games, find_task, game_status, my_game

OUTPUT = b"\x00\x00\x00\x07 logits"
CLOCK = 1_000


class HashTrace:
    """State hashes only: S0 at step 0, the claimed final state at the end, labelled ones between;
    from `fault_step` on, the liar's."""

    def __init__(self, initial: bytes, final: bytes, steps: int, fault_step: int | None = None) -> None:
        self.initial, self.final, self.steps, self.fault_step = initial, final, steps, fault_step

    def state_hash_at(self, step: int) -> bytes:
        if self.fault_step is not None and step >= self.fault_step:
            return keccak(b"liar %d" % step)
        if step == 0:
            return self.initial
        return self.final if step >= self.steps else keccak(b"honest %d" % step)


@pytest.mark.parametrize(("k", "steps", "fault_step"), [(2, 1000, 377), (16, 100_000, 1), (16, 5000, 5000)])
def test_dissection_on_chain_ends_at_the_first_wrong_step(tmp_path, k, steps, fault_step):
    chain_setup = deploy(k=k, clock=CLOCK)
    game, w3 = chain_setup.game, chain_setup.chain.w3
    roots = (keccak(b"program"), keccak(b"input"), keccak(b"model"))
    task_id = game.create_task(*roots, sender=chain_setup.submitter)
    mem_root, siblings = output_commitment(OUTPUT)
    claimed = final_state(mem_root, steps)
    claim_id = game.submit(task_id, claimed, OUTPUT, siblings, sender=chain_setup.submitter)
    game_id = game.challenge(claim_id, sender=chain_setup.challenger)

    deployment = tmp_path / "deployment.json"
    recorded = {"chain_id": w3.eth.chain_id, "dispute_game": game.address, "block": 0, **game.parameters()}
    deployment.write_text(json.dumps(recorded))
    defender = Party(w3, "in-process", chain_setup.submitter, tmp_path, deployment)
    challenger = Party(w3, "in-process", chain_setup.challenger, tmp_path, deployment)
    # What the commands find again on a re-run, from the chain's events.
    assert find_task(game, defender, roots) == task_id
    assert find_claim(game, defender, task_id, keccak(claimed)) == claim_id
    assert find_games(game, challenger, claimId=claim_id, challenger=challenger.sender) == [game_id]
    assert my_game(game, defender, None) == (game_id, Side.DEFENDER)
    assert my_game(game, challenger, None) == (game_id, Side.CHALLENGER)

    s0 = game.initial_state_hash(*roots)
    honest = HashTrace(s0, keccak(claimed), steps)
    liar = HashTrace(s0, keccak(claimed), steps, fault_step)

    def move(party: Party, side: Side, trace: HashTrace) -> str | None:
        return play_one_move(party, game, game_id, side, trace, k, game.game(game_id))

    rounds = 0
    while (view := game.game(game_id)).right - view.left > 1:
        assert move(challenger, Side.CHALLENGER, liar) is None  # not its turn
        assert "posted" in move(defender, Side.DEFENDER, honest)
        assert "selected" in move(challenger, Side.CHALLENGER, liar)
        rounds += 1
    # The liar agreed with every hash before its fault, so the last step is the one into it.
    assert (view.left, view.right) == (fault_step - 1, fault_step)
    assert view.turn is Side.CHALLENGER

    chain_setup.chain.advance_time(CLOCK + 1)
    assert move(defender, Side.DEFENDER, honest) is not None
    status = game_status(game, defender, game_id, k)
    assert status["winner"] == "defender" and status["by_timeout"]
    assert status["round"] == rounds <= status["rounds_at_most"]
    assert status["gas"]["defender"] > 0 and status["gas"]["challenger"] > 0
