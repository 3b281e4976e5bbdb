"""Randomized adversarial games on the in-process chain: one claim, its submitter and one to three
challengers, each side playing a strategy, the honest ones by prover.game.agent's `next_move` over
a real MIPS trace (a small golden-image program), the dishonest ones lying, stalling or sending
what the contract must refuse. Shared by tests/test_game_simulation.py and
benchmarks/bench_simulation.py.

What every scenario must show, checked by `simulate`:
- the honest side wins every game it plays (as defender of a true claim or challenger of a false
  one), and no call of an honest party reverts;
- a false claim challenged by an honest party is refuted; a true one becomes final, the task's
  one result: a conflicting claim on the settled task is refused;
- every game pays exactly what the rules of docs/dispute-game.md say, computed here from the
  games' outcomes: bonds paid in = credited + still locked, at every point the check runs, and
  nothing is left in the contract once everyone has withdrawn.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from contract_fixtures import CHALLENGE_BOND, CLOCK, SUBMIT_BOND, WINDOW, Deployment, deploy
from contract_programs import ProgramRun
from eth_hash.auto import keccak

from prover.chain.game_view import GameState, GameView, Side
from prover.errors import ProverError
from prover.game.agent import Bisect, ClaimTimeout, FaultyTrace, Move, Select, Step, Trace, Wait, next_move


class Strategy(Enum):
    HONEST = "honest"  # next_move over the honest trace, at once
    LIE_AT_STEP = "lie at a random step"  # next_move over a trace corrupted from a random step on
    LIE_EVERYWHERE = "lie everywhere"  # random hashes, random pieces, forged steps
    STALL = "stall until the last second"  # a liar's moves, each sent as its clock runs out
    SILENT = "never move"
    WRONG_PIECES = "select wrong pieces"  # a challenger's random index
    REPLAY = "replay old moves"  # its previous transaction again before each move
    FORGED_STEP = "step with a forged witness"  # a liar that proves the last step with a bad witness
    FORGED_STATE = "forge the game's state"  # a liar whose moves pass a doctored state half the time


# A staller moves when its clock shows at most this much left.
LAST_SECONDS = 2
# Who lies about the run: a submitter of a false claim or a challenger of a true one.
LIARS = (
    Strategy.LIE_AT_STEP,
    Strategy.LIE_EVERYWHERE,
    Strategy.STALL,
    Strategy.SILENT,
    Strategy.REPLAY,
    Strategy.FORGED_STEP,
    Strategy.FORGED_STATE,
)
CHALLENGER_LIARS = (*LIARS, Strategy.WRONG_PIECES)


@dataclass
class Player:
    name: str
    account: str
    side: Side
    strategy: Strategy
    trace: Trace
    game_id: int = 0
    last_call: tuple | None = None  # (function, *args)

    @property
    def honest(self) -> bool:
        return self.strategy is Strategy.HONEST


@dataclass
class Outcome:
    """What one scenario did: its games (status per id, and whether an honest party played in
    it), the moves sent, the refused calls of dishonest parties, and the bonds that moved."""

    k: int
    claim_true: bool
    strategies: list[str]
    games: dict[int, str] = field(default_factory=dict)
    honest_games: int = 0
    moves: int = 0
    refused: int = 0
    late_challenge_refused: bool = False
    conflicting_claim_refused: bool = False
    paid_in: int = 0
    withdrawn: int = 0


class Simulation:
    def __init__(self, run: ProgramRun, rng: random.Random) -> None:
        self.run = run
        self.rng = rng
        self.k = rng.choice((2, 16))
        self.d: Deployment = deploy(k=self.k, clock=CLOCK, window=WINDOW)
        accounts = self.d.chain.accounts
        self.claim_true = rng.random() < 0.5
        self.submitter = Player(
            "submitter",
            accounts[1],
            Side.DEFENDER,
            Strategy.HONEST if self.claim_true else rng.choice(LIARS),
            run,
        )
        if not self.claim_true:
            self.submitter.trace = self._liar_trace()
        count = rng.randint(1, 3)
        challengers = []
        for index in range(count):
            # A false claim always meets one honest challenger; the others (and every challenger
            # of a true claim) lie: they open games they should not.
            honest = not self.claim_true and index == 0
            strategy = Strategy.HONEST if honest else rng.choice(CHALLENGER_LIARS)
            trace = run if honest or strategy is Strategy.WRONG_PIECES else self._liar_trace()
            challengers.append(
                Player(f"challenger {index + 1}", accounts[2 + index], Side.CHALLENGER, strategy, trace)
            )
        self.challengers = challengers
        self.outcome = Outcome(
            self.k, self.claim_true, [p.strategy.value for p in [self.submitter, *challengers]]
        )

    def _liar_trace(self) -> Trace:
        return FaultyTrace(self.run, self.rng.randint(1, self.run.steps))

    # ------------------------------------------------------------ sending

    def send(self, player: Player, function: str, *args, value: int = 0) -> bool:
        """One call of `player`; whether it went through. An honest party's call must."""
        try:
            self.d.game.transact(function, *args, sender=player.account, value=value)
        except ProverError:
            if player.honest:
                raise
            self.outcome.refused += 1
            return False
        player.last_call = (function, *args)
        self.outcome.moves += 1
        self.outcome.paid_in += value
        return True

    def make_move(self, player: Player, view: GameView) -> bool:
        """`player`'s move in its game if its strategy makes one now; whether it sent anything."""
        strategy = player.strategy
        if strategy is Strategy.SILENT:
            return False
        move = next_move(player.side, view, player.trace, self.k)
        if isinstance(move, Wait):
            return False
        if strategy is Strategy.STALL and view.turn is player.side and view.mover_seconds_left > LAST_SECONDS:
            return False
        # A replay the contract takes is a move of its own in the new position: that is this turn.
        if (
            strategy is Strategy.REPLAY
            and player.last_call is not None
            and self.send(player, *player.last_call)
        ):
            return True
        return self.send(player, *self._call(player, self._distorted(player, move, view), view))

    def _distorted(self, player: Player, move: Move, view: GameView) -> Move:
        rng, strategy = self.rng, player.strategy
        if isinstance(move, Bisect) and strategy is Strategy.LIE_EVERYWHERE:
            return Bisect(tuple(keccak(rng.randbytes(8)) for _ in move.hashes))
        if isinstance(move, Select) and strategy in (Strategy.LIE_EVERYWHERE, Strategy.WRONG_PIECES):
            return Select(rng.randrange(len(view.posted) + 1))
        if isinstance(move, Step) and strategy in (Strategy.LIE_EVERYWHERE, Strategy.FORGED_STEP):
            return Step(move.step, *forged_witness(rng, move.state_data, move.proof))
        return move

    def _call(self, player: Player, move: Move, view: GameView) -> tuple:
        game_id = player.game_id
        assert view.state is not None
        state = view.state
        if player.strategy is Strategy.FORGED_STATE and self.rng.random() < 0.5:
            state = forged_state(self.rng, state, player.side)
        if isinstance(move, Bisect):
            return ("bisect", game_id, state.as_abi(), list(move.hashes))
        if isinstance(move, Select):
            return ("select", game_id, state.as_abi(), move.index, list(view.posted))
        if isinstance(move, Step):
            return ("step", game_id, state.as_abi(), move.state_data, move.proof)
        if isinstance(move, ClaimTimeout):
            return ("claimTimeout", game_id, state.as_abi())
        raise AssertionError(move)

    # ------------------------------------------------------------ the scenario

    def play(self) -> Outcome:
        run, game = self.run, self.d.game
        self.live: set[int] = set()
        self.task = task = game.create_task(
            run.program_root, run.input_root, run.model_root, sender=self.d.other
        )
        claimed = self.submitter.trace.state_at(run.steps)
        self.send(self.submitter, "submit", task, claimed, run.output, run.output_proof, value=SUBMIT_BOND)
        self.claim_id = game.call("claimCount")
        for player in self.challengers:
            if self.send(player, "challenge", self.claim_id, value=CHALLENGE_BOND):
                player.game_id = game.call("gameCount")
                self.live.add(player.game_id)
        self.check_ledger()
        while self.open_games():
            if not self.one_pass():
                self.advance_clocks()
            self.check_ledger()
        self.finish()
        return self.outcome

    def players_of(self, game_id: int) -> list[Player]:
        return [self.submitter, next(p for p in self.challengers if p.game_id == game_id)]

    def open_games(self) -> list[int]:
        """The games not seen over yet (a game ends only by a move, which refreshes its view)."""
        return sorted(self.live)

    def view(self, game_id: int) -> GameView:
        view = self.d.game.game(game_id)
        if view.over:
            self.live.discard(game_id)
        return view

    def one_pass(self) -> bool:
        """Every player of every open game makes the move its strategy makes now."""
        moved = False
        for game_id in self.open_games():
            view = self.view(game_id)
            for player in self.players_of(game_id):
                if view.over:
                    break
                player.game_id = game_id
                if self.make_move(player, view):
                    moved, view = True, self.view(game_id)
        return moved

    def advance_clocks(self) -> None:
        """Nobody moves now: time passes until the next staller's last second, or until a silent
        mover's clock runs out (then the other side claims the timeout)."""
        waits = []
        for game_id in self.open_games():
            view = self.view(game_id)
            if view.mover_seconds_left == 0:
                # Neither side claims the timeout (both dishonest): a keeper does, as anyone may.
                self.d.game.claim_timeout(game_id, sender=self.d.other)
                self.view(game_id)
                return
            mover = next(p for p in self.players_of(game_id) if p.side is view.turn)
            stalling = mover.strategy is Strategy.STALL and view.mover_seconds_left > LAST_SECONDS
            waits.append(view.mover_seconds_left - LAST_SECONDS if stalling else view.mover_seconds_left)
        # The views count at the pending block, a second after the latest: one more to get there.
        self.d.chain.advance_time(min(waits) + 1)

    def finish(self) -> None:
        """The claim's end (refuted, or final after its window), a late challenge, the payouts
        checked against the rules, and everyone's withdrawal."""
        game, d = self.d.game, self.d
        status = {p.game_id: game.game_status(p.game_id) for p in self.challengers if p.game_id}
        self.outcome.games = status
        for player in self.challengers:
            if not player.game_id:
                continue
            honest_side = (
                Side.DEFENDER if self.submitter.honest else Side.CHALLENGER if player.honest else None
            )
            if honest_side is not None:
                self.outcome.honest_games += 1
                assert status[player.game_id] == f"{honest_side.value} won", (self.outcome, player)
        refuted = any(s == "challenger won" for s in status.values())
        assert refuted == (not self.claim_true), self.outcome
        if refuted:
            assert game.claim(self.claim_id).status == "refuted"
        else:
            d.chain.advance_time(WINDOW + 1)
            game.finalize(self.claim_id, sender=d.other)
            assert game.final_claim_of(self.task) == self.claim_id
            # One result per task: a conflicting claim on the settled task is refused.
            conflicting = self._liar_trace()
            liar = Player(
                "conflicting submitter", d.chain.accounts[7], Side.DEFENDER, Strategy.LIE_AT_STEP, conflicting
            )
            self.outcome.conflicting_claim_refused = not self.send(
                liar, "submit", self.task, conflicting.state_at(self.run.steps), self.run.output,
                self.run.output_proof, value=SUBMIT_BOND,
            )  # fmt: skip
            assert self.outcome.conflicting_claim_refused
        # A challenge after the end of the claim's life is refused, whatever its timing.
        late = Player("late challenger", d.chain.accounts[6], Side.CHALLENGER, Strategy.LIE_AT_STEP, self.run)
        self.outcome.late_challenge_refused = not self.send(
            late, "challenge", self.claim_id, value=CHALLENGE_BOND
        )
        assert self.outcome.late_challenge_refused
        expected = self.expected_credits(status, refuted)
        for player in [self.submitter, *self.challengers]:
            assert game.balance_of(player.account) == expected.get(player.account, 0), (self.outcome, player)
        self.check_ledger()
        for account, amount in expected.items():
            if amount:
                self.outcome.withdrawn += game.withdraw(account)
        assert d.balance(game.address) == 0
        assert self.outcome.withdrawn == self.outcome.paid_in

    def expected_credits(self, status: dict[int, str], refuted: bool) -> dict[str, int]:
        """docs/dispute-game.md's money rules applied to the games' outcomes, in the order the games
        ended (the submitter's bond goes to the first challenger to win, which need not be the one
        of the first game opened)."""
        credits: dict[str, int] = {}

        def credit(account: str, amount: int) -> None:
            credits[account] = credits.get(account, 0) + amount

        ended = {
            log["args"]["gameId"]: (log["blockNumber"], log["logIndex"])
            for log in self.d.game.contract.events.GameResolved().get_logs(from_block=0)
        }
        submitter_bond_paid = False
        players = [p for p in self.challengers if p.game_id]
        for player in sorted(players, key=lambda p: ended.get(p.game_id, (float("inf"), 0))):
            if status[player.game_id] == "challenger won":
                credit(player.account, CHALLENGE_BOND + (0 if submitter_bond_paid else SUBMIT_BOND))
                submitter_bond_paid = True
            else:
                credit(self.submitter.account, CHALLENGE_BOND)
        if not refuted:
            credit(self.submitter.account, SUBMIT_BOND)
        return credits

    def check_ledger(self) -> None:
        """What the contract holds = what it credits + the bonds still locked (the pending claim's
        and the open games')."""
        game, d = self.d.game, self.d
        players = [self.submitter, *self.challengers]
        credited = sum(game.balance_of(p.account) for p in players)
        claim = game.claim(self.claim_id)
        locked = SUBMIT_BOND if claim.status == "pending" else 0
        locked += CHALLENGE_BOND * len(self.open_games())
        assert d.balance(game.address) == credited + locked, (self.outcome, credited, locked)


