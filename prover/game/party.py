"""A party of the dispute: its connection to the chain (what prover/cli/options.py's chain options
describe), its base directory, and its own run there (golden.json, final.json, the checkpoints and an
optional fault injection) as the trace the agent plays from."""

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import Web3Exception
from web3.middleware import SignAndSendRawMiddlewareBuilder

from prover.chain.connect import connect
from prover.chain.contracts import DisputeGame, MipsVerifier
from prover.errors import ProverError
from prover.game.agent import FaultyTrace, Trace
from prover.task.basedir import GRAPH_JSON, read_json, write_json
from prover.task.sealed import sealed_exists
from prover.task.verified import Report, verified_run
from vm.machine import Machine
from vm.trace import Trace as VmTrace

DEFAULT_RPC = "http://127.0.0.1:8545"


@dataclass(frozen=True)
class Party:
    """One party's connection: its sender on the chain and its base directory."""

    w3: Web3
    rpc_url: str
    sender: str
    basedir: Path
    deployment_path: Path

    def deployment(self) -> dict[str, Any]:
        return read_json(self.deployment_path, "a deployment (run `prover deploy` first)")

    @cached_property
    def verified_deployment(self) -> dict[str, Any]:
        """deployment.json, checked against the chain before any move depends on it: the chain id,
        the verifier's and the DisputeGame's code (the committed builds) and the game's parameters."""
        deployment = self.deployment()
        try:
            chain_id = deployment["chain_id"]
            game = DisputeGame(self.w3, deployment["dispute_game"])
            mips = MipsVerifier(self.w3, deployment["mips"])
        except (KeyError, TypeError, ValueError) as exc:
            what = f"not a deployment of `prover deploy` ({exc!r})"
            raise ProverError(f"{self.deployment_path}: {what}") from None
        if not self.w3.eth.get_code(game.address):
            raise ProverError(
                f"{self.deployment_path}: no DisputeGame at {game.address} on the chain at "
                f"{self.rpc_url} (a new chain? run `prover deploy` again)"
            )
        if chain_id != self.w3.eth.chain_id:
            raise ProverError(
                f"{self.deployment_path}: made on chain {chain_id}, but the node at {self.rpc_url} "
                f"is chain {self.w3.eth.chain_id}"
            )
        problem = game.code_problem() or mips.code_problem()
        recorded = {
            "mips": mips.address,
            "k": deployment.get("k"),
            "submit_bond": deployment.get("submit_bond"),
            "challenge_bond": deployment.get("challenge_bond"),
            "clock_budget": deployment.get("clock_budget"),
            "challenge_window": deployment.get("challenge_window"),
        }
        if problem is None:
            on_chain = game.parameters()
            wrong = [name for name, value in recorded.items() if on_chain[name] != value]
            if wrong:
                shown = ", ".join(f"{name} {recorded[name]} (chain: {on_chain[name]})" for name in wrong)
                problem = f"the DisputeGame at {game.address} does not have the recorded {shown}"
        if problem is None:
            problem = self._block_problem(game, deployment.get("block"))
        if problem:
            raise ProverError(f"{self.deployment_path}: {problem}")
        return deployment

    def _block_problem(self, game: DisputeGame, block: Any) -> str | None:
        """Event queries start at the recorded block: the game's events before it would be missed.
        (A node without logs that old cannot say; then nothing is found.)"""
        if not isinstance(block, int) or not 0 <= block <= self.w3.eth.block_number:
            return f"block {block!r} is not a block of this chain"
        if block == 0:
            return None
        try:
            earlier = self.w3.eth.get_logs({"address": game.address, "fromBlock": 0, "toBlock": block - 1})
        except (ValueError, Web3Exception):
            return None
        return f"the DisputeGame has events before the recorded block {block}" if earlier else None

    def dispute_game(self) -> DisputeGame:
        """The deployment's DisputeGame, checked against the chain (verified_deployment)."""
        return DisputeGame(self.w3, self.verified_deployment["dispute_game"])

    def own_run(self, report: Report) -> tuple["Run", Trace]:
        return load_run(self.basedir, report)


def connect_party(rpc: str, basedir: Path, account: int, key: str | None, deployment: Path | None) -> Party:
    """The party the chain options describe, connected to its node."""
    w3 = connect(rpc)
    if key:
        try:
            signer = Account.from_key(key)
        except (ValueError, TypeError):
            raise ProverError("--key: not a 32-byte private key in hex") from None
        w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(signer), layer=0)
        sender = signer.address
    else:
        accounts = w3.eth.accounts
        if account >= len(accounts):
            raise ProverError(f"--account {account}: the node at {rpc} has {len(accounts)} accounts")
        sender = accounts[account]
    w3.eth.default_account = sender
    return Party(w3, rpc, to_checksum_address(sender), basedir, deployment or basedir / "deployment.json")


def record_fault(basedir: Path, fault_step: int | None, report: Report) -> None:
    """Make --fault-step part of the party: later commands read it from fault.json. (A graph
    party's fault step is inside the VM run of the node its game reaches, unknown until then.)"""
    if fault_step is None:
        return
    steps = None if is_graph_party(basedir) else load_run(basedir, report)[0].steps
    if steps is not None and fault_step > steps:
        raise ProverError(f"--fault-step {fault_step}: the run in {basedir} has only {steps} steps")
    path = basedir / "fault.json"
    if path.exists():
        recorded = read_json(path, "a fault injection")["step"]
        if recorded != fault_step:
            raise ProverError(f"{path}: this party already corrupts step {recorded}, not {fault_step}")
        return
    write_json(path, {"step": fault_step})


