#!/usr/bin/env bash
# The other direction of scripts/challenge_simple.sh: a faulty submitter (multi-phase: its graph
# run corrupts one node's output; single-phase: its machine corrupts a register at one step, so its
# final state is wrong although its output looks right) posts a result; an honest challenger
# re-runs the task, disagrees, and wins the dispute.
#
# Usage: scripts/challenge_faulty_submitter.sh   (same environment as challenge_simple.sh)
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/demo_common.sh

demo_setup
say "the submitter runs the task, faulty, and posts its result"
task "$SUBMITTER"
faulty_run "$SUBMITTER"
as_party 1 prover submit --basedir "$SUBMITTER" "${FAULT[@]}"

say "the challenger (honest) re-runs the task and disputes the result"
task "$CHALLENGER"
prover run --basedir "$CHALLENGER"
as_party 2 prover challenge --basedir "$CHALLENGER"

dissect_and_step
