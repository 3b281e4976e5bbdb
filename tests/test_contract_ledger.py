"""The dispute game's bond ledger under random move sequences (hypothesis stateful testing): tasks,
claims, challenges, dissection moves with honest or random hashes, time passing, timeouts,
finalizations and withdrawals by any of four accounts, in any order, most of them refused. After
every call the ledger holds: what was paid in minus what was withdrawn is the contract's balance,
which is exactly the accounts' credits plus the bonds of pending claims and open games; a credit
only falls by its owner's withdrawal; each game that ends credits exactly one side, once. All
claims are on one task: at most one of them is ever final (the task's result), and a claim that
ended (refuted, final, superseded) stays so."""

import hypothesis.strategies as st
from contract_fixtures import (
    CHALLENGE_BOND,
    SUBMIT_BOND,
    WINDOW,
    Deployment,
    deploy,
    final_state,
    output_commitment,
)
from eth_hash.auto import keccak
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from prover.chain.game_view import GameState
from prover.errors import ProverError

OUTPUT = (3).to_bytes(4, "big") + bytes(10)
STEPS = 64
ROOTS = (b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)


class Ledger(RuleBasedStateMachine):
    @initialize(k=st.sampled_from([2, 4, 16]))
    def deploy(self, k: int) -> None:
        self.d: Deployment = deploy(k=k)
        self.accounts = self.d.chain.accounts[1:5]
        self.paid_in = self.withdrawn = 0
        self.credits = dict.fromkeys(self.accounts, 0)
        self.ended: dict[int, str] = {}
        self.settled: dict[int, str] = {}
        self.task = self.d.game.create_task(*ROOTS, sender=self.d.other)
        # Counted here, not read from the chain: what hypothesis draws must not depend on the
        # chain's clock, which differs from one run of an example to the next.
        self.claims = self.games = 0

    def call(self, sender: str, function: str, *args, value: int = 0) -> bool:
        try:
            self.d.game.transact(function, *args, sender=sender, value=value)
        except ProverError:
            return False
        self.paid_in += value
        self.claims += function == "submit"
        self.games += function == "challenge"
        return True

    def state(self, game: int) -> tuple:
        """The game's state as its events say (every move passes it back), or none."""
        known = self.d.game.game_state(game)
        return (GameState.unknown() if known is None else known.state).as_abi()

    @rule(who=st.integers(0, 3), steps=st.integers(1, STEPS), bond_off=st.sampled_from([0, 0, 0, 1]))
    def submit(self, who: int, steps: int, bond_off: int) -> None:
        mem_root, siblings = output_commitment(OUTPUT)
        state = final_state(mem_root, steps)
        self.call(
            self.accounts[who], "submit", self.task, state, OUTPUT, siblings, value=SUBMIT_BOND - bond_off
        )

    @precondition(lambda self: self.claims > 0)
    @rule(who=st.integers(0, 3), claim=st.integers(1, 8), bond_off=st.sampled_from([0, 0, 0, 1]))
    def challenge(self, who: int, claim: int, bond_off: int) -> None:
        self.call(self.accounts[who], "challenge", claim, value=CHALLENGE_BOND - bond_off)

    @precondition(lambda self: self.games > 0)
    @rule(who=st.integers(0, 3), game=st.integers(1, 8), salt=st.integers(0, 3))
    def bisect(self, who: int, game: int, salt: int) -> None:
        if game > self.games:
            return
        view = self.d.game.game(game)
        count = min(self.d.game.k, view.right - view.left) - 1
        hashes = [keccak(f"{salt}:{game}:{view.left}:{i}".encode()) for i in range(max(count, 0))]
        self.call(self.accounts[who], "bisect", game, self.state(game), hashes)

    @precondition(lambda self: self.games > 0)
    @rule(who=st.integers(0, 3), game=st.integers(1, 8), index=st.integers(0, 16))
    def select(self, who: int, game: int, index: int) -> None:
        if game > self.games:
            return
        posted = list(self.d.game.game(game).posted)
        self.call(self.accounts[who], "select", game, self.state(game), index, posted)

    @precondition(lambda self: self.games > 0)
    @rule(who=st.integers(0, 3), game=st.integers(1, 8))
    def claim_timeout(self, who: int, game: int) -> None:
        self.call(self.accounts[who], "claimTimeout", game, self.state(game))

    @precondition(lambda self: self.claims > 0)
    @rule(who=st.integers(0, 3), claim=st.integers(1, 8))
    def finalize(self, who: int, claim: int) -> None:
        self.call(self.accounts[who], "finalize", claim)

    @rule(seconds=st.sampled_from([1, 100, 1_000, WINDOW + 1]))
    def wait(self, seconds: int) -> None:
        self.d.chain.advance_time(seconds)

    @rule(who=st.integers(0, 3))
    def withdraw(self, who: int) -> None:
        account = self.accounts[who]
        owed = self.d.game.balance_of(account)
        if self.call(account, "withdraw"):
            self.withdrawn += owed
            self.credits[account] = 0
        else:
            assert owed == 0  # only an empty balance is refused

    @invariant()
    def the_books_balance(self) -> None:
        game = self.d.game
        held = self.d.balance(game.address)
        assert held == self.paid_in - self.withdrawn
        pending = sum(game.claim(c).status == "pending" for c in range(1, self.claims + 1))
        open_games = sum(game.game_status(g) == "open" for g in range(1, self.games + 1))
        credited = sum(game.balance_of(a) for a in self.accounts)
        assert held == credited + pending * SUBMIT_BOND + open_games * CHALLENGE_BOND

    @invariant()
    def credits_only_fall_by_withdrawal(self) -> None:
        for account in self.accounts:
            now = self.d.game.balance_of(account)
            assert now >= self.credits[account]
            self.credits[account] = now

    @invariant()
    def an_ended_game_stays_ended(self) -> None:
        for game_id in range(1, self.games + 1):
            status = self.d.game.game_status(game_id)
            if game_id in self.ended:
                assert status == self.ended[game_id]
            elif status != "open":
                self.ended[game_id] = status

    @invariant()
    def one_result_for_the_task(self) -> None:
        game = self.d.game
        statuses = {c: game.claim(c).status for c in range(1, self.claims + 1)}
        final = [c for c, status in statuses.items() if status == "final"]
        assert len(final) <= 1
        assert game.final_claim_of(self.task) == (final[0] if final else 0)
        for claim_id, status in statuses.items():
            if claim_id in self.settled:
                assert status == self.settled[claim_id]
            elif status != "pending":
                self.settled[claim_id] = status


Ledger.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedger = Ledger.TestCase
