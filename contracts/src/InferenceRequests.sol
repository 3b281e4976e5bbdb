// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice What a consumer reads of the dispute game (DisputeGame.sol's public getters).
interface IDisputeGameResults {
    function taskOf(bytes32 key) external view returns (uint256 taskId);

    function taskKey(bytes32 programRoot, bytes32 inputRoot, bytes32 modelRoot) external pure returns (bytes32);

    function claims(uint256 claimId)
        external
        view
        returns (
            uint64 taskId,
            address submitter,
            uint8 status,
            uint24 openGames,
            uint64 steps,
            uint64 deadline,
            bytes32 finalState,
            bytes32 outputHash
        );
}

/// @notice A dapp that asked for an inference and wants the answer delivered.
interface IInferenceReceiver {
    function onInference(uint256 requestId, bytes calldata output) external;
}

/// @title InferenceRequests
/// @notice How a dapp asks for an inference and uses the verified answer (docs/contracts.md): it
///         names the task by its program, input and model roots and offers a reward; once a claim
///         on such a task is final in the dispute game, anyone hands its output in, the reward is
///         credited to the claim's submitter, and the requester (when it is a contract) gets the
///         output in `onInference`. A task has one final claim at most (DisputeGame: one task per
///         computation, one result per task), so a request has one possible answer.
contract InferenceRequests {
    struct Request {
        address requester;
        uint256 reward;
        bytes32 programRoot;
        bytes32 inputRoot;
        bytes32 modelRoot;
        uint256 claimId; // the answering claim; 0 while unanswered
    }

    /// @notice DisputeGame's ClaimStatus.Final.
    uint8 private constant CLAIM_FINAL = 3;
    /// @notice Gas the requester's callback gets; `answer` refuses to run with less to give, so a
    ///         caller cannot starve the callback on purpose.
    uint256 public constant CALLBACK_GAS = 300_000;

    IDisputeGameResults public immutable game;
    uint256 public requestCount;
    mapping(uint256 => Request) public requests;
    mapping(uint256 => bytes) private outputs;
    /// @notice Credited, not yet withdrawn rewards per account.
    mapping(address => uint256) public balances;

    event Requested(
        uint256 indexed requestId,
        address indexed requester,
        bytes32 programRoot,
        bytes32 inputRoot,
        bytes32 modelRoot,
        uint256 reward
    );
    event Answered(
        uint256 indexed requestId, uint256 indexed claimId, address indexed submitter, bytes output, bool delivered
    );
    event Withdrawn(address indexed account, uint256 amount);

    error UnknownRequest(uint256 requestId);
    error AlreadyAnswered(uint256 requestId, uint256 claimId);
    error NotAnswered(uint256 requestId);
    error ClaimNotFinal(uint256 claimId, uint8 status);
    error OtherTask(uint256 requestId, uint256 taskId);
    error OutputMismatch(uint256 claimId);
    error CallbackGasTooLow(uint256 available);
    error NothingToWithdraw();
    error TransferFailed();

    constructor(IDisputeGameResults game_) {
        game = game_;
    }

    /// @notice Asks for the output of `modelRoot`'s inference on `inputRoot` by `programRoot`;
    ///         the value sent is the reward of whoever's final claim answers it.
    function request(bytes32 programRoot, bytes32 inputRoot, bytes32 modelRoot)
        external
        payable
        returns (uint256 requestId)
    {
        requestId = ++requestCount;
        requests[requestId] = Request(msg.sender, msg.value, programRoot, inputRoot, modelRoot, 0);
        emit Requested(requestId, msg.sender, programRoot, inputRoot, modelRoot, msg.value);
    }

    /// @notice Answers a request with the output of a final claim on the same task; anyone may
    ///         call it. The reward goes to the claim's submitter, the output to the requester.
    function answer(uint256 requestId, uint256 claimId, bytes calldata output) external {
        Request storage asked = requests[requestId];
        if (asked.requester == address(0)) revert UnknownRequest(requestId);
        if (asked.claimId != 0) revert AlreadyAnswered(requestId, asked.claimId);
        (uint256 taskId, address submitter, uint8 status,,,,, bytes32 outputHash) = game.claims(claimId);
        if (status != CLAIM_FINAL) revert ClaimNotFinal(claimId, status);
        // One task per computation (DisputeGame.taskOf), and one final claim per task.
        if (game.taskOf(game.taskKey(asked.programRoot, asked.inputRoot, asked.modelRoot)) != taskId) {
            revert OtherTask(requestId, taskId);
        }
        if (keccak256(output) != outputHash) revert OutputMismatch(claimId);

        asked.claimId = claimId;
        outputs[requestId] = output;
        balances[submitter] += asked.reward;
        bool delivered = _deliver(asked.requester, requestId, output);
        emit Answered(requestId, claimId, submitter, output, delivered);
    }

    /// @notice The answer of a request (reverts while there is none).
    function outputOf(uint256 requestId) external view returns (bytes memory) {
        if (requests[requestId].claimId == 0) revert NotAnswered(requestId);
        return outputs[requestId];
    }

    /// @notice Sends the caller its credited rewards.
    function withdraw() external {
        uint256 amount = balances[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        balances[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @dev The callback, after every state change (a re-entering receiver finds the request
    ///      answered). A receiver that reverts or runs out of its gas does not undo the answer:
    ///      the output stays readable through `outputOf`.
    function _deliver(address requester, uint256 requestId, bytes calldata output) private returns (bool) {
        if (requester.code.length == 0) return false;
        // Of the gas left at a call, at most 63/64 reach the callee (EIP-150).
        if (gasleft() < CALLBACK_GAS * 64 / 63 + 10_000) revert CallbackGasTooLow(gasleft());
        try IInferenceReceiver(requester).onInference{gas: CALLBACK_GAS}(requestId, output) {
            return true;
        } catch {
            return false;
        }
    }
}
