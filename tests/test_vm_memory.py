"""Merkle memory: roots against a naive tree, proofs, the verifier, and the state encoding."""

import random

import pytest
from eth_hash.auto import keccak as eth_keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from vm import Memory, State, VmError, verify_proof
from vm.hashing import ZERO_HASHES, keccak
from vm.memory import PROOF_SIZE, page_root


def naive_root(writes: dict[int, int]) -> bytes:
    """The root from byte writes {addr: byte}, hashing level by level over the touched leaves."""
    leaves: dict[int, bytearray] = {}
    for addr, byte in writes.items():
        leaves.setdefault(addr >> 5, bytearray(32))[addr & 31] = byte
    nodes = {index: bytes(leaf) for index, leaf in leaves.items()}
    for level in range(27):
        parents = {}
        for index in {index >> 1 for index in nodes}:
            left = nodes.get(2 * index, ZERO_HASHES[level])
            right = nodes.get(2 * index + 1, ZERO_HASHES[level])
            parents[index] = keccak(left + right)
        nodes = parents
    return nodes.get(0, ZERO_HASHES[27])


def test_hash_matches_eth_hash() -> None:
    assert keccak(b"abc") == eth_keccak(b"abc")
    assert ZERO_HASHES[1] == eth_keccak(bytes(64))


def test_empty_memory() -> None:
    memory = Memory()
    assert memory.merkle_root() == ZERO_HASHES[27]
    proof = memory.proof(0x12345678)
    assert proof == ZERO_HASHES[0] + b"".join(ZERO_HASHES[:27])
    assert verify_proof(memory.merkle_root(), 0x12345678, proof)


def test_zero_writes_keep_the_empty_root() -> None:
    memory = Memory()
    memory.write(0x1000, bytes(100))
    memory.write_word(0x5000, 7)
    memory.write_word(0x5000, 0)
    assert memory.merkle_root() == ZERO_HASHES[27]


def test_page_root_of_zero_page() -> None:
    assert page_root(bytes(4096)) == ZERO_HASHES[7]


addresses = st.one_of(
    st.integers(0, 2**32 - 1),
    st.sampled_from([0, 31, 32, 0xFFF, 0x1000, 0x0FFFFFFF, 0x10000000, 0x7FFFFFFF, 0x80000000, 2**32 - 1]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(addresses, st.binary(min_size=1, max_size=40)), min_size=1, max_size=6))
def test_incremental_root_equals_naive_root(writes: list[tuple[int, bytes]]) -> None:
    memory = Memory()
    expected: dict[int, int] = {}
    for number, (addr, data) in enumerate(writes):
        data = data[: 2**32 - addr]
        memory.write(addr, data)
        for offset, byte in enumerate(data):
            expected[addr + offset] = byte
        if number % 2:  # roots taken between writes, too
            assert memory.merkle_root() == naive_root(expected)
    assert memory.merkle_root() == naive_root(expected)
    for addr in expected:
        assert memory.read(addr, 1)[0] == expected[addr]


@settings(max_examples=60, deadline=None)
@given(addresses, st.integers(0, 2**32 - 1), st.integers(0, PROOF_SIZE - 1), st.integers(1, 255))
def test_any_write_proves_and_any_tampered_byte_fails(
    addr: int, value: int, position: int, flip: int
) -> None:
    memory = Memory()
    memory.write(0x400000, random.Random(addr).randbytes(256))  # some other content
    addr &= ~3
    memory.write_word(addr, value)
    root = memory.merkle_root()
    proof = memory.proof(addr)
    assert verify_proof(root, addr, proof)
    assert int.from_bytes(proof[addr & 28 : (addr & 28) + 4], "big") == value
    tampered = bytearray(proof)
    tampered[position] ^= flip
    assert not verify_proof(root, addr, bytes(tampered))
    if proof[:32] != proof[32:64]:  # a leaf's proof does not prove its (different) neighbour
        assert not verify_proof(root, addr ^ 0x20, proof)
    assert not verify_proof(root, addr, proof[:-1])


def test_proofs_against_the_root_after_many_writes() -> None:
    rng = random.Random(7)
    memory = Memory()
    addrs = [rng.getrandbits(32) & ~3 for _ in range(50)]
    for addr in addrs:
        memory.write_word(addr, rng.getrandbits(32))
    root = memory.merkle_root()
    for addr in addrs:
        assert verify_proof(root, addr, memory.proof(addr))


def test_copy_is_independent() -> None:
    memory = Memory()
    memory.write_word(0x100, 1)
    clone = memory.copy()
    clone.write_word(0x100, 2)
    assert memory.read_word(0x100) == 1 and clone.read_word(0x100) == 2
    assert memory.merkle_root() != clone.merkle_root()


def test_writes_across_pages_and_out_of_range() -> None:
    memory = Memory()
    memory.write(0xFFE, b"abcd")
    assert memory.read(0xFFC, 8) == b"\0\0abcd\0\0"
    with pytest.raises(VmError):
        memory.write(2**32 - 2, b"abc")
    with pytest.raises(VmError):
        memory.read_word(2)


def test_state_encoding_layout_and_round_trip() -> None:
    state = State(
        pc=0x01020304,
        next_pc=0x05060708,
        lo=9,
        hi=10,
        heap=11,
        exit_code=12,
        exited=1,
        step=0x0102030405060708,
        registers=list(range(100, 132)),
        mem_root=bytes(range(32)),
    )
    data = state.encode()
    assert len(data) == 226
    assert data[:32] == bytes(range(32)) and data[32:68] == bytes(36)
    assert data[68:72] == bytes.fromhex("01020304") and data[72:76] == bytes.fromhex("05060708")
    assert data[88:90] == b"\x0c\x01" and data[90:98] == bytes.fromhex("0102030405060708")
    assert data[98:102] == (100).to_bytes(4, "big") and data[222:] == (131).to_bytes(4, "big")
    assert State.decode(data) == state and State.decode(data).encode() == data
    assert state.hash() == eth_keccak(data)
    with pytest.raises(VmError):
        State.decode(data[:-1])
    with pytest.raises(VmError):
        State.decode(data[:89] + b"\x02" + data[90:])
