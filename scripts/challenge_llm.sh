#!/usr/bin/env bash
# A whole dispute over a language model's generation on a local chain (docs/dispute-game.md,
# "Generation claims"): the submitter decodes PROMPT greedily with the KV cache and claims the
# TOKENS tokens as one graph task, the forward pass over the prompt and the tokens but the last,
# answered per position by GREEDY; the challenger builds the task of the claimed tokens, runs it,
# and disputes the claim when its run differs; the two bisect over the graph's nodes, the defender
# opens the disputed node and the VM game on that one node ends in an instruction the MIPS verifier
# executes.
#
# Usage: scripts/challenge_llm.sh   (environment: MODEL language model .ggml [models/lm_int8.ggml],
#        PROMPT text ["import os\ndef "], TOKENS [8], FAULTY challenger (default) or submitter,
#        FAULT_NODE the node whose output the faulty party corrupts [the middle node], TILE_MACS the
#        tile size of large LINEARs [262144; 8388608 for a LLaMA of a billion parameters], K arity [16],
#        PORT [0: free]; RPC and KEYS as in scripts/demo_common.sh)
set -euo pipefail

cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/lm_int8.ggml}
DEMO_INPUT=text
source scripts/demo_common.sh
PROMPT=${PROMPT:-$'import os\ndef '}
TOKENS=${TOKENS:-8}
TILE_MACS=${TILE_MACS:-262144}
FAULTY=${FAULTY:-challenger}
case "$FAULTY" in
    challenger | submitter) ;;
    *) echo "error: FAULTY=$FAULTY: challenger or submitter" >&2; exit 1 ;;
esac
claim() { prover generate --model "$MODEL" --prompt "$PROMPT" --tokens "$TOKENS" --tile-macs "$TILE_MACS" --claim "$@"; }
# `corrupt DIR`: the party's graph run made dishonest: node FAULT_NODE's output (default the middle node).
corrupt() {
    local nodes node
    nodes=$("$PYTHON" -c "import json, sys; print(json.load(open(sys.argv[1]))['node_count'])" "$1/generation.json")
    node=${FAULT_NODE:-$(((nodes + 1) / 2))}
    prover run --basedir "$1" --fault-node "$node" >/dev/null
    echo "its graph run corrupts the output of node $node"
}

demo_setup
say "the submitter ($([ "$FAULTY" = submitter ] && echo faulty || echo honest)) generates $TOKENS tokens and claims them"
claim --basedir "$SUBMITTER"
[ "$FAULTY" = submitter ] && corrupt "$SUBMITTER"
as_party 1 prover submit --basedir "$SUBMITTER"

say "the challenger ($([ "$FAULTY" = challenger ] && echo faulty || echo honest)) runs the task of the claimed tokens"
claim --basedir "$CHALLENGER" --claimed "$SUBMITTER/generation.json"
[ "$FAULTY" = challenger ] && corrupt "$CHALLENGER"
as_party 2 prover challenge --basedir "$CHALLENGER"

play_with_agents
