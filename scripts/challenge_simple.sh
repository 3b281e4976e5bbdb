#!/usr/bin/env bash
# A whole MNIST dispute on a local chain, as OPML's demo/challenge_simple.sh: an honest submitter
# posts the result of an inference; a faulty challenger (its machine corrupts a register at one
# step) disputes it; the two bisect the execution trace with challenge/respond calls until one
# instruction is left, which the MIPS verifier contract executes. The honest submitter wins.
#
# Usage: scripts/challenge_simple.sh   (environment: K arity [16], IMAGE MNIST test index [0],
#        MODEL .ggml file [models/mlp_int8.ggml], FAULT_STEP [a third of the run], PORT [0: free])
# The faulty submitter / honest challenger direction: scripts/challenge_faulty_submitter.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/demo_common.sh

demo_setup
say "the submitter (honest) runs the task and posts its result"
prover golden --model "$MODEL" --data "$DIGIT" --basedir "$SUBMITTER"
prover run --basedir "$SUBMITTER"
as_party 1 prover submit --basedir "$SUBMITTER"

say "the challenger runs the same task on a faulty machine"
prover golden --model "$MODEL" --data "$DIGIT" --basedir "$CHALLENGER"
prover run --basedir "$CHALLENGER"
echo "its machine corrupts register \$k0 at step $(fault_step "$CHALLENGER")"
as_party 2 prover challenge --basedir "$CHALLENGER" --fault-step "$(fault_step "$CHALLENGER")"

dissect_and_step
