#!/usr/bin/env bash
# A whole multi-phase dispute on a local chain (docs/dispute-game.md, "Multi-phase games"): both
# parties commit to the model per node and run its graph natively; the submitter posts the
# result; the challenger, whose graph run differs, disputes it; the two bisect over the graph's
# nodes, the defender opens the disputed node (the contract checks the link: node, inputs, output),
# and the VM game on that one node ends in an instruction the MIPS verifier executes.
#
# Usage: scripts/challenge_multiphase.sh   (environment: MODEL .ggml file [models/mlp_int8.ggml],
#        IMAGE MNIST test index [0], K arity [16], FAULT_NODE the node whose output the faulty party
#        corrupts [2], FAULTY challenger (default) or submitter, PORT [0: free]; RPC and KEYS as in
#        scripts/demo_common.sh)
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/demo_common.sh
FAULT_NODE=${FAULT_NODE:-2}
FAULTY=${FAULTY:-challenger}
case "$FAULTY" in
    challenger) SUBMITTER_FAULT=() CHALLENGER_FAULT=(--fault-node "$FAULT_NODE") ;;
    submitter) SUBMITTER_FAULT=(--fault-node "$FAULT_NODE") CHALLENGER_FAULT=() ;;
    *) echo "error: FAULTY=$FAULTY: challenger or submitter" >&2; exit 1 ;;
esac

demo_setup
say "the submitter ($([ "$FAULTY" = submitter ] && echo faulty || echo honest)) runs the graph natively and posts its result"
prover graph --model "$MODEL" --data "$DIGIT" --basedir "$SUBMITTER" "${SUBMITTER_FAULT[@]}"
as_party 1 prover submit --basedir "$SUBMITTER"

say "the challenger ($([ "$FAULTY" = challenger ] && echo faulty || echo honest)) runs the same graph"
prover graph --model "$MODEL" --data "$DIGIT" --basedir "$CHALLENGER" "${CHALLENGER_FAULT[@]}"
echo "the faulty party corrupts the output of node $FAULT_NODE"
as_party 2 prover challenge --basedir "$CHALLENGER"

play_with_agents
