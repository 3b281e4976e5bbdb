"""keccak256 for the Merkle tree and the state hash.

The tree hashes ~128 nodes per rehashed page, so the per-call cost matters: safe-pysha3's
`keccak_256` (a pinned dependency, ~0.9 us per 64-byte node) is six times faster than going
through eth_hash's pycryptodome backend. Both compute the same Keccak-256 (tested).
"""

from sha3 import keccak_256


def keccak(data: bytes) -> bytes:
    return keccak_256(data).digest()


TREE_DEPTH = 27  # levels above the 32-byte leaves: 2^27 leaves x 32 bytes = 4 GiB
LEAF_SIZE = 32


def _zero_hashes() -> tuple[bytes, ...]:
    hashes = [bytes(LEAF_SIZE)]
    for _ in range(TREE_DEPTH):
        hashes.append(keccak(hashes[-1] + hashes[-1]))
    return tuple(hashes)


ZERO_HASHES = _zero_hashes()  # ZERO_HASHES[L]: the root of an all-zero subtree of level L
