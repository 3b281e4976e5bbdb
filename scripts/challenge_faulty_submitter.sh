#!/usr/bin/env bash
# The other direction of scripts/challenge_simple.sh: a faulty submitter (its machine corrupts a
# register at one step, so its final state is wrong although its output looks right) posts a
# result; an honest challenger re-runs the task, disagrees, and wins the dispute.
#
# Usage: scripts/challenge_faulty_submitter.sh   (same environment as challenge_simple.sh)
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/demo_common.sh

demo_setup
say "the submitter runs the task on a faulty machine and posts its result"
prover golden --model "$MODEL" --data "$DIGIT" --basedir "$SUBMITTER"
prover run --basedir "$SUBMITTER"
as_party 1 prover submit --basedir "$SUBMITTER" --fault-step "$(fault_step "$SUBMITTER")"

say "the challenger (honest) re-runs the task and disputes the result"
prover golden --model "$MODEL" --data "$DIGIT" --basedir "$CHALLENGER"
prover run --basedir "$CHALLENGER"
as_party 2 prover challenge --basedir "$CHALLENGER"

dissect_and_step
