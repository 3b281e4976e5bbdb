"""The contracts from Python: deployment from the committed artifacts (prover/chain/artifacts.py)
and typed wrappers around the one-step verifier (MIPS.sol) and the dispute game (DisputeGame.sol).

Every revert becomes a ProverError naming the contract call and the decoded custom error, e.g.
"DisputeGame.select reverted: NotYourTurn(gameId=3, turn=0)".
"""

import ast
import random
import re
import time
from dataclasses import dataclass
from functools import cache
from typing import Any, Self

from eth_abi import abi
from eth_tester.exceptions import TransactionFailed
from eth_utils import event_abi_to_log_topic, function_signature_to_4byte_selector, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, Web3RPCError

from prover.chain.artifacts import ARTIFACTS_DIR, load_artifact
from prover.chain.game_view import GameState, GameView, NodeOpening, Side
from prover.errors import ProverError

# The gas every transaction pays before execution: the base fee and calldata (EIP-2028).
TX_BASE_GAS = 21_000
CALLDATA_ZERO_GAS = 4
CALLDATA_NONZERO_GAS = 16
# A limit for claimTimeout, sent without an estimate: it uses about 60,000 gas (a game's storage
# and a payee's credit written once).
CLAIM_TIMEOUT_GAS = 200_000
FINALIZE_GAS = 200_000
# Two processes signing with one key may both take the account's next nonce; the node refuses the
# second transaction (hardhat: "Nonce too low" when automining, "Replacement transaction
# underpriced" with a pool; geth: "nonce too low", "replacement transaction underpriced"). Such a
# transaction never entered the chain or the pool, so it is signed again with a fresh nonce (and
# estimated again: a move the other process made meanwhile now reverts with its reason).
NONCE_RACE = re.compile(
    r"nonce too low|replacement transaction underpriced|nonce has already been used", re.I
)
NONCE_RETRIES = 5


# ---------------------------------------------------------------- reverts and events


@cache
def _known_errors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    """Custom errors of every artifact by selector: (name, argument names, argument types)."""
    errors = {}
    for path in ARTIFACTS_DIR.glob("*.json"):
        for entry in load_artifact(path.stem)["abi"]:
            if entry["type"] == "error":
                types = [item["type"] for item in entry["inputs"]]
                selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
                errors[selector] = (entry["name"], [item["name"] for item in entry["inputs"]], types)
    return errors


def decode_revert(data: bytes) -> str:
    """A readable form of revert data: `Name(arg=value, ...)` for a known custom error."""
    known = _known_errors().get(data[:4])
    if known is None:
        return f"unknown revert data 0x{data.hex()}" if data else "reverted without a reason"
    name, names, types = known
    values = abi.decode(types, data[4:])
    shown = ", ".join(
        f"{arg}=0x{value.hex()}" if isinstance(value, bytes) else f"{arg}={value}"
        for arg, value in zip(names, values, strict=True)
    )
    return f"{name}({shown})"


def revert_data(exc: Exception) -> bytes:
    """The raw revert data of a failed call or transaction.

    A JSON-RPC node reports it as hex data (web3's ContractLogicError). The in-process eth-tester
    provider raises TransactionFailed("execution reverted: <repr of the bytes>") instead, so the
    repr is parsed back; all this project's contracts revert with custom errors (bytes)."""
    if isinstance(exc, ContractLogicError):
        data = exc.data.get("data") if isinstance(exc.data, dict) else exc.data
        return bytes.fromhex(data[2:]) if isinstance(data, str) and data.startswith("0x") else b""
    reason = str(exc.args[0]) if exc.args else ""
    reason = reason.removeprefix("execution reverted: ")
    if re.fullmatch(r"b'.*'|b\".*\"", reason, flags=re.DOTALL):
        return ast.literal_eval(reason)
    return b""


