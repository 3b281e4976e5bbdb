// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MIPS} from "../src/MIPS.sol";

/// @title StepBatch (test only)
/// @notice Runs MIPS.step on many witnesses in one eth_call, so the differential tests spend their
///         time in the verifier rather than in one JSON-RPC round trip per step. Each step is an
///         external call with the canonical ABI encoding, the calldata MIPS.step demands.
contract StepBatch {
    /// @notice The post-state hash of every (states[i], proofs[i]); reverts as a failing step does.
    function steps(MIPS mips, bytes[] calldata states, bytes[] calldata proofs)
        external
        pure
        returns (bytes32[] memory posts)
    {
        posts = new bytes32[](states.length);
        for (uint256 i = 0; i < states.length; ++i) {
            posts[i] = mips.step(states[i], proofs[i]);
        }
    }
}
