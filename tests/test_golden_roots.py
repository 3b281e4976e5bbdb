"""The pure functions behind S0 and the output proof (prover/task/golden.py), against naive versions."""

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from prover.errors import ProverError
from prover.task.golden import (
    SLOT_LEVEL,
    ZERO_HASHES,
    region_bytes,
    region_root,
    subtree_root,
    top_tree_root,
    verify_output_proof,
)

SMALL_LEVEL = 5  # 32 leaves, 1 KiB: small enough to hash every leaf naively


def naive_root(content: bytes, level: int) -> bytes:
    nodes = [content[i : i + 32] for i in range(0, 32 << level, 32)]
    while len(nodes) > 1:
        nodes = [keccak(nodes[i] + nodes[i + 1]) for i in range(0, len(nodes), 2)]
    return nodes[0]


chunk = st.tuples(st.integers(0, (32 << SMALL_LEVEL) - 1), st.binary(min_size=0, max_size=200))


@settings(max_examples=200, deadline=None)
@given(st.lists(chunk, max_size=4))
def test_subtree_root_equals_the_naive_root(chunks: list[tuple[int, bytes]]) -> None:
    size = 32 << SMALL_LEVEL
    chunks = [(offset, data[: size - offset]) for offset, data in chunks]
    content = bytearray(size)
    for offset, data in chunks:
        content[offset : offset + len(data)] = data
    assert subtree_root(chunks, SMALL_LEVEL) == naive_root(bytes(content), SMALL_LEVEL)


def test_zero_hashes_chain() -> None:
    assert ZERO_HASHES[0] == bytes(32)
    assert ZERO_HASHES[5] == naive_root(bytes(32 << 5), 5)


def test_region_layout_and_root() -> None:
    assert region_bytes(b"\x07" * 3) == b"\x00\x00\x00\x03" + bytes(28) + b"\x07\x07\x07"
    assert region_root(b"") == ZERO_HASHES[SLOT_LEVEL]  # a zero length is an all-zero slot
    header = (40).to_bytes(4, "big") + bytes(28)
    payload = bytes(range(40))
    # Two leaves of payload (the second half empty) under the header leaf, then zeros up to level 23.
    node = keccak(keccak(header + payload[:32]) + keccak(payload[32:] + bytes(24) + bytes(32)))
    for level in range(2, SLOT_LEVEL):
        node = keccak(node + ZERO_HASHES[level])
    assert region_root(payload) == node


def test_oversized_payload_is_a_user_error() -> None:
    with pytest.raises(ProverError, match="does not fit"):
        region_bytes(bytes((1 << 28) - 31))


def test_output_proof_verifies_only_the_right_payload() -> None:
    output = b"\x00\x00\x00\x07" + bytes(range(10))
    slots = [keccak(bytes([i])) for i in range(16)]
    slots[3] = region_root(output)
    root = top_tree_root(slots)
    pair = [keccak(slots[i] + slots[i + 1]) for i in range(0, 16, 2)]
    quad = [keccak(pair[i] + pair[i + 1]) for i in range(0, 8, 2)]
    siblings = [slots[2], pair[0], quad[1], keccak(quad[2] + quad[3])]
    assert verify_output_proof(output, siblings, root)
    assert not verify_output_proof(output[:-1] + b"\x00", siblings, root)
    assert not verify_output_proof(output, siblings[::-1], root)
    assert not verify_output_proof(output, siblings[:3], root)
