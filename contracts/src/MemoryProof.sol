// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title MemoryProof
/// @notice Reads and writes one 32-bit word of the machine's memory through a Merkle proof
///         (docs/machine.md, "Memory"). A proof is 28 x 32 bytes of calldata: the 32-byte leaf
///         holding the word, then the 27 sibling hashes from the leaf level up to the root.
///         Leaves are not hashed; an inner node is keccak256(left || right).
library MemoryProof {
    /// @notice The proof does not lead from its leaf to the expected memory root.
    error InvalidMemoryProof();

    uint256 internal constant PROOF_SIZE = 28 * 32;

    /// @notice The word at `addr & ~3`, after checking the proof at calldata offset `proofOffset`
    ///         against `root`.
    function readWord(uint256 proofOffset, uint256 addr, bytes32 root) internal pure returns (uint256 word) {
        uint256 leaf;
        assembly ("memory-safe") {
            leaf := calldataload(proofOffset)
        }
        if (rootOf(proofOffset, addr, leaf) != root) revert InvalidMemoryProof();
        assembly ("memory-safe") {
            // Byte (addr & 28) of the leaf starts the word; the big-endian word is the top 4 bytes.
            word := shr(224, calldataload(add(proofOffset, and(addr, 28))))
        }
    }

    /// @notice The memory root after writing `word` at `addr & ~3`, computed from the same proof.
    ///         The caller must have verified the proof with readWord first.
    function writeWord(uint256 proofOffset, uint256 addr, uint256 word) internal pure returns (bytes32) {
        uint256 leaf;
        assembly ("memory-safe") {
            // The word occupies bits [shift, shift + 32) of the leaf read as a big-endian number.
            let shift := shl(3, sub(28, and(addr, 28)))
            leaf := or(and(calldataload(proofOffset), not(shl(shift, 0xffffffff))), shl(shift, word))
        }
        return rootOf(proofOffset, addr, leaf);
    }

    /// @notice The root reached from `leaf` at the leaf index of `addr` with the proof's siblings.
    /// @dev Bit j of the leaf index (bit j + 5 of addr) says whether the node at level j is a right
    ///      child; `and(shr(j, addr), 0x20)` is then the node's slot in the scratch pair at 0x00-0x3f.
    ///      Unrolled: a loop's counter and stack shuffling cost more than the hashing itself.
    function rootOf(uint256 proofOffset, uint256 addr, uint256 leaf) internal pure returns (bytes32 node) {
        assembly ("memory-safe") {
            function parent(child, slot, sibling) -> hash {
                mstore(slot, child)
                mstore(xor(slot, 0x20), sibling)
                hash := keccak256(0x00, 0x40)
            }
            node := leaf
            node := parent(node, and(shr(0, addr), 0x20), calldataload(add(proofOffset, 32)))
            node := parent(node, and(shr(1, addr), 0x20), calldataload(add(proofOffset, 64)))
            node := parent(node, and(shr(2, addr), 0x20), calldataload(add(proofOffset, 96)))
            node := parent(node, and(shr(3, addr), 0x20), calldataload(add(proofOffset, 128)))
            node := parent(node, and(shr(4, addr), 0x20), calldataload(add(proofOffset, 160)))
            node := parent(node, and(shr(5, addr), 0x20), calldataload(add(proofOffset, 192)))
            node := parent(node, and(shr(6, addr), 0x20), calldataload(add(proofOffset, 224)))
            node := parent(node, and(shr(7, addr), 0x20), calldataload(add(proofOffset, 256)))
            node := parent(node, and(shr(8, addr), 0x20), calldataload(add(proofOffset, 288)))
            node := parent(node, and(shr(9, addr), 0x20), calldataload(add(proofOffset, 320)))
            node := parent(node, and(shr(10, addr), 0x20), calldataload(add(proofOffset, 352)))
            node := parent(node, and(shr(11, addr), 0x20), calldataload(add(proofOffset, 384)))
            node := parent(node, and(shr(12, addr), 0x20), calldataload(add(proofOffset, 416)))
            node := parent(node, and(shr(13, addr), 0x20), calldataload(add(proofOffset, 448)))
            node := parent(node, and(shr(14, addr), 0x20), calldataload(add(proofOffset, 480)))
            node := parent(node, and(shr(15, addr), 0x20), calldataload(add(proofOffset, 512)))
            node := parent(node, and(shr(16, addr), 0x20), calldataload(add(proofOffset, 544)))
            node := parent(node, and(shr(17, addr), 0x20), calldataload(add(proofOffset, 576)))
            node := parent(node, and(shr(18, addr), 0x20), calldataload(add(proofOffset, 608)))
            node := parent(node, and(shr(19, addr), 0x20), calldataload(add(proofOffset, 640)))
            node := parent(node, and(shr(20, addr), 0x20), calldataload(add(proofOffset, 672)))
            node := parent(node, and(shr(21, addr), 0x20), calldataload(add(proofOffset, 704)))
            node := parent(node, and(shr(22, addr), 0x20), calldataload(add(proofOffset, 736)))
            node := parent(node, and(shr(23, addr), 0x20), calldataload(add(proofOffset, 768)))
            node := parent(node, and(shr(24, addr), 0x20), calldataload(add(proofOffset, 800)))
            node := parent(node, and(shr(25, addr), 0x20), calldataload(add(proofOffset, 832)))
            node := parent(node, and(shr(26, addr), 0x20), calldataload(add(proofOffset, 864)))
        }
    }
}