def rpc_message(exc: Web3RPCError) -> str:
    """The node's message in a JSON-RPC error."""
    error = exc.rpc_response.get("error") if isinstance(getattr(exc, "rpc_response", None), dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return str(exc.message if hasattr(exc, "message") else exc)


@dataclass(frozen=True)
class Event:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Receipt:
    tx_hash: bytes
    gas_used: int
    events: tuple[Event, ...]
    block: int = 0

    def event(self, name: str) -> Event:
        """The only event called `name` in this receipt."""
        matches = [event for event in self.events if event.name == name]
        if len(matches) != 1:
            raise ProverError(f"expected one {name} event, the transaction emitted {len(matches)}")
        return matches[0]


def execution_gas(gas_used: int, calldata: bytes) -> int:
    """Gas a transaction spent executing (Cancun rules): gasUsed minus base fee and calldata."""
    calldata_gas = sum(CALLDATA_NONZERO_GAS if byte else CALLDATA_ZERO_GAS for byte in calldata)
    return gas_used - TX_BASE_GAS - calldata_gas


class DeployedContract:
    """A deployed contract with calls and transactions that turn reverts into ProverErrors and
    receipts into decoded events."""

    name: str

    def __init__(self, w3: Web3, address: str, abi: list[dict[str, Any]] | None = None) -> None:
        """`abi`: another build's ABI (benchmarks/bench_gas.py plays an older DisputeGame)."""
        self.w3 = w3
        self.contract: Contract = w3.eth.contract(
            address=to_checksum_address(address), abi=abi or load_artifact(self.name)["abi"]
        )
        self._events = {
            event_abi_to_log_topic(entry): entry["name"]
            for entry in self.contract.abi
            if entry["type"] == "event"
        }

    @property
    def address(self) -> str:
        return self.contract.address

    def code_problem(self) -> str | None:
        """Why the code at this address is not this contract's committed build, or None. The
        artifact's runtime code leaves its immutables as zero bytes, which the constructor fills
        in: only those may differ."""
        expected = bytes.fromhex(load_artifact(self.name)["deployedBytecode"].removeprefix("0x"))
        code = bytes(self.w3.eth.get_code(self.address))
        if not code:
            return f"no contract at {self.address}"
        differs = any(want and got != want for got, want in zip(code, expected, strict=False))
        if len(code) != len(expected) or differs:
            return f"the contract at {self.address} is not {self.name} (not the committed build's code)"
        return None

    @classmethod
    def deploy(cls, w3: Web3, *args: Any, sender: str | None = None) -> Self:
        """Deploys the contract with constructor `args` (DisputeGame: mips, k, submitBond,
        challengeBond, clockBudget, challengeWindow)."""
        artifact = load_artifact(cls.name)
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        sender = sender or w3.eth.accounts[0]
        try:
            tx_hash = factory.constructor(*args).transact({"from": sender})
        except (ContractLogicError, TransactionFailed) as exc:
            raise ProverError(f"deploying {cls.name} reverted: {decode_revert(revert_data(exc))}") from None
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
        return cls(w3, receipt["contractAddress"])

    def call(self, function: str, *args: Any) -> Any:
        """Any view or pure function by name (an eth_call)."""
        try:
            return getattr(self.contract.functions, function)(*args).call()
        except (ContractLogicError, TransactionFailed) as exc:
            raise self._error(function, exc) from None

    def transact(
        self, function: str, *args: Any, sender: str, value: int = 0, gas: int | None = None
    ) -> Receipt:
        """Any function by name as a mined transaction; the typed methods below use it. With
        `gas`, the transaction is sent with that limit and not estimated first (an estimate runs
        on the latest block, whose time may be long past)."""
        call: ContractFunction = getattr(self.contract.functions, function)(*args)
        options: dict[str, Any] = {"from": to_checksum_address(sender), "value": value}
        if gas is not None:
            options["gas"] = gas
        tx_hash = self._send(function, call, options)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise self._failure(function, call, options, receipt)
        return Receipt(
            bytes(tx_hash), receipt["gasUsed"], self._decode_events(receipt), receipt["blockNumber"]
        )

    def _send(self, function: str, call: ContractFunction, options: dict[str, Any]) -> Any:
        """The transaction's hash once the node has accepted it: sent again (signed with a fresh
        nonce) when another sender with the same key took its nonce (NONCE_RACE), a few times with
        a growing random pause; any other refusal of the node is one ProverError with its message."""
        for attempt in range(NONCE_RETRIES + 1):
            try:
                return call.transact(options)
            except (ContractLogicError, TransactionFailed) as exc:
                raise self._error(function, exc) from None
            except Web3RPCError as exc:
                message = rpc_message(exc)
                if not NONCE_RACE.search(message):
                    raise ProverError(
                        f"{self.name}.{function}: the node refused the transaction: {message}"
                    ) from None
                if attempt == NONCE_RETRIES:
                    raise ProverError(
                        f"{self.name}.{function}: another sender with the key of {options['from']} took "
                        f"its nonce {NONCE_RETRIES + 1} times in a row (last: {message}); not sent"
                    ) from None
                time.sleep(random.uniform(0.05, 0.25) * (attempt + 1))
        raise AssertionError("unreachable")

    def _failure(
        self, function: str, call: ContractFunction, options: dict[str, Any], receipt: Any
    ) -> ProverError:
        """Why a mined transaction failed (one sent without an estimate, which would have said so
        before): the call replayed on the state its block started from, its revert decoded."""
        replay = {name: value for name, value in options.items() if name != "gas"}
        try:
            call.call(replay, block_identifier=receipt["blockNumber"] - 1)
        except (ContractLogicError, TransactionFailed) as exc:
            return self._error(function, exc)
        return ProverError(
            f"{self.name}.{function} failed in transaction 0x{bytes(receipt['transactionHash']).hex()}"
        )

    def _decode_events(self, receipt: Any) -> tuple[Event, ...]:
        events = []
        for log in receipt["logs"]:
            if log["address"] != self.address or not log["topics"]:
                continue
            name = self._events.get(bytes(log["topics"][0]))
            if name is not None:
                decoded = getattr(self.contract.events, name)().process_log(log)
                events.append(Event(name, dict(decoded["args"])))
        return tuple(events)

    def _error(self, function: str, exc: Exception) -> ProverError:
        return ProverError(f"{self.name}.{function} reverted: {decode_revert(revert_data(exc))}")


class MipsVerifier(DeployedContract):
    """MIPS.sol: one instruction from a 226-byte state and a 1792-byte proof."""

    name = "MIPS"

    def step(self, state_data: bytes, proof: bytes) -> bytes:
        """The post-state hash (an eth_call: nothing is mined)."""
        return bytes(self.call("step", state_data, proof))

    def step_calldata(self, state_data: bytes, proof: bytes) -> bytes:
        return bytes.fromhex(self.contract.encode_abi("step", [state_data, proof])[2:])

    def step_execution_gas(self, state_data: bytes, proof: bytes, sender: str | None = None) -> int:
        """Execution gas of one step, measured by mining it as a transaction."""
        receipt = self.transact("step", state_data, proof, sender=sender or self.w3.eth.accounts[0])
        return execution_gas(receipt.gas_used, self.step_calldata(state_data, proof))


@dataclass(frozen=True)
class ClaimInfo:
    task_id: int
    submitter: str
    status: str  # "pending", "refuted", "final" or "superseded"
    open_games: int
    steps: int
    deadline: int
    final_state: bytes
    output_hash: bytes


CLAIM_STATUS = ("none", "pending", "refuted", "final", "superseded")
GAME_STATUS = ("none", "open", "defender won", "challenger won")
# The events that carry a game's state after the move that made it.
STATE_EVENTS = ("GameStarted", "Bisected", "Selected", "NodeOpened")
# How often a game's state is read again when a move was mined between two reads.
STATE_READS = 5


@dataclass(frozen=True)
class KnownState:
    """A game's state as last read from its events, the block of that event and, after a bisect,
    the posted hashes."""

    state: GameState
    block: int
    posted: tuple[bytes, ...]


class DisputeGame(DeployedContract):
    """DisputeGame.sol (docs/dispute-game.md)."""

    name = "DisputeGame"

    def __init__(self, w3: Web3, address: str, abi: list[dict[str, Any]] | None = None) -> None:
        super().__init__(w3, address, abi)
        # The last state read per game: only a hint, used when its hash is the stored one.
        self._known: dict[int, KnownState] = {}

    @property
    def k(self) -> int:
        return self.call("k")

    @property
    def submit_bond(self) -> int:
        return self.call("submitBond")

    @property
    def challenge_bond(self) -> int:
        return self.call("challengeBond")

    def parameters(self) -> dict[str, Any]:
        """The constructor's parameters as deployment.json records them."""
        return {
            "mips": to_checksum_address(self.call("mips")),
            "k": self.k,
            "submit_bond": self.submit_bond,
            "challenge_bond": self.challenge_bond,
            "clock_budget": self.call("clockBudget"),
            "challenge_window": self.call("challengeWindow"),
        }

    def initial_state_hash(self, program_root: bytes, input_root: bytes, model_root: bytes) -> bytes:
        return bytes(self.call("initialStateHash", program_root, input_root, model_root))

    def region_root(self, payload: bytes) -> bytes:
        return bytes(self.call("regionRoot", payload))

    def task_of(self, program_root: bytes, input_root: bytes, model_root: bytes) -> int:
        """The task of these roots (0: none; a computation is one task)."""
        return self.call("taskOf", self.call("taskKey", program_root, input_root, model_root))

    def final_claim_of(self, task_id: int) -> int:
        """The task's one final claim, its result (0 while none)."""
        return self.call("finalClaimOf", task_id)

    def create_task(self, program_root: bytes, input_root: bytes, model_root: bytes, sender: str) -> int:
        receipt = self.transact("createTask", program_root, input_root, model_root, sender=sender)
        return receipt.event("TaskCreated").args["taskId"]

    def submit(
        self, task_id: int, final_state: bytes, output: bytes, output_proof: list[bytes], sender: str
    ) -> int:
        receipt = self.transact(
            "submit", task_id, final_state, output, output_proof, sender=sender, value=self.submit_bond
        )
        return receipt.event("ClaimSubmitted").args["claimId"]

    def challenge(self, claim_id: int, sender: str) -> int:
        receipt = self.transact("challenge", claim_id, sender=sender, value=self.challenge_bond)
        return receipt.event("GameStarted").args["gameId"]

    # Every move passes the game's state back (the contract keeps only its hash): `state`, or
    # else the one read from the game's events (game_state).

    def bisect(
        self, game_id: int, hashes: list[bytes], sender: str, state: GameState | None = None
    ) -> Receipt:
        return self._move("bisect", game_id, state, list(hashes), sender=sender)

    def select(
        self,
        game_id: int,
        index: int,
        sender: str,
        posted: tuple[bytes, ...] | None = None,
        state: GameState | None = None,
    ) -> Receipt:
        """The challenger's move. The contract needs this round's hashes back (the state keeps
        only their hash): `posted`, or else they are read from the chain (`game(game_id).posted`)."""
        if posted is None:
            posted = self.game(game_id).posted
        return self._move("select", game_id, state, index, list(posted), sender=sender)

    def step(
        self, game_id: int, state_data: bytes, proof: bytes, sender: str, state: GameState | None = None
    ) -> Receipt:
        return self._move("step", game_id, state, state_data, proof, sender=sender)

    def claim_timeout(self, game_id: int, sender: str, state: GameState | None = None) -> Receipt:
        """Sent without an estimate: a clock runs out by the time of the block the claim is mined
        in, and on a quiet chain the latest block (where an estimate runs) may be long past."""
        return self._move("claimTimeout", game_id, state, sender=sender, gas=CLAIM_TIMEOUT_GAS)

    def _move(
        self, function: str, game_id: int, state: GameState | None, *args: Any, **options: Any
    ) -> Receipt:
        if state is None:
            known = self.game_state(game_id)
            state = GameState.unknown() if known is None else known.state
        receipt = self.transact(function, game_id, state.as_abi(), *args, **options)
        self._remember(game_id, receipt)
        return receipt

    def finalize(self, claim_id: int, sender: str, gas: int | None = None) -> Receipt:
        """`gas`: send without an estimate (as `claim_timeout`, for a window past by the clock
        but not yet by the latest block)."""
        return self.transact("finalize", claim_id, sender=sender, gas=gas)

    def withdraw(self, sender: str) -> int:
        return self.transact("withdraw", sender=sender).event("Withdrawn").args["amount"]

    def balance_of(self, account: str) -> int:
        return self.call("balances", to_checksum_address(account))

    def create_graph_task(
        self, node_program_root: bytes, input_root: bytes, nodes_root: bytes, node_count: int, sender: str
    ) -> int:
        receipt = self.transact(
            "createGraphTask", node_program_root, input_root, nodes_root, node_count, sender=sender
        )
        return receipt.event("TaskCreated").args["taskId"]

    def submit_graph(
        self, task_id: int, graph_state: bytes, output: bytes, output_proof: list[bytes], sender: str
    ) -> int:
        receipt = self.transact(
            "submitGraph", task_id, graph_state, output, output_proof, sender=sender, value=self.submit_bond
        )
        return receipt.event("ClaimSubmitted").args["claimId"]

    def open_node(
        self, game_id: int, opening: NodeOpening, sender: str, state: GameState | None = None
    ) -> Receipt:
        return self._move("openNode", game_id, state, opening.as_abi(), sender=sender)

    def node_initial_state_hash(
        self, program_root: bytes, node_root: bytes, input_roots: list[bytes]
    ) -> bytes:
        return bytes(self.call("nodeInitialStateHash", program_root, node_root, input_roots))

    def tree_root(self, leaf: bytes, position: int, siblings: list[bytes]) -> bytes:
        return bytes(self.call("treeRoot", leaf, position, siblings))

    def game(self, game_id: int) -> GameView:
        """The game as its events and the contract report it (its state, whose turn, the clock).
        The state and gameView are two reads: a move mined between them makes gameView refuse the
        state (GameStateMismatch), and both are read again."""
        for attempt in range(STATE_READS):
            known = self.game_state(game_id)
            if known is None:
                raise ProverError(f"no game {game_id} on the dispute game at {self.address}")
            state = known.state
            try:
                status, turn, seconds_left = self.call("gameView", game_id, state.as_abi())
            except ProverError as exc:
                if "GameStateMismatch" in str(exc) and attempt < STATE_READS - 1:
                    continue
                raise
            return GameView(
                left=state.left,
                right=state.right,
                left_hash=state.left_hash,
                right_hash=state.right_hash,
                posted=known.posted,
                turn=Side.DEFENDER if turn == 0 else Side.CHALLENGER,
                over=GAME_STATUS[status] != "open",
                mover_seconds_left=seconds_left,
                graph_phase=state.graph_phase,
                node=state.node,
                state=state,
            )
        raise AssertionError("unreachable")

    def game_state(self, game_id: int) -> KnownState | None:
        """The game's current state (the last one once it is over) from the events of its moves
        (None: no such game). While the game is open, the state is the one whose hash the
        contract stores: from the moves after the last state this wrapper knew, else from all of
        the game's moves (a restarted party, a node that answered with stale logs); a move mined
        between the two reads makes them both read again. A party never plays on a state the
        contract would refuse."""
        for _ in range(STATE_READS):
            stored = bytes(self.call("games", game_id))
            if stored == bytes(32):
                return None
            known = self._known.get(game_id)
            if known is not None and known.state.hash() == stored:
                return known
            current = self._current(self._read_states(game_id, known.block if known else 0), stored)
            if current is None and known is not None:
                current = self._current(self._read_states(game_id, 0), stored)
            if current is not None:
                self._known[game_id] = current
                return current
        raise ProverError(
            f"game {game_id}: no event of its moves carries the state the contract stores"
            f" (read {STATE_READS} times)"
        )

    @staticmethod
    def _current(found: list[KnownState], stored: bytes) -> KnownState | None:
        """The state among `found` that `stored` stands for: the last one once the game is over
        (stored is its status), else the last one with that hash."""
        if int.from_bytes(stored, "big") < len(GAME_STATUS):
            return found[-1] if found else None
        return next((entry for entry in reversed(found) if entry.state.hash() == stored), None)

    def _read_states(self, game_id: int, from_block: int) -> list[KnownState]:
        """The states the game's moves emitted from `from_block` on, in chain order."""
        events = {name: getattr(self.contract.events, name)() for name in STATE_EVENTS}
        topics = {event_abi_to_log_topic(event.abi): event for event in events.values()}
        logs = self.w3.eth.get_logs(
            {
                "address": self.address,
                "fromBlock": from_block,
                "topics": [list(topics), "0x" + game_id.to_bytes(32, "big").hex()],
            }
        )
        found = []
        for log in sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"])):
            args = topics[bytes(log["topics"][0])].process_log(log)["args"]
            posted = tuple(bytes(h) for h in args["hashes"]) if "hashes" in args else ()
            found.append(KnownState(GameState.from_abi(args["state"]), log["blockNumber"], posted))
        return found

    def _remember(self, game_id: int, receipt: Receipt) -> None:
        """The state this party's own move emitted: the next move needs no log query."""
        for event in receipt.events:
            if event.name in STATE_EVENTS and event.args.get("gameId") == game_id:
                posted = tuple(bytes(h) for h in event.args.get("hashes", ()))
                self._known[game_id] = KnownState(
                    GameState.from_abi(event.args["state"]), receipt.block, posted
                )

    def game_status(self, game_id: int) -> str:
        """ "open", "defender won" or "challenger won"."""
        return GAME_STATUS[self.call("gameStatus", game_id)]

    def claim(self, claim_id: int) -> ClaimInfo:
        task_id, submitter, status, open_games, steps, deadline, final_state, output_hash = self.call(
            "claims", claim_id
        )
        if status == 0:
            raise ProverError(f"no claim {claim_id} on the dispute game at {self.address}")
        return ClaimInfo(
            task_id,
            submitter,
            CLAIM_STATUS[status],
            open_games,
            steps,
            deadline,
            bytes(final_state),
            bytes(output_hash),
        )
