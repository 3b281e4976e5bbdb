"""Shared setup of the contract tests: a fresh in-process chain with the verifier and a dispute
game deployed, and claims whose final state commits to an output the way docs/memory-map.md says."""

from dataclasses import dataclass

from eth_hash.auto import keccak

from prover.chain.contracts import DisputeGame, MipsVerifier
from prover.chain.local import LocalChain
from prover.task.golden import HEAP_START, SP_REGISTER, STACK_POINTER, ZERO_HASHES, region_root, top_tree_root
from vm import State

SUBMIT_BOND = 10**18
CHALLENGE_BOND = 3 * 10**17
CLOCK = 1_000
WINDOW = 5_000
OUTPUT_SLOT = 3


@dataclass
class Deployment:
    chain: LocalChain
    mips: MipsVerifier
    game: DisputeGame
    submitter: str
    challenger: str
    other: str

    def balance(self, account: str) -> int:
        return self.chain.w3.eth.get_balance(account)


def deploy(k: int = 2, clock: int = CLOCK, window: int = WINDOW) -> Deployment:
    chain = LocalChain()
    mips = MipsVerifier.deploy(chain.w3)
    game = DisputeGame.deploy(chain.w3, mips.address, k, SUBMIT_BOND, CHALLENGE_BOND, clock, window)
    submitter, challenger, other = chain.accounts[1:4]
    return Deployment(chain, mips, game, submitter, challenger, other)


def output_commitment(
    output: bytes, other_slots: dict[int, bytes] | None = None
) -> tuple[bytes, list[bytes]]:
    """A memory root whose slot 3 holds `output`, and slot 3's four top-tree siblings."""
    slots = [ZERO_HASHES[23]] * 16
    for slot, root in (other_slots or {}).items():
        slots[slot] = root
    slots[OUTPUT_SLOT] = region_root(output)
    siblings = [
        slots[2],
        keccak(slots[0] + slots[1]),
        top_tree_root_of(slots[4:8]),
        top_tree_root_of(slots[8:16]),
    ]
    return top_tree_root(slots), siblings


def top_tree_root_of(nodes: list[bytes]) -> bytes:
    while len(nodes) > 1:
        nodes = [keccak(nodes[i] + nodes[i + 1]) for i in range(0, len(nodes), 2)]
    return nodes[0]


def final_state(
    mem_root: bytes, steps: int, exit_code: int = 0, exited: int = 1, pc: int = 0x400100
) -> bytes:
    """A 226-byte state encoding (docs/machine.md) with the given exit fields."""
    registers = [0] * 32
    registers[SP_REGISTER] = STACK_POINTER
    state = State(
        pc=pc,
        next_pc=pc + 4,
        heap=HEAP_START,
        exit_code=exit_code,
        exited=exited,
        step=steps,
        registers=registers,
        mem_root=mem_root,
    )
    return state.encode()