def forged_state(rng: random.Random, state: GameState, side: Side) -> GameState:
    """The game's state doctored the way a liar gains by it: its own clock refilled, the other
    side's clock emptied, another interval or other hashes at its ends."""
    own, other = ("defender_clock", "challenger_clock")[:: 1 if side is Side.DEFENDER else -1]
    forgeries = (
        {own: getattr(state, own) + 1_000},
        {other: 0},
        {"left": state.left + 1, "right": state.right},
        {"left_hash": keccak(rng.randbytes(8))},
        {"right_hash": keccak(rng.randbytes(8))},
        {"turn_start": state.turn_start + 60},
    )
    return replace(state, **rng.choice(forgeries))


def forged_witness(rng: random.Random, state_data: bytes, proof: bytes) -> tuple[bytes, bytes]:
    """A witness with one byte changed: in the state (then its hash is not the agreed one) or in
    a memory proof (then the verifier reads something the memory root does not hold)."""
    if rng.random() < 0.5:
        index = rng.randrange(len(state_data))
        return state_data[:index] + bytes([state_data[index] ^ 0xFF]) + state_data[index + 1 :], proof
    index = rng.randrange(len(proof))
    return state_data, proof[:index] + bytes([proof[index] ^ 0xFF]) + proof[index + 1 :]


def simulate(run: ProgramRun, seed: int) -> Outcome:
    return Simulation(run, random.Random(seed)).play()


def simulate_many(
    run: ProgramRun, seeds: range, report: Callable[[Outcome], None] | None = None
) -> list[Outcome]:
    outcomes = []
    for seed in seeds:
        outcome = simulate(run, seed)
        outcomes.append(outcome)
        if report is not None:
            report(outcome)
    return outcomes
