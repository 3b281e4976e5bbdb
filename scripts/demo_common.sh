# Shared by the dispute demos (scripts/challenge_simple.sh, scripts/challenge_faulty_submitter.sh):
# a local node in the background (killed on exit), the contracts, two parties' directories, their
# tasks and runs (multi-phase for an int8 model unless PHASES=single), and the dissection loop.
# Party 0 deploys, party 1 submits, party 2 challenges.
#
# RPC=URL plays on the node at URL (hardhat, anvil, geth) instead of starting `prover node`.
# KEYS="K0 K1 K2": the parties sign with these private keys (hex) instead of the node's accounts
# 0, 1 and 2 (the keys reach `prover` through PROVER_KEY, never on a command line).

# The Python that has prover installed with its dependencies: $PYTHON, else the activated
# environment's, else `python` on PATH, else the README's .venv.
INSTALLED='import importlib.util, prover; exit(not all(importlib.util.find_spec(m) for m in ("web3", "eth", "eth_tester", "numpy")))'
find_python() {
    local candidate
    for candidate in "${PYTHON:-}" "${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}" python python3 .venv/bin/python; do
        [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 || continue
        # Not `import prover` alone: from the checkout any Python imports it, installed or not.
        "$candidate" -c "$INSTALLED" 2>/dev/null && { echo "$candidate"; return; }
        # An explicit choice that cannot import prover is an error, not a reason to look elsewhere.
        [ "$candidate" = "${PYTHON:-}" ] && break
    done
    echo "error: no Python with the prover package installed${PYTHON:+ (PYTHON=$PYTHON cannot import prover)};" \
        "run the README's install command, or activate its environment" >&2
    return 1
}
PYTHON=$(find_python)
K=${K:-16}
IMAGE=${IMAGE:-0}
MODEL=${MODEL:-models/mlp_int8.ggml}
PHASES=${PHASES:-auto}  # the dispute game: auto (multi-phase for int8 models), multi or single

prover() { "$PYTHON" -m prover.cli "$@"; }

# `as_party N prover ARGS...`: the command as party N (its key from KEYS, else node account N).
as_party() {
    local who=$1
    shift
    if [ -n "${KEYS:-}" ]; then
        local keys
        read -r -a keys <<<"$KEYS"
        [ -n "${keys[$who]:-}" ] || { echo "error: KEYS has no key for party $who" >&2; exit 1; }
        PROVER_KEY=${keys[$who]} "$@"
    else
        "$@" --account "$who"
    fi
}
say() { printf '\n== %s\n' "$*"; }

# One field of game 1 from `prover status --json`, by a Python expression over `game` (as the
# submitter sees it: it knows the model, so a multi-phase game's node has its op too).
game_field() {
    prover status --game 1 --basedir "$SUBMITTER" --json |
        "$PYTHON" -c "import json, sys; game = json.load(sys.stdin)['games'][0]; print($1)"
}

# DIGIT: MNIST test image $IMAGE, the shipped PNG (examples/mnist) if it is one of them, else its
# 784 raw pixels taken from the full set ($MNIST_DIR, ../shared/data/mnist or data/mnist) into $1.
choose_digit() {
    DIGIT=""
    [[ "$IMAGE" =~ ^[0-9]+$ ]] && DIGIT=$(compgen -G "examples/mnist/test_$(printf %04d "$((10#$IMAGE))")_label_*.png" || true)
    if [ -n "$DIGIT" ]; then echo "input: MNIST test image $IMAGE ($DIGIT)"; return; fi
    DIGIT=$1
    "$PYTHON" - "$IMAGE" "$DIGIT" <<'EOF'
import sys
from prover.errors import ProverError
from prover.model.data import mnist_test_digit
image, out = sys.argv[1], sys.argv[2]
if not image.isdigit():
    sys.exit(f"error: IMAGE={image!r}: expected an MNIST test image index such as 0")
try:
    pixels, _ = mnist_test_digit(int(image))
except ProverError as exc:
    sys.exit(f"error: {exc}")
open(out, "wb").write(pixels.tobytes())
EOF
    echo "input: MNIST test image $IMAGE (784 raw pixels from $DIGIT)"
}

start_node() {
    say "starting a local JSON-RPC node"
    # Not through the prover function: $! must be the node process itself, so the trap can kill it.
    "$PYTHON" -m prover.cli node --port "${PORT:-0}" >"$WORK/node.log" 2>&1 &
    NODE_PID=$!
    # errexit holds inside the trap too: the killed node's status (143) would become the script's.
    trap 'kill "$NODE_PID" 2>/dev/null || true; wait "$NODE_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
    for _ in $(seq 600); do
        grep -q "listening on" "$WORK/node.log" && break
        kill -0 "$NODE_PID" 2>/dev/null || { cat "$WORK/node.log"; exit 1; }
        sleep 0.1
    done
    export PROVER_RPC
    PROVER_RPC=$(grep -m1 "listening on" "$WORK/node.log" | awk '{print $NF}')
    echo "node at $PROVER_RPC (pid $NODE_PID)"
}

demo_setup() {
    [ -f "$MODEL" ] || { echo "error: $MODEL: no such model file (set MODEL)" >&2; exit 1; }
    WORK=$(mktemp -d)
    SUBMITTER=$WORK/submitter
    CHALLENGER=$WORK/challenger
    START=$(date +%s)
    trap 'rm -rf "$WORK"' EXIT
    [ "${DEMO_INPUT:-digit}" = digit ] && choose_digit "$WORK/digit.raw"  # the LM demo sets DEMO_INPUT=text

    if [ -n "${RPC:-}" ]; then
        export PROVER_RPC=$RPC
        trap 'rm -rf "$WORK"' EXIT
        echo "node at $PROVER_RPC"
    else
        start_node
    fi
    export PROVER_DEPLOYMENT=$WORK/deployment.json

    say "deploying the MIPS verifier and the dispute game (k = $K)"
    as_party 0 prover deploy --k "$K"
}

# The step at which a faulty party corrupts its machine: FAULT_STEP, or a third of the run in $1.
fault_step() {
    if [ -n "${FAULT_STEP:-}" ]; then echo "$FAULT_STEP"; return; fi
    "$PYTHON" -c "import json, sys; print(json.load(open(sys.argv[1]))['steps'] // 3)" "$1/final.json"
}

# `task DIR`: a party's task (`prover golden`, the game PHASES chooses: graph.json or golden.json).
task() { prover golden --model "$MODEL" --data "$DIGIT" --basedir "$1" --phases "$PHASES"; }

# `faulty_run DIR`: the run of the task in DIR, made dishonest. A multi-phase task's graph run
# corrupts the output of node FAULT_NODE (default the middle node); a single-phase task's machine
# corrupts register $k0 from step FAULT_STEP on (default a third of the run). FAULT: the option
# the party's next chain command records it with (a multi-phase party's VM run of the disputed
# node lies from FAULT_STEP on if it is given, else at its last step).
faulty_run() {
    if [ -f "$1/graph.json" ]; then
        local node=${FAULT_NODE:-$("$PYTHON" -c "import json, sys; print((json.load(open(sys.argv[1]))['node_count'] + 1) // 2)" "$1/graph.json")}
        prover run --basedir "$1" --fault-node "$node"
        echo "its graph run corrupts the output of node $node"
        FAULT=(${FAULT_STEP:+--fault-step "$FAULT_STEP"})
    else
        prover run --basedir "$1"
        FAULT=(--fault-step "$(fault_step "$1")")
        echo "its machine corrupts register \$k0 at step ${FAULT[1]}"
    fi
}

dissect_and_step() {
    say "dissection: the submitter (defender) posts split hashes, the challenger selects a piece"
    # respond says so when one step is left (or the game is over); until then the two alternate
    # (the defender twice when it opens a multi-phase game's node).
    while true; do
        defence=$(as_party 1 prover respond --basedir "$SUBMITTER")
        echo "$defence"
        case "$defence" in
            *"one step is left"* | *"is over"*) break ;;
            *"opened node"*) continue ;; # multi-phase: the defender moves first in the node's VM game
        esac
        as_party 2 prover respond --basedir "$CHALLENGER"
    done

    if [ "$(game_field "game['winner'] is None")" = True ]; then
        say "one step left: the challenger has the contract execute it"
        as_party 2 prover step --basedir "$CHALLENGER" || as_party 1 prover step --basedir "$SUBMITTER"
    fi

    show_result
}

# `play_with_agents`: a `prover dispute` agent per side plays every move (graph phase, the node's
# opening, the VM phase, the step), then the result.
play_with_agents() {
    say "both agents play every move: graph phase, the node's opening, the VM phase, the step"
    as_party 1 "$PYTHON" -m prover.cli dispute --side defender --basedir "$SUBMITTER" --poll 0.05 &
    local defender_pid=$!
    as_party 2 prover dispute --side challenger --basedir "$CHALLENGER" --poll 0.05
    wait "$defender_pid"
    show_result
}

# `show_result`: the status, then the one line the demos end with (winner, node, rounds, gas) and
# the wall time.
show_result() {
    say "result"
    prover status --basedir "$SUBMITTER"
    game_field "f\"winner: the {game['winner']}; \" + (f\"node {game['node']} ({game['op']}); \" if game['node'] else '') + f\"rounds: {game['round']}; gas used: defender {game['gas']['defender']:,}, challenger {game['gas']['challenger']:,}, total {sum(game['gas'].values()):,}\""
    echo "wall time: $(($(date +%s) - START)) s"
}
