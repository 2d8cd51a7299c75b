#!/usr/bin/env bash
# The diff step of casstore's GitHub Action (action.yml). Kept in a file, not inline, so that
# the tests run exactly what CI runs. Everything comes in through environment variables:
#   CAS_BASE      base revision; empty = the merge base of the pull request's base branch and HEAD
#   CAS_HEAD      head revision (default HEAD)
#   CAS_BASE_REF  the pull request's base branch (github.base_ref), used when CAS_BASE is empty
#   CAS_FETCH     "true": fetch the changed artifacts from the default remote first
#   CAS_GATE      "true": check the review rules of .cas/config.yaml (cas diff --fail-on-regression)
#   CAS_REPORT    where to write the markdown (default cas-diff.md)
# Outputs (to $GITHUB_OUTPUT): skip=true when there is nothing to diff, gate=0|1, report=PATH.
set -euo pipefail

out="${GITHUB_OUTPUT:-/dev/null}"
summary="${GITHUB_STEP_SUMMARY:-/dev/null}"
report="${CAS_REPORT:-cas-diff.md}"
head="${CAS_HEAD:-HEAD}"

if [ ! -f .cas/config.yaml ]; then
    echo "No casstore repository here (.cas/config.yaml); nothing to report."
    echo "skip=true" >> "$out"
    exit 0
fi

base="${CAS_BASE:-}"
if [ -z "$base" ]; then
    if [ -z "${CAS_BASE_REF:-}" ]; then
        echo "Not a pull request and no 'base' input given; nothing to compare with."
        echo "skip=true" >> "$out"
        exit 0
    fi
    # A shallow checkout lacks the base branch; fetching it is cheap (pointers only).
    git fetch --no-tags --quiet origin "$CAS_BASE_REF" || true
    # Compare with the merge base, as GitHub's own diff of a pull request does.
    if ! base=$(git merge-base "origin/$CAS_BASE_REF" "$head" 2>/dev/null); then
        echo "::error::no merge base of origin/$CAS_BASE_REF and $head; check out with 'fetch-depth: 0'"
        exit 2
    fi
fi

if [ "${CAS_FETCH:-false}" = "true" ] && [ -n "$(cas remote list 2>/dev/null)" ]; then
    # The data of both sides: bytes really new and tensor/row diffs need the two versions.
    cas fetch --rev "$base" --rev "$head" \
        || echo "::warning::cas fetch failed; the comment shows what the pointers say"
fi

gate_flag=()
if [ "${CAS_GATE:-true}" = "true" ]; then
    gate_flag=(--fail-on-regression)
fi
# The gate's exit code is kept for a later step: the comment is posted first, so the reviewer
# sees which metric regressed. 1 = a rule broken; anything else = an error, which fails now.
# cas exits 1 for errors too, so stderr tells the two apart: an error is a "cas: error:" line.
errors=$(mktemp)
set +e
cas diff "$base" "$head" --format markdown "${gate_flag[@]}" > "$report" 2> "$errors"
rc=$?
set -e
cat "$errors" >&2
if [ "$rc" -ne 0 ] && { [ "$rc" -ne 1 ] || grep -q '^cas: error:' "$errors"; }; then
    exit "$rc"
fi
echo "gate=$rc" >> "$out"
echo "report=$report" >> "$out"
cat "$report" >> "$summary"
