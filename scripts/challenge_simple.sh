#!/usr/bin/env bash
# A whole MNIST dispute on a local chain, as OPML's demo/challenge_simple.sh: an honest submitter
# posts the result of an inference; a faulty challenger disputes it; the two bisect until one
# instruction is left, which the MIPS verifier contract executes. The honest submitter wins.
# With an int8 model the game is multi-phase (docs/dispute-game.md): the two bisect over the
# model's nodes computed natively (the challenger's run corrupts one node's output), the submitter
# opens the disputed node, and they bisect that node's run in the VM. With PHASES=single (or an f32
# model) they bisect the whole inference's run in the VM (the challenger's machine corrupts a
# register at one step).
#
# Usage: scripts/challenge_simple.sh   (environment: K arity [16], IMAGE MNIST test index [0],
#        MODEL .ggml file [models/mlp_int8.ggml], PHASES auto|multi|single [auto], FAULT_NODE
#        [the middle node], FAULT_STEP [single-phase: a third of the run], PORT [0: free])
# The faulty submitter / honest challenger direction: scripts/challenge_faulty_submitter.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/demo_common.sh

demo_setup
say "the submitter (honest) runs the task and posts its result"
task "$SUBMITTER"
prover run --basedir "$SUBMITTER"
as_party 1 prover submit --basedir "$SUBMITTER"

say "the challenger runs the same task, faulty"
task "$CHALLENGER"
faulty_run "$CHALLENGER"
as_party 2 prover challenge --basedir "$CHALLENGER" "${FAULT[@]}"

dissect_and_step
