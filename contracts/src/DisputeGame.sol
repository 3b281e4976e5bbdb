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
        Final,
        Superseded
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

    /// @dev A task's roots are in its TaskCreated event and in `taskOf` (by their key); storage
    ///      keeps only what the games read: S0 (and a graph task's model in graphModels).
    struct Task {
        bytes32 initialState;
    }

    /// @dev Four slots: (taskId, submitter, status, openGames), (steps, deadline), finalState,
    ///      outputHash. A fresh slot costs 22,100 gas: packing saved one of five.
    struct Claim {
        uint64 taskId;
        address submitter;
        ClaimStatus status;
        uint24 openGames;
        uint64 steps;
        uint64 deadline;
        bytes32 finalState;
        bytes32 outputHash;
    }

    /// @notice A game's whole state. Storage keeps only its hash, keccak256(abi.encode(state))
    ///         (`games`), written once per move; the state itself travels in every move's calldata
    ///         and in the event of the move that made it (GameStarted, Bisected, Selected,
    ///         NodeOpened), from which the parties read it back (docs/contracts.md, "Gas"). A
    ///         state that is not the stored one is refused (GameStateMismatch).
    struct GameState {
        uint64 claimId;
        address submitter; // the defender (the claim's submitter)
        address challenger;
        // Multi-phase games (graph tasks, docs/dispute-game.md): true while the interval is over
        // node indices; false once openNode linked the disputed node's VM run (then `node` says
        // which). A bool, not an enum: any well-formed calldata decodes.
        bool graphPhase;
        uint24 node;
        uint48 left;
        uint48 right;
        uint32 defenderClock;
        uint32 challengerClock;
        uint40 turnStart;
        bytes32 leftHash; // the agreed state at `left`
        bytes32 rightHash; // the defender's state at `right`
        // keccak256 of this round's hashes (in the Bisected event), zero while the defender is
        // to move: a posted round always has this hash, never zero.
        bytes32 postedHash;
    }

    /// @dev The three id counters in one slot, made nonzero by the constructor (`deployed`): no
    ///      id pays for a fresh slot (22,100 gas), every one for a used one (5,000).
    struct Counters {
        uint64 tasks;
        uint64 claims;
        uint64 games;
        bool deployed;
    }

    /// @dev A graph task's model: the Merkle root (depth TREE_DEPTH) over its node leaves,
    ///      keccak256(nodeRoot, input positions), at positions 1..nodeCount.
    struct GraphModel {
        bytes32 nodesRoot;
        uint64 nodeCount;
        bytes32 programRoot; // the single-node program, whose S0 openNode derives
    }

    /// @dev What the defender reveals to link the graph phase's disputed node to its VM run.
    struct NodeOpening {
        bytes32 nodeRoot; // region root of the node file: the node's op, attributes and weights
        uint256[] inputs; // tensor-tree positions of its activation inputs, in slot order
        bytes32[] nodeProof; // siblings of the node's leaf in the model's nodes tree
        bytes32[] inputRoots; // the agreed commitments at those positions
        bytes32[][] inputProofs; // their siblings in the agreed tensor tree
        bytes32 outputRoot; // the defender's commitment to the node's output
        bytes32[] outputProof; // siblings of the node's position (empty before, outputRoot after)
        bytes finalState; // the node task's final VM state (226 bytes)
        bytes32[4] finalOutputProof; // slot 3's top-tree siblings in finalState's memRoot
    }

    // Memory layout (docs/memory-map.md): 16 slots of 2^28 bytes, each a subtree at level 23.
    uint256 private constant SLOT_LEVEL = 23;
    uint256 private constant MAX_PAYLOAD = (1 << 28) - 32;
    uint256 private constant STATE_SIZE = 226;
    uint256 private constant EXIT_CODE = 88;
    uint256 private constant EXITED = 89;
    uint256 private constant STEP = 90;
    // Graph tasks: tensor and nodes trees of depth 20 (positions 0 .. 2^20 - 1); a node task
    // takes its activation inputs from slot 1, then slots 8..15.
    uint256 private constant TREE_DEPTH = 20;
    uint256 private constant MAX_NODE_INPUTS = 9;
    uint256 private constant FIRST_EXTRA_INPUT_SLOT = 8;
    /// @notice The shortest clock accepted: a move lands in a later block than the move it
    ///         answers (timestamps grow by at least a second a block) and must find time left.
    uint64 public constant MIN_CLOCK_BUDGET = 2;
    /// @dev Clocks and windows are kept in 32 bits (136 years), intervals in 48 bits.
    uint256 private constant MAX_SECONDS = type(uint32).max;
    uint256 private constant MAX_STEPS = type(uint48).max;

    IMIPS public immutable mips;
    uint256 public immutable k;
    uint256 public immutable submitBond;
    uint256 public immutable challengeBond;
    uint64 public immutable clockBudget;
    uint64 public immutable challengeWindow;

    Counters private counters;
    mapping(uint256 => Task) public tasks;
    /// @notice The task of each (programRoot, inputRoot, modelRoot), by `taskKey`: one task per
    ///         computation, so that one final claim is the one result of that computation.
    mapping(bytes32 => uint256) public taskOf;
    mapping(uint256 => Claim) public claims;
    /// @notice Each game's state hash while it is open (keccak256(abi.encode(GameState))); once
    ///         resolved, its GameStatus (DefenderWon or ChallengerWon) as a number; zero: no game.
    mapping(uint256 => bytes32) public games;
    /// @notice The model of each graph task (nodeCount == 0 for a single-phase task).
    mapping(uint256 => GraphModel) public graphModels;
    /// @notice Credited, not yet withdrawn wei per account.
    mapping(address => uint256) public balances;
    /// @notice The one final claim of each task (0 while none): the task's result. The first
    ///         claim to finalize wins; a later one that survives its window is Superseded.
    mapping(uint256 => uint256) public finalClaimOf;

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
    event GameStarted(uint256 indexed gameId, uint256 indexed claimId, address indexed challenger, GameState state);
    event Bisected(uint256 indexed gameId, bytes32[] hashes, GameState state);
    event Selected(uint256 indexed gameId, uint256 index, GameState state);
    event Stepped(uint256 indexed gameId, uint64 step, bytes32 postState);
    event GameResolved(uint256 indexed gameId, Side winner, bool byTimeout, address payee, uint256 amount);
    event ClaimRefuted(uint256 indexed claimId, uint256 indexed gameId);
    event ClaimFinalized(uint256 indexed claimId);
    event ClaimSuperseded(uint256 indexed claimId, uint256 indexed finalClaimId);
    event Withdrawn(address indexed account, uint256 amount);
    event GraphTaskCreated(uint256 indexed taskId, bytes32 nodesRoot, uint64 nodeCount);
    /// @dev The node task's S0, final state hash and steps are the state's leftHash, rightHash
    ///      and right.
    event NodeOpened(uint256 indexed gameId, bytes32 nodeRoot, GameState state);

    error InvalidParameters();
    error ZeroBond();
    error ZeroWindow();
    error ClockTooShort(uint64 clockBudget, uint64 minimum);
    error TaskSettled(uint256 taskId, uint256 finalClaimId);
    error TaskExists(uint256 taskId);
    error TooManySteps(uint64 steps);
    error ZeroHash(uint256 index);
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
    error WrongTaskKind(uint256 taskId, bool graphTask);
    error BadNodeCount(uint64 nodeCount);
    error LinkRequired(uint256 gameId);
    error NotGraphPhase(uint256 gameId);
    error BadProofLength(uint256 length);
    error BadNodeInputs(uint256 count);
    error NodeNotInModel(uint64 node);
    error InputNotEarlier(uint256 index, uint256 position);
    error InputNotAgreed(uint256 index);
    error OutputNotLinked(uint64 node);
    error GameStateMismatch(uint256 gameId, bytes32 expected, bytes32 got);

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
        if (address(mips_) == address(0) || k_ < 2 || k_ > 64) revert InvalidParameters();
        if (clockBudget_ > MAX_SECONDS || challengeWindow_ > MAX_SECONDS) revert InvalidParameters();
        if (submitBond_ == 0 || challengeBond_ == 0) revert ZeroBond();
        if (challengeWindow_ == 0) revert ZeroWindow();
        if (clockBudget_ < MIN_CLOCK_BUDGET) revert ClockTooShort(clockBudget_, MIN_CLOCK_BUDGET);
        mips = mips_;
        k = k_;
        submitBond = submitBond_;
        challengeBond = challengeBond_;
        clockBudget = clockBudget_;
        challengeWindow = challengeWindow_;
        counters.deployed = true;
    }

    // ---------------------------------------------------------------- tasks and claims

    /// @notice A task: which program runs on which input with which model.
    function createTask(bytes32 programRoot, bytes32 inputRoot, bytes32 modelRoot)
        external
        nonReentrant
        returns (uint256 taskId)
    {
        bytes32 initialState = initialStateHash(programRoot, inputRoot, modelRoot);
        taskId = _newTask(programRoot, inputRoot, modelRoot, initialState);
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
        _openTask(taskId);
        if (graphModels[taskId].nodeCount != 0) revert WrongTaskKind(taskId, true);
        if (msg.value != submitBond) revert WrongBond(submitBond, msg.value);
        if (finalState.length != STATE_SIZE) revert BadStateLength(finalState.length);
        uint8 exited = uint8(finalState[EXITED]);
        uint8 exitCode = uint8(finalState[EXIT_CODE]);
        if (exited != 1 || exitCode != 0) revert NotExitedCleanly(exited, exitCode);
        uint64 steps = _steps(finalState);
        if (output.length > MAX_PAYLOAD) revert OutputTooLong(output.length);
        if (_outputMemRoot(_regionRoot(output), outputProof) != bytes32(finalState[0:32])) revert OutputNotProven();
        claimId = _newClaim(taskId, keccak256(finalState), steps, output);
    }

    /// @notice Disputes a pending claim: opens a game over [0, N] against its submitter.
    function challenge(uint256 claimId) external payable nonReentrant returns (uint256 gameId) {
        Claim storage claim = _pendingClaim(claimId);
        if (block.timestamp >= claim.deadline) revert WindowClosed(claimId);
        if (msg.value != challengeBond) revert WrongBond(challengeBond, msg.value);
        claim.openGames += 1;
        gameId = ++counters.games;
        uint32 clock = uint32(clockBudget);
        GameState memory state = GameState({
            claimId: uint64(claimId),
            submitter: claim.submitter,
            challenger: msg.sender,
            graphPhase: graphModels[claim.taskId].nodeCount != 0,
            node: 0,
            left: 0,
            right: uint48(claim.steps),
            defenderClock: clock,
            challengerClock: clock,
            turnStart: uint40(block.timestamp),
            leftHash: tasks[claim.taskId].initialState,
            rightHash: claim.finalState,
            postedHash: 0
        });
        games[gameId] = keccak256(abi.encode(state)); // one fresh slot
        emit GameStarted(gameId, claimId, msg.sender, state);
    }

    /// @notice Makes an unrefuted claim final once its window has passed and no game is open.
    function finalize(uint256 claimId) external nonReentrant {
        Claim storage claim = _pendingClaim(claimId);
        if (block.timestamp < claim.deadline) revert WindowOpen(claimId, claim.deadline);
        if (claim.openGames != 0) revert GamesOpen(claimId, claim.openGames);
        uint256 settled = finalClaimOf[claim.taskId];
        if (settled == 0) {
            finalClaimOf[claim.taskId] = claimId;
            claim.status = ClaimStatus.Final;
            emit ClaimFinalized(claimId);
        } else {
            // One result per task: the first final claim is the task's result; this one
            // survived its window too (same result or not) and only gets its bond back.
            claim.status = ClaimStatus.Superseded;
            emit ClaimSuperseded(claimId, settled);
        }
        balances[claim.submitter] += submitBond;
    }

    function taskCount() external view returns (uint256) {
        return counters.tasks;
    }

    function claimCount() external view returns (uint256) {
        return counters.claims;
    }

    function gameCount() external view returns (uint256) {
        return counters.games;
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
    ///         kept in the Bisected event; the game's state keeps only their hash.
    function bisect(uint256 gameId, GameState calldata current, bytes32[] calldata hashes) external nonReentrant {
        GameState memory game = _openGame(gameId, current);
        if (msg.sender != game.submitter) revert NotDefender(msg.sender);
        uint256 length = game.right - game.left;
        if (length == 1) _revertOneLeft(gameId, game);
        if (game.postedHash != 0) revert NotYourTurn(gameId, Side.Challenger);
        uint256 pieces = length < k ? length : k;
        if (hashes.length != pieces - 1) revert WrongHashCount(pieces - 1, hashes.length);
        for (uint256 i = 0; i < hashes.length; ++i) {
            if (hashes[i] == 0) revert ZeroHash(i);
        }
        _spendClock(gameId, game, Side.Defender);
        game.postedHash = keccak256(abi.encodePacked(hashes));
        games[gameId] = keccak256(abi.encode(game));
        emit Bisected(gameId, hashes, game);
    }

    /// @notice The challenger's move: it agrees with the hash at p_index and disputes the one at
    ///         p_index+1, which becomes the new interval. `posted` repeats this round's hashes
    ///         (from the Bisected event); they must be exactly the defender's.
    function select(uint256 gameId, GameState calldata current, uint256 index, bytes32[] calldata posted)
        external
        nonReentrant
    {
        GameState memory game = _openGame(gameId, current);
        if (msg.sender != game.challenger) revert NotChallenger(msg.sender);
        uint256 left = game.left;
        uint256 length = game.right - left;
        if (length == 1) _revertOneLeft(gameId, game);
        if (game.postedHash == 0) revert NotYourTurn(gameId, Side.Defender);
        uint256 pieces = length < k ? length : k;
        if (index >= pieces) revert IndexOutOfRange(index, pieces);
        bytes32 postedHash = keccak256(abi.encodePacked(posted));
        if (posted.length != pieces - 1 || postedHash != game.postedHash) {
            revert PostedHashesMismatch(game.postedHash, postedHash);
        }
        _spendClock(gameId, game, Side.Challenger);
        if (index != 0) game.leftHash = posted[index - 1];
        if (index != pieces - 1) game.rightHash = posted[index];
        game.left = uint48(left + length * index / pieces);
        game.right = uint48(left + length * (index + 1) / pieces);
        game.postedHash = 0;
        games[gameId] = keccak256(abi.encode(game));
        emit Selected(gameId, index, game);
    }

    /// @notice Decides a game narrowed to one step by executing it. Anyone may call: a proof is
    ///         accepted whatever the clocks say. The witness' state must be the agreed one.
    function step(uint256 gameId, GameState calldata current, bytes calldata stateData, bytes calldata proof)
        external
        nonReentrant
    {
        GameState memory game = _openGame(gameId, current);
        if (game.right - game.left != 1) revert NotOneStep(gameId, game.left, game.right);
        if (game.graphPhase) revert LinkRequired(gameId);
        bytes32 preState = keccak256(stateData);
        if (preState != game.leftHash) revert StateHashMismatch(game.leftHash, preState);
        bytes32 postState = mips.step(stateData, proof);
        emit Stepped(gameId, game.left, postState);
        _resolve(gameId, game, postState == game.rightHash ? Side.Defender : Side.Challenger, false);
    }

    /// @notice Ends a game whose side to move has used up its clock: the other side wins.
    function claimTimeout(uint256 gameId, GameState calldata current) external nonReentrant {
        GameState memory game = _openGame(gameId, current);
        Side mover = _turn(game);
        uint256 left = _secondsLeft(game, mover);
        if (left != 0) revert ClockNotExpired(gameId, left);
        _resolve(gameId, game, mover == Side.Defender ? Side.Challenger : Side.Defender, true);
    }

    // ---------------------------------------------------------------- graph tasks (multi-phase)

    /// @notice A graph task (docs/dispute-game.md, "Multi-phase games"): the input, the model as
    ///         its nodes tree and node count, and the single-node program that runs any one node.
    ///         The task's modelRoot is keccak256(nodesRoot, nodeCount); its initial state is the
    ///         tensor tree holding only the input (position 0).
    function createGraphTask(bytes32 nodeProgramRoot, bytes32 inputRoot, bytes32 nodesRoot, uint64 nodeCount)
        external
        nonReentrant
        returns (uint256 taskId)
    {
        if (nodeCount == 0 || nodeCount >= 1 << TREE_DEPTH) revert BadNodeCount(nodeCount);
        bytes32 modelRoot = keccak256(abi.encodePacked(nodesRoot, nodeCount));
        bytes32 initialState = inputRoot;
        bytes32 zero;
        for (uint256 level = 0; level < TREE_DEPTH; ++level) {
            initialState = _hashPair(initialState, zero);
            zero = _hashPair(zero, zero);
        }
        taskId = _newTask(nodeProgramRoot, inputRoot, modelRoot, initialState);
        graphModels[taskId] = GraphModel(nodesRoot, nodeCount, nodeProgramRoot);
        emit TaskCreated(taskId, nodeProgramRoot, inputRoot, modelRoot, initialState);
        emit GraphTaskCreated(taskId, nodesRoot, nodeCount);
    }

    /// @notice Claims that a graph task's tensor tree after its last node is `graphState`, whose
    ///         last position holds the region root of `output` (the graph's output tensor bytes).
    function submitGraph(uint256 taskId, bytes32 graphState, bytes calldata output, bytes32[] calldata outputProof)
        external
        payable
        nonReentrant
        returns (uint256 claimId)
    {
        _openTask(taskId);
        uint64 nodeCount = graphModels[taskId].nodeCount;
        if (nodeCount == 0) revert WrongTaskKind(taskId, false);
        if (msg.value != submitBond) revert WrongBond(submitBond, msg.value);
        if (output.length > MAX_PAYLOAD) revert OutputTooLong(output.length);
        if (treeRoot(_regionRoot(output), nodeCount, outputProof) != graphState) revert OutputNotProven();
        claimId = _newClaim(taskId, graphState, nodeCount, output);
    }

    /// @notice The defender's move at one node of the graph phase: it links node i (the interval
    ///         [i - 1, i]) to a VM run. The contract checks the node against the task's model, its
    ///         inputs against the agreed tensor tree at i - 1, that the defender's tree at i is the
    ///         agreed one plus `outputRoot` at position i, and that the final VM state proves
    ///         `outputRoot` in its output region; it then derives the node task's S0 itself and the
    ///         game goes on as a VM game over [0, steps] from S0 to the final state.
    function openNode(uint256 gameId, GameState calldata current, NodeOpening calldata opening)
        external
        nonReentrant
    {
        GameState memory game = _openGame(gameId, current);
        if (msg.sender != game.submitter) revert NotDefender(msg.sender);
        if (!game.graphPhase) revert NotGraphPhase(gameId);
        if (game.right - game.left != 1) revert NotOneStep(gameId, game.left, game.right);
        uint64 node = game.right;
        bytes32 agreed = game.leftHash;
        uint256 taskId = claims[game.claimId].taskId;
        _checkNodeInModel(taskId, node, opening);
        _checkInputsAgreed(agreed, node, opening);
        if (
            treeRoot(bytes32(0), node, opening.outputProof) != agreed
                || treeRoot(opening.outputRoot, node, opening.outputProof) != game.rightHash
        ) revert OutputNotLinked(node);
        bytes calldata finalState = opening.finalState;
        if (finalState.length != STATE_SIZE) revert BadStateLength(finalState.length);
        if (uint8(finalState[EXITED]) != 1 || uint8(finalState[EXIT_CODE]) != 0) {
            revert NotExitedCleanly(uint8(finalState[EXITED]), uint8(finalState[EXIT_CODE]));
        }
        uint64 steps = _steps(finalState);
        if (_outputMemRoot(opening.outputRoot, opening.finalOutputProof) != bytes32(finalState[0:32])) {
            revert OutputNotProven();
        }
        _spendClock(gameId, game, Side.Defender);
        game.leftHash = nodeInitialStateHash(graphModels[taskId].programRoot, opening.nodeRoot, opening.inputRoots);
        game.rightHash = keccak256(finalState);
        game.graphPhase = false;
        game.node = uint24(node);
        game.left = 0;
        game.right = uint48(steps);
        games[gameId] = keccak256(abi.encode(game));
        emit NodeOpened(gameId, opening.nodeRoot, game);
    }

    /// @dev The node's leaf, keccak256(nodeRoot, input positions as 32-byte words), must sit at
    ///      position `node` of the task's nodes tree.
    function _checkNodeInModel(uint256 taskId, uint64 node, NodeOpening calldata opening) private view {
        bytes32 leaf = keccak256(abi.encodePacked(opening.nodeRoot, opening.inputs));
        if (treeRoot(leaf, node, opening.nodeProof) != graphModels[taskId].nodesRoot) revert NodeNotInModel(node);
    }

    /// @dev Each input commitment must be in the agreed tensor tree at its (earlier) position.
    function _checkInputsAgreed(bytes32 agreed, uint64 node, NodeOpening calldata opening) private pure {
        uint256 count = opening.inputs.length;
        if (count == 0 || count > MAX_NODE_INPUTS || opening.inputRoots.length != count || opening.inputProofs.length != count) {
            revert BadNodeInputs(count);
        }
        for (uint256 i = 0; i < count; ++i) {
            uint256 position = opening.inputs[i];
            if (position >= node) revert InputNotEarlier(i, position);
            if (treeRoot(opening.inputRoots[i], position, opening.inputProofs[i]) != agreed) revert InputNotAgreed(i);
        }
    }

    // ---------------------------------------------------------------- views

    /// @notice A game's status from storage: None, Open, DefenderWon or ChallengerWon.
    function gameStatus(uint256 gameId) public view returns (GameStatus) {
        uint256 stored = uint256(games[gameId]);
        if (stored == 0) return GameStatus.None;
        return stored <= uint256(GameStatus.ChallengerWon) ? GameStatus(stored) : GameStatus.Open;
    }

    /// @notice What the parties need besides the state (read from the game's events,
    ///         docs/contracts.md): its status, whose turn it is in `state` and, while the game is
    ///         open, the mover's remaining seconds. An open game's state must be the stored one.
    function gameView(uint256 gameId, GameState calldata state)
        external
        view
        returns (GameStatus status, Side turn, uint256 moverSecondsLeft)
    {
        status = gameStatus(gameId);
        if (status == GameStatus.None) revert UnknownGame(gameId);
        GameState memory game = state;
        turn = _turn(game);
        if (status == GameStatus.Open) {
            _checkState(gameId, game);
            moverSecondsLeft = _secondsLeft(game, turn);
        }
    }

    /// @notice What `taskOf` is keyed by: keccak256 of the three roots (a graph task's modelRoot
    ///         is keccak256(nodesRoot, nodeCount)).
    function taskKey(bytes32 programRoot, bytes32 inputRoot, bytes32 modelRoot) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(programRoot, inputRoot, modelRoot));
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
        return _initialState(_hashPair(_hashPair(low, z25), z26));
    }

    /// @notice S0 of a node task (docs/memory-map.md, "Node tasks"): the single-node program in
    ///         slot 0, the node file in slot 2, the activation inputs in slot 1, then slots 8..15.
    function nodeInitialStateHash(bytes32 programRoot, bytes32 nodeRoot, bytes32[] calldata inputRoots)
        public
        pure
        returns (bytes32)
    {
        if (inputRoots.length == 0 || inputRoots.length > MAX_NODE_INPUTS) revert BadNodeInputs(inputRoots.length);
        bytes32 z23 = _zeroHash(SLOT_LEVEL);
        bytes32[16] memory slots;
        for (uint256 i = 0; i < 16; ++i) {
            slots[i] = z23;
        }
        slots[0] = programRoot;
        slots[1] = inputRoots[0];
        slots[2] = nodeRoot;
        for (uint256 i = 1; i < inputRoots.length; ++i) {
            slots[FIRST_EXTRA_INPUT_SLOT + i - 1] = inputRoots[i];
        }
        for (uint256 width = 8; width != 0; width /= 2) {
            for (uint256 i = 0; i < width; ++i) {
                slots[i] = _hashPair(slots[2 * i], slots[2 * i + 1]);
            }
        }
        return _initialState(slots[0]);
    }

    /// @notice The root of a tensor or nodes tree (depth 20, zero leaves empty) holding `leaf` at
    ///         `position`, from the leaf's 20 siblings bottom-up.
    function treeRoot(bytes32 leaf, uint256 position, bytes32[] calldata siblings) public pure returns (bytes32) {
        if (siblings.length != TREE_DEPTH) revert BadProofLength(siblings.length);
        bytes32 node = leaf;
        for (uint256 level = 0; level < TREE_DEPTH; ++level) {
            node = (position >> level) & 1 == 0 ? _hashPair(node, siblings[level]) : _hashPair(siblings[level], node);
        }
        return node;
    }

    /// @dev The state hash of a fresh machine over `memRoot`: pc at the entry, $sp set, heap at
    ///      its start, everything else zero (docs/memory-map.md).
    function _initialState(bytes32 memRoot) private pure returns (bytes32) {
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

    function _newClaim(uint256 taskId, bytes32 finalHash, uint64 steps, bytes calldata output)
        private
        returns (uint256 claimId)
    {
        claimId = ++counters.claims;
        claims[claimId] = Claim({
            taskId: uint64(taskId),
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

    /// @dev A new task of the given roots: each computation is one task.
    function _newTask(bytes32 programRoot, bytes32 inputRoot, bytes32 modelRoot, bytes32 initialState)
        private
        returns (uint256 taskId)
    {
        bytes32 key = taskKey(programRoot, inputRoot, modelRoot);
        taskId = taskOf[key];
        if (taskId != 0) revert TaskExists(taskId);
        taskId = ++counters.tasks;
        taskOf[key] = taskId;
        tasks[taskId] = Task(initialState);
    }

    /// @dev A known task without a final claim: a settled task takes no more claims.
    function _openTask(uint256 taskId) private view {
        if (tasks[taskId].initialState == 0) revert UnknownTask(taskId);
        uint256 settled = finalClaimOf[taskId];
        if (settled != 0) revert TaskSettled(taskId, settled);
    }

    /// @dev A final state's step count: at least one (S0 is never exited), below 2^48.
    function _steps(bytes calldata finalState) private pure returns (uint64 steps) {
        steps = uint64(bytes8(finalState[STEP:STEP + 8]));
        if (steps == 0) revert NoSteps();
        if (steps > MAX_STEPS) revert TooManySteps(steps);
    }

    function _pendingClaim(uint256 claimId) private view returns (Claim storage claim) {
        claim = claims[claimId];
        if (claim.status == ClaimStatus.None) revert UnknownClaim(claimId);
        if (claim.status != ClaimStatus.Pending) revert ClaimNotPending(claimId, claim.status);
    }

    /// @dev The open game's state as a memory copy for the move to edit: `state` must be the one
    ///      whose hash is stored.
    function _openGame(uint256 gameId, GameState calldata state) private view returns (GameState memory game) {
        GameStatus status = gameStatus(gameId);
        if (status == GameStatus.None) revert UnknownGame(gameId);
        if (status != GameStatus.Open) revert GameOver(gameId);
        game = state;
        _checkState(gameId, game);
    }

    function _checkState(uint256 gameId, GameState memory game) private view {
        bytes32 expected = games[gameId];
        bytes32 got = keccak256(abi.encode(game));
        if (got != expected) revert GameStateMismatch(gameId, expected, got);
    }

    /// @dev The defender moves while the interval is longer than one step and it has not posted
    ///      this round's hashes; otherwise the challenger (select, or step at one step).
    function _turn(GameState memory game) private pure returns (Side) {
        uint256 length = game.right - game.left;
        if (length == 1) return game.graphPhase ? Side.Defender : Side.Challenger;
        return game.postedHash == 0 ? Side.Defender : Side.Challenger;
    }

    /// @dev A dissection move with one piece left: that piece is stepped, or its node linked.
    function _revertOneLeft(uint256 gameId, GameState memory game) private pure {
        if (game.graphPhase) revert LinkRequired(gameId);
        revert StepRequired(gameId);
    }

    function _secondsLeft(GameState memory game, Side side) private view returns (uint256) {
        uint256 clock = side == Side.Defender ? game.defenderClock : game.challengerClock;
        uint256 elapsed = block.timestamp - game.turnStart;
        return elapsed >= clock ? 0 : clock - elapsed;
    }

    /// @dev Charges the mover the time since its turn began and starts the other side's turn.
    function _spendClock(uint256 gameId, GameState memory game, Side mover) private view {
        uint256 left = _secondsLeft(game, mover);
        if (left == 0) revert ClockExpired(gameId, mover);
        if (mover == Side.Defender) game.defenderClock = uint32(left);
        else game.challengerClock = uint32(left);
        game.turnStart = uint40(block.timestamp);
    }

    /// @dev Exactly one payout per game; the submitter's bond goes to the first winning challenger.
    function _resolve(uint256 gameId, GameState memory game, Side winner, bool byTimeout) private {
        Claim storage claim = claims[game.claimId];
        claim.openGames -= 1;
        address payee;
        uint256 amount;
        if (winner == Side.Challenger) {
            games[gameId] = bytes32(uint256(GameStatus.ChallengerWon));
            payee = game.challenger;
            amount = challengeBond;
            if (claim.status == ClaimStatus.Pending) {
                claim.status = ClaimStatus.Refuted;
                amount += submitBond;
                emit ClaimRefuted(game.claimId, gameId);
            }
        } else {
            games[gameId] = bytes32(uint256(GameStatus.DefenderWon));
            payee = game.submitter;
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
