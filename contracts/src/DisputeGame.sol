// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice The one-step verifier (contracts/src/MIPS.sol).
interface IMIPS {
    function step(bytes calldata stateData, bytes calldata proof) external pure returns (bytes32);
}

/// @title DisputeGame
/// @notice Tasks, claimed results and k-ary dissection games over their execution traces
///         (docs/dispute-game.md). A task fixes the initial state S0 from the program, input and
///         model roots; a claim posts a final state SN with its proven output and a bond; each
///         challenger plays its own game against the submitter, narrowing [0, N] to a single
///         step that the MIPS verifier decides. Chess clocks bound each side's thinking time.
///         Money moves only by pull payments (withdraw).
contract DisputeGame {
    enum ClaimStatus {
        None,
        Pending,
        Refuted,
        Final
    }

    enum GameStatus {
        None,
        Open,
        DefenderWon,
        ChallengerWon
    }

    enum Side {
        Defender,
        Challenger
    }

    struct Task {
        bytes32 programRoot;
        bytes32 inputRoot;
        bytes32 modelRoot;
        bytes32 initialState;
    }

    struct Claim {
        uint256 taskId;
        address submitter;
        ClaimStatus status;
        uint32 openGames;
        uint64 steps;
        uint64 deadline;
        bytes32 finalState;
        bytes32 outputHash;
    }

    struct Game {
        uint256 claimId;
        address challenger;
        GameStatus status;
        uint64 left;
        uint64 right;
        bytes32 leftHash;
        bytes32 rightHash;
        uint64 defenderClock;
        uint64 challengerClock;
        uint64 turnStart;
        // This round's hashes (none while postedCount == 0) are in calldata and in the Bisected
        // event of block postedBlock; storage keeps only their hash, which select checks the
        // challenger's copy against. Storing k - 1 hashes would cost 22,100 gas each in a game's
        // first round and 5,000 in later ones (k = 16: 330,000 and 75,000).
        uint8 postedCount;
        uint56 postedBlock;
        bytes32 postedHash;
    }

    // Memory layout (docs/memory-map.md): 16 slots of 2^28 bytes, each a subtree at level 23.
    uint256 private constant SLOT_LEVEL = 23;
    uint256 private constant MAX_PAYLOAD = (1 << 28) - 32;
    uint256 private constant STATE_SIZE = 226;
    uint256 private constant EXIT_CODE = 88;
    uint256 private constant EXITED = 89;
    uint256 private constant STEP = 90;

    IMIPS public immutable mips;
    uint256 public immutable k;
    uint256 public immutable submitBond;
    uint256 public immutable challengeBond;
    uint64 public immutable clockBudget;
    uint64 public immutable challengeWindow;

    uint256 public taskCount;
    uint256 public claimCount;
    uint256 public gameCount;
    mapping(uint256 => Task) public tasks;
    mapping(uint256 => Claim) public claims;
    mapping(uint256 => Game) public games;
    /// @notice Credited, not yet withdrawn wei per account.
    mapping(address => uint256) public balances;

    event TaskCreated(
        uint256 indexed taskId, bytes32 programRoot, bytes32 inputRoot, bytes32 modelRoot, bytes32 initialState
    );
    event ClaimSubmitted(
        uint256 indexed claimId,
        uint256 indexed taskId,
        address indexed submitter,
        bytes32 finalState,
        uint64 steps,
        bytes output
    );
    event GameStarted(uint256 indexed gameId, uint256 indexed claimId, address indexed challenger);
    event Bisected(uint256 indexed gameId, uint64 left, uint64 right, bytes32[] hashes);
    event Selected(uint256 indexed gameId, uint256 index, uint64 left, uint64 right);
    event Stepped(uint256 indexed gameId, uint64 step, bytes32 postState);
    event GameResolved(uint256 indexed gameId, Side winner, bool byTimeout, address payee, uint256 amount);
    event ClaimRefuted(uint256 indexed claimId, uint256 indexed gameId);
    event ClaimFinalized(uint256 indexed claimId);
    event Withdrawn(address indexed account, uint256 amount);

    error InvalidParameters();
    error UnknownTask(uint256 taskId);
    error UnknownClaim(uint256 claimId);
    error UnknownGame(uint256 gameId);
    error WrongBond(uint256 expected, uint256 sent);
    error BadStateLength(uint256 length);
    error NotExitedCleanly(uint8 exited, uint8 exitCode);
    error NoSteps();
    error OutputTooLong(uint256 length);
    error OutputNotProven();
    error ClaimNotPending(uint256 claimId, ClaimStatus status);
    error WindowClosed(uint256 claimId);
    error WindowOpen(uint256 claimId, uint256 deadline);
    error GamesOpen(uint256 claimId, uint256 openGames);
    error GameOver(uint256 gameId);
    error NotDefender(address caller);
    error NotChallenger(address caller);
    error NotYourTurn(uint256 gameId, Side turn);
    error StepRequired(uint256 gameId);
    error NotOneStep(uint256 gameId, uint64 left, uint64 right);
    error WrongHashCount(uint256 expected, uint256 got);
    error IndexOutOfRange(uint256 index, uint256 pieces);
    error PostedHashesMismatch(bytes32 expected, bytes32 got);
    error StateHashMismatch(bytes32 expected, bytes32 got);
    error ClockExpired(uint256 gameId, Side side);
    error ClockNotExpired(uint256 gameId, uint256 secondsLeft);
    error NothingToWithdraw();
    error TransferFailed();
    error Reentrancy();

    /// @dev A transient lock (EIP-1153): one entry per transaction into any state-changing call.
    modifier nonReentrant() {
        bool locked;
        assembly ("memory-safe") {
            locked := tload(0)
        }
        if (locked) revert Reentrancy();
        assembly ("memory-safe") {
            tstore(0, 1)
        }
        _;
        assembly ("memory-safe") {
            tstore(0, 0)
        }
    }

    constructor(
        IMIPS mips_,
        uint256 k_,
        uint256 submitBond_,
        uint256 challengeBond_,
        uint64 clockBudget_,
        uint64 challengeWindow_
    ) {
        if (address(mips_) == address(0) || k_ < 2 || k_ > 64 || clockBudget_ == 0) revert InvalidParameters();
        mips = mips_;
        k = k_;
        submitBond = submitBond_;
        challengeBond = challengeBond_;
        clockBudget = clockBudget_;
        challengeWindow = challengeWindow_;
    }

    // ---------------------------------------------------------------- tasks and claims

    /// @notice A task: which program runs on which input with which model.
    function createTask(bytes32 programRoot, bytes32 inputRoot, bytes32 modelRoot)
        external
        nonReentrant
        returns (uint256 taskId)
    {
        bytes32 initialState = initialStateHash(programRoot, inputRoot, modelRoot);
        taskId = ++taskCount;
        tasks[taskId] = Task(programRoot, inputRoot, modelRoot, initialState);
        emit TaskCreated(taskId, programRoot, inputRoot, modelRoot, initialState);
    }

    /// @notice Claims that the task's run ends in `finalState` (exited with code 0) whose output
    ///         region holds `output`; `outputProof` are slot 3's siblings in the top tree.
    function submit(uint256 taskId, bytes calldata finalState, bytes calldata output, bytes32[4] calldata outputProof)
        external
        payable
        nonReentrant
        returns (uint256 claimId)
    {
        if (tasks[taskId].initialState == 0) revert UnknownTask(taskId);
        if (msg.value != submitBond) revert WrongBond(submitBond, msg.value);
        if (finalState.length != STATE_SIZE) revert BadStateLength(finalState.length);
        uint8 exited = uint8(finalState[EXITED]);
        uint8 exitCode = uint8(finalState[EXIT_CODE]);
        if (exited != 1 || exitCode != 0) revert NotExitedCleanly(exited, exitCode);
        uint64 steps = uint64(bytes8(finalState[STEP:STEP + 8]));
        // S0 is never exited, so an exited state needs at least one step.
        if (steps == 0) revert NoSteps();
        if (output.length > MAX_PAYLOAD) revert OutputTooLong(output.length);
        if (_outputMemRoot(_regionRoot(output), outputProof) != bytes32(finalState[0:32])) revert OutputNotProven();

        claimId = ++claimCount;
        bytes32 finalHash = keccak256(finalState);
        claims[claimId] = Claim({
            taskId: taskId,
            submitter: msg.sender,
            status: ClaimStatus.Pending,
            openGames: 0,
            steps: steps,
            deadline: uint64(block.timestamp) + challengeWindow,
            finalState: finalHash,
            outputHash: keccak256(output)
        });
        emit ClaimSubmitted(claimId, taskId, msg.sender, finalHash, steps, output);
    }

    /// @notice Disputes a pending claim: opens a game over [0, N] against its submitter.
    function challenge(uint256 claimId) external payable nonReentrant returns (uint256 gameId) {
        Claim storage claim = _pendingClaim(claimId);
        if (block.timestamp >= claim.deadline) revert WindowClosed(claimId);
        if (msg.value != challengeBond) revert WrongBond(challengeBond, msg.value);
        claim.openGames += 1;
        gameId = ++gameCount;
        Game storage game = games[gameId];
        game.claimId = claimId;
        game.challenger = msg.sender;
        game.status = GameStatus.Open;
        game.right = claim.steps;
        game.leftHash = tasks[claim.taskId].initialState;
        game.rightHash = claim.finalState;
        game.defenderClock = clockBudget;
        game.challengerClock = clockBudget;
        game.turnStart = uint64(block.timestamp);
        emit GameStarted(gameId, claimId, msg.sender);
    }

    /// @notice Makes an unrefuted claim final once its window has passed and no game is open.
    function finalize(uint256 claimId) external nonReentrant {
        Claim storage claim = _pendingClaim(claimId);
        if (block.timestamp < claim.deadline) revert WindowOpen(claimId, claim.deadline);
        if (claim.openGames != 0) revert GamesOpen(claimId, claim.openGames);
        claim.status = ClaimStatus.Final;
        balances[claim.submitter] += submitBond;
        emit ClaimFinalized(claimId);
    }

    /// @notice Sends the caller everything credited to it.
    function withdraw() external nonReentrant {
        uint256 amount = balances[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        balances[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ---------------------------------------------------------------- moves

    /// @notice The defender's move: its state hashes at the n - 1 inner split points. They are
    ///         kept in the Bisected event; the contract stores only their hash.
    function bisect(uint256 gameId, bytes32[] calldata hashes) external nonReentrant {
        Game storage game = _openGame(gameId);
        if (msg.sender != claims[game.claimId].submitter) revert NotDefender(msg.sender);
        uint256 length = game.right - game.left;
        if (length == 1) revert StepRequired(gameId);
        if (game.postedCount != 0) revert NotYourTurn(gameId, Side.Challenger);
        uint256 pieces = length < k ? length : k;
        if (hashes.length != pieces - 1) revert WrongHashCount(pieces - 1, hashes.length);
        _spendClock(gameId, game, Side.Defender);
        game.postedCount = uint8(hashes.length);
        game.postedBlock = uint56(block.number);
        game.postedHash = keccak256(abi.encodePacked(hashes));
        emit Bisected(gameId, game.left, game.right, hashes);
    }

    /// @notice The challenger's move: it agrees with the hash at p_index and disputes the one at
    ///         p_index+1, which becomes the new interval. `posted` repeats this round's hashes
    ///         (from the Bisected event); they must be exactly the defender's.
    function select(uint256 gameId, uint256 index, bytes32[] calldata posted) external nonReentrant {
        Game storage game = _openGame(gameId);
        if (msg.sender != game.challenger) revert NotChallenger(msg.sender);
        uint256 left = game.left;
        uint256 length = game.right - left;
        if (length == 1) revert StepRequired(gameId);
        uint256 hashCount = game.postedCount;
        if (hashCount == 0) revert NotYourTurn(gameId, Side.Defender);
        uint256 pieces = hashCount + 1;
        if (index >= pieces) revert IndexOutOfRange(index, pieces);
        bytes32 postedHash = keccak256(abi.encodePacked(posted));
        if (posted.length != hashCount || postedHash != game.postedHash) {
            revert PostedHashesMismatch(game.postedHash, postedHash);
        }
        _spendClock(gameId, game, Side.Challenger);
        if (index != 0) game.leftHash = posted[index - 1];
        if (index != hashCount) game.rightHash = posted[index];
        game.left = uint64(left + length * index / pieces);
        game.right = uint64(left + length * (index + 1) / pieces);
        game.postedCount = 0;
        emit Selected(gameId, index, game.left, game.right);
    }

    /// @notice Decides a game narrowed to one step by executing it. Anyone may call: a proof is
    ///         accepted whatever the clocks say. The witness' state must be the agreed one.
    function step(uint256 gameId, bytes calldata stateData, bytes calldata proof) external nonReentrant {
        Game storage game = _openGame(gameId);
        if (game.right - game.left != 1) revert NotOneStep(gameId, game.left, game.right);
        bytes32 preState = keccak256(stateData);
        if (preState != game.leftHash) revert StateHashMismatch(game.leftHash, preState);
        bytes32 postState = mips.step(stateData, proof);
        emit Stepped(gameId, game.left, postState);
        _resolve(gameId, game, postState == game.rightHash ? Side.Defender : Side.Challenger, false);
    }

    /// @notice Ends a game whose side to move has used up its clock: the other side wins.
    function claimTimeout(uint256 gameId) external nonReentrant {
        Game storage game = _openGame(gameId);
        Side mover = _turn(game);
        uint256 left = _secondsLeft(game, mover);
        if (left != 0) revert ClockNotExpired(gameId, left);
        _resolve(gameId, game, mover == Side.Defender ? Side.Challenger : Side.Defender, true);
    }

    // ---------------------------------------------------------------- views

    /// @notice One game as the parties need it (prover/agent.py's GameView). This round's
    ///         hashes themselves are in the Bisected event of block `postedBlock` (none while
    ///         postedCount == 0); `postedHash` is keccak256 of their concatenation.
    function gameView(uint256 gameId)
        external
        view
        returns (
            uint64 left,
            uint64 right,
            bytes32 leftHash,
            bytes32 rightHash,
            uint256 postedCount,
            uint256 postedBlock,
            bytes32 postedHash,
            Side turn,
            bool over,
            uint256 moverSecondsLeft
        )
    {
        Game storage game = games[gameId];
        if (game.status == GameStatus.None) revert UnknownGame(gameId);
        turn = _turn(game);
        over = game.status != GameStatus.Open;
        moverSecondsLeft = over ? 0 : _secondsLeft(game, turn);
        return (
            game.left,
            game.right,
            game.leftHash,
            game.rightHash,
            game.postedCount,
            game.postedBlock,
            game.postedHash,
            turn,
            over,
            moverSecondsLeft
        );
    }

    /// @notice S0 of docs/memory-map.md: the initial state hash of a task.
    function initialStateHash(bytes32 programRoot, bytes32 inputRoot, bytes32 modelRoot)
        public
        pure
        returns (bytes32)
    {
        bytes32 z23 = _zeroHash(SLOT_LEVEL);
        bytes32 z24 = _hashPair(z23, z23);
        bytes32 z25 = _hashPair(z24, z24);
        bytes32 z26 = _hashPair(z25, z25);
        // Slots 0-3 hold program, input, model and the (empty) output; slots 4-15 are empty.
        bytes32 low = _hashPair(_hashPair(programRoot, inputRoot), _hashPair(modelRoot, z23));
        bytes32 memRoot = _hashPair(_hashPair(low, z25), z26);
        return keccak256(
            abi.encodePacked(
                memRoot,
                bytes32(0), // preimageKey
                uint32(0), // preimageOffset
                uint32(0x00400000), // pc
                uint32(0x00400004), // nextPC
                uint32(0), // lo
                uint32(0), // hi
                uint32(0x40000000), // heap
                uint8(0), // exitCode
                uint8(0), // exited
                uint64(0), // step
                new bytes(29 * 4), // r0..r28
                uint32(0x7FFFD000), // r29 = $sp
                uint64(0) // r30, r31
            )
        );
    }

    /// @notice The Merkle root (level 23) of a data region holding `payload`: a header leaf with
    ///         the big-endian u32 length, the payload from byte 32, zeros after.
    function regionRoot(bytes calldata payload) external pure returns (bytes32) {
        if (payload.length > MAX_PAYLOAD) revert OutputTooLong(payload.length);
        return _regionRoot(payload);
    }

    // ---------------------------------------------------------------- internals

    function _pendingClaim(uint256 claimId) private view returns (Claim storage claim) {
        claim = claims[claimId];
        if (claim.status == ClaimStatus.None) revert UnknownClaim(claimId);
        if (claim.status != ClaimStatus.Pending) revert ClaimNotPending(claimId, claim.status);
    }

    function _openGame(uint256 gameId) private view returns (Game storage game) {
        game = games[gameId];
        if (game.status == GameStatus.None) revert UnknownGame(gameId);
        if (game.status != GameStatus.Open) revert GameOver(gameId);
    }

    /// @dev The defender moves while the interval is longer than one step and it has not posted
    ///      this round's hashes; otherwise the challenger (select, or step at one step).
    function _turn(Game storage game) private view returns (Side) {
        return game.right - game.left > 1 && game.postedCount == 0 ? Side.Defender : Side.Challenger;
    }

    function _secondsLeft(Game storage game, Side side) private view returns (uint256) {
        uint256 clock = side == Side.Defender ? game.defenderClock : game.challengerClock;
        uint256 elapsed = block.timestamp - game.turnStart;
        return elapsed >= clock ? 0 : clock - elapsed;
    }

    /// @dev Charges the mover the time since its turn began and starts the other side's turn.
    function _spendClock(uint256 gameId, Game storage game, Side mover) private {
        uint256 left = _secondsLeft(game, mover);
        if (left == 0) revert ClockExpired(gameId, mover);
        if (mover == Side.Defender) game.defenderClock = uint64(left);
        else game.challengerClock = uint64(left);
        game.turnStart = uint64(block.timestamp);
    }

    /// @dev Exactly one payout per game; the submitter's bond goes to the first winning challenger.
    function _resolve(uint256 gameId, Game storage game, Side winner, bool byTimeout) private {
        Claim storage claim = claims[game.claimId];
        claim.openGames -= 1;
        address payee;
        uint256 amount;
        if (winner == Side.Challenger) {
            game.status = GameStatus.ChallengerWon;
            payee = game.challenger;
            amount = challengeBond;
            if (claim.status == ClaimStatus.Pending) {
                claim.status = ClaimStatus.Refuted;
                amount += submitBond;
                emit ClaimRefuted(game.claimId, gameId);
            }
        } else {
            game.status = GameStatus.DefenderWon;
            payee = claim.submitter;
            amount = challengeBond;
        }
        balances[payee] += amount;
        emit GameResolved(gameId, winner, byTimeout, payee, amount);
    }

    /// @dev memRoot from slot 3's root and its siblings in the 16-slot top tree: slot 2, then
    ///      the node over slots 0-1, then over slots 4-7, then over slots 8-15.
    function _outputMemRoot(bytes32 outputRoot, bytes32[4] calldata siblings) private pure returns (bytes32) {
        bytes32 node = _hashPair(siblings[0], outputRoot);
        node = _hashPair(siblings[1], node);
        node = _hashPair(node, siblings[2]);
        return _hashPair(node, siblings[3]);
    }

    function _regionRoot(bytes calldata payload) private pure returns (bytes32) {
        uint256 count = 1 + (payload.length + 31) / 32;
        bytes32[] memory nodes = new bytes32[](count);
        nodes[0] = bytes32(payload.length << 224);
        for (uint256 i = 1; i < count; ++i) {
            uint256 start = (i - 1) * 32;
            uint256 end = start + 32 < payload.length ? start + 32 : payload.length;
            nodes[i] = bytes32(payload[start:end]); // right-padded with zeros
        }
        bytes32 zero;
        for (uint256 level = 0; level < SLOT_LEVEL; ++level) {
            uint256 parents = (count + 1) / 2;
            for (uint256 i = 0; i < parents; ++i) {
                bytes32 right = 2 * i + 1 < count ? nodes[2 * i + 1] : zero;
                nodes[i] = _hashPair(nodes[2 * i], right);
            }
            count = parents;
            zero = _hashPair(zero, zero);
        }
        return nodes[0];
    }

    function _zeroHash(uint256 level) private pure returns (bytes32 zero) {
        for (uint256 i = 0; i < level; ++i) {
            zero = _hashPair(zero, zero);
        }
    }

    function _hashPair(bytes32 left, bytes32 right) private pure returns (bytes32 parent) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            parent := keccak256(0x00, 0x40)
        }
    }
}
