#!/usr/bin/env bash
# The transformer against the original Node.js handler in one run, as BENCHMARKS.md reports them:
# the original once before and once after the Criterion benchmarks (which write the events both
# measure to $TMPDIR/alleycat-bench/), so that a change in the machine's load shows as a change
# between the two. Extra arguments go to Criterion (a filter, say).
#
# Usage: bash bench/original/compare.sh [criterion arguments]
set -euo pipefail
cd "$(dirname "$0")/../.."
events="${TMPDIR:-/tmp}/alleycat-bench"
original() {
  for n in 500 18500; do
    if [[ -f "$events/firehose-$n.json" ]]; then
      node bench/original/transformer.mjs "$events/firehose-$n.json"
    fi
  done
}
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== original, before"
original
echo "== ours"
cargo bench -p transformer --bench transformer -- --warm-up-time 2 --measurement-time 5 "$@"
echo "== original, after"
original
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)"