# ---------------------------------------------------------------- the party's own run


@dataclass(frozen=True)
class Run:
    """What a party's golden image and finished run say (golden.json, final.json)."""

    roots: tuple[bytes, bytes, bytes]  # program, input, model: the task on chain
    steps: int
    output: bytes
    output_proof: list[bytes]
    predicted_class: int
    final_hash: bytes  # SN, or for a graph run G_n
    nodes_root: bytes | None = None  # a graph run's: the task is a graph task


def is_graph_party(basedir: Path) -> bool:
    """Whether the base directory holds a graph task (`prover golden`, by default for an int8
    model): it plays multi-phase games."""
    return sealed_exists(basedir / GRAPH_JSON)


def task_file(basedir: Path) -> Path:
    """The file that names the party's task: graph.json (multi-phase) or golden.json."""
    return basedir / (GRAPH_JSON if is_graph_party(basedir) else "golden.json")


def load_run(basedir: Path, report: Report) -> tuple[Run, Trace]:
    """The party's run and its trace, with its recorded fault injection if it has one: a VM run's
    files each checked or re-derived first (prover/task/verified.py); a graph run recomputed."""
    if is_graph_party(basedir):
        return load_graph_run_of(basedir, report)
    verified = verified_run(basedir, report)
    golden, final = verified.golden, verified.final
    run = Run(
        roots=tuple(bytes.fromhex(golden[name][2:]) for name in ("program_root", "input_root", "model_root")),
        steps=final["steps"],
        output=bytes.fromhex(final["output"][2:]),
        output_proof=[bytes.fromhex(h[2:]) for h in final["output_proof"]],
        predicted_class=final["class"],
        final_hash=bytes.fromhex(final["SN"][2:]),
    )
    trace = ForwardTrace(verified.trace)
    fault_path = basedir / "fault.json"
    if not fault_path.exists():
        return run, trace
    return run, FaultyTrace(trace, read_json(fault_path, "a fault injection")["step"])


class ForwardTrace:
    """The VM's checkpointed trace, keeping one machine between queries. Within a round the agent
    asks for increasing steps (the split points; the challenger's comparisons): the next one is
    reached by running on from the previous one or by replaying from its checkpoint, whichever
    runs fewer steps."""

    def __init__(self, trace: VmTrace) -> None:
        self.trace = trace
        self.machine: Machine | None = None
        self.machine_step = 0
        self.hashes: dict[int, bytes] = {}

    def state_at(self, step: int) -> bytes:
        if self.trace.exited and step >= self.trace.steps:
            return self.trace.final_state
        ahead = step - self.machine_step
        replay = step % self.trace.interval  # steps from the checkpoint at or before `step`
        if self.machine is None or not 0 <= ahead <= replay:
            self.machine, self.machine_step = self.trace.machine_at(step), step
        elif ahead:
            if self.trace.runner(self.machine, ahead) != ahead:
                raise ProverError(f"the run ended before step {step}: the checkpoints do not match it")
            self.machine_step = step
        return self.machine.state.encode()

    def state_hash_at(self, step: int) -> bytes:
        """Remembered: the split points of a round are the ends of the next round's interval,
        which every move checks against the chain (prover/game/agent.py's `disagreement`)."""
        if step not in self.hashes:
            self.hashes[step] = keccak(self.state_at(step))
        return self.hashes[step]

    def witness_at(self, step: int) -> tuple[bytes, bytes]:
        return self.trace.witness_at(step)


def load_graph_run_of(basedir: Path, report: Report) -> tuple[Run, Trace]:
    """A graph run's claim (graph.json) and its trace, recomputed natively (deterministic: a party
    killed at any point gets the same trace back), with the fault step of its node's VM run."""
    # Imported here: the model code and numpy are a quarter of a single-phase chain command's
    # start-up, and only graph parties need them.
    from prover.game.multiphase import GraphParty
    from prover.task.graph_run import load_graph_run

    native = load_graph_run(basedir, report)
    graph = native.record
    run = Run(
        roots=tuple(bytes.fromhex(graph[name][2:]) for name in ("program_root", "input_root", "model_root")),
        steps=graph["node_count"],
        output=bytes.fromhex(graph["output"][2:]),
        output_proof=[bytes.fromhex(h[2:]) for h in graph["output_proof"]],
        predicted_class=graph["class"],
        final_hash=bytes.fromhex(graph["final_state"][2:]),
        nodes_root=bytes.fromhex(graph["nodes_root"][2:]),
    )
    fault_path = basedir / "fault.json"
    fault_step = read_json(fault_path, "a fault injection")["step"] if fault_path.exists() else None
    return run, GraphParty(native.graph, native.commitment, native.trace, fault_step)


def graph_ops(basedir: Path, report: Report) -> list[str]:
    """The op of each node (1-based: index node - 1) of a graph party's model, for `status`."""
    # Imported here, as in load_graph_run_of.
    from prover.model.modelfile import load_model
    from prover.task.commitments import task_graph
    from prover.task.graph_run import read_graph_task

    graph = read_graph_task(basedir, report)
    return [node.op.name for node in task_graph(load_model(graph["model"]), graph["tile_macs"]).nodes]
