// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IInferenceReceiver, InferenceRequests} from "./InferenceRequests.sol";

/// @title SevenBounty (an example dapp)
/// @notice Pays a prize to whoever shows a digit that the model classifies as a 7: the caller of
///         `ask` names the image by its input root, the answer comes from a final claim through
///         InferenceRequests, and the prize is credited when the class is 7 and the bounty still
///         holds a prize that is not owed already.
contract SevenBounty is IInferenceReceiver {
    uint32 public constant TARGET_CLASS = 7;

    InferenceRequests public immutable requests;
    bytes32 public immutable programRoot;
    bytes32 public immutable modelRoot;
    uint256 public immutable prize;
    mapping(uint256 => address) public askedBy;
    mapping(address => uint256) public balances;
    /// @notice Prizes credited and not yet withdrawn.
    uint256 public owed;

    event Asked(uint256 indexed requestId, address indexed asker, bytes32 inputRoot);
    event Classified(uint256 indexed requestId, address indexed asker, uint32 class, bool paid);

    error NotRequests(address caller);
    error ShortOutput(uint256 length);
    error NothingToWithdraw();
    error TransferFailed();

    constructor(InferenceRequests requests_, bytes32 programRoot_, bytes32 modelRoot_, uint256 prize_) payable {
        requests = requests_;
        programRoot = programRoot_;
        modelRoot = modelRoot_;
        prize = prize_;
    }

    /// @notice Asks for the class of the image with `inputRoot`; the value sent rewards the answer.
    function ask(bytes32 inputRoot) external payable returns (uint256 requestId) {
        requestId = requests.request{value: msg.value}(programRoot, inputRoot, modelRoot);
        askedBy[requestId] = msg.sender;
        emit Asked(requestId, msg.sender, inputRoot);
    }

    /// @notice The answer: the output region's payload, a big-endian u32 class first.
    function onInference(uint256 requestId, bytes calldata output) external {
        if (msg.sender != address(requests)) revert NotRequests(msg.sender);
        if (output.length < 4) revert ShortOutput(output.length);
        uint32 class = uint32(bytes4(output[0:4]));
        address asker = askedBy[requestId];
        bool paid = class == TARGET_CLASS && address(this).balance >= owed + prize;
        if (paid) {
            owed += prize;
            balances[asker] += prize;
        }
        emit Classified(requestId, asker, class, paid);
    }

    /// @notice More prizes.
    receive() external payable {}

    function withdraw() external {
        uint256 amount = balances[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        balances[msg.sender] = 0;
        owed -= amount;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
