// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ReentrantPayee (test only)
/// @notice A party of the dispute game that is a contract: it forwards moves to the game and,
///         when paid, tries to re-enter the game (withdraw again, or any other call it was told).
contract ReentrantPayee {
    address public immutable game;
    bytes public reentryCall;
    uint256 public reentryAttempts;
    uint256 public reentrySuccesses;

    constructor(address game_) {
        game = game_;
    }

    /// @notice Sends `data` to the game with the attached value; bubbles a revert up unchanged.
    function forward(bytes calldata data) external payable returns (bytes memory result) {
        bool ok;
        (ok, result) = game.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
    }

    /// @notice The call to try from inside receive().
    function setReentryCall(bytes calldata data) external {
        reentryCall = data;
    }

    receive() external payable {
        if (reentryCall.length == 0 || reentryAttempts >= 3) return;
        reentryAttempts += 1;
        (bool ok,) = game.call(reentryCall);
        if (ok) reentrySuccesses += 1;
    }
}
