#!/bin/sh
# The soak run of issue 23 (not in CI): `gitgate serve` with the built-in library and
# provenance on a repository that gets a signed commit every few seconds (and POST /refresh),
# its certificate rotated every minute, at 1,000 requests per second of the shared fixtures
# for 10 minutes; a line every 10 s with p50, p99, errors, late answers and RSS.
# See benches/soak.rs for what it does, RELIABILITY.md for the figures.
#
#   scripts/soak.sh                 # 600 s at 1,000 req/s
#   GITGATE_SOAK_SECONDS=120 GITGATE_SOAK_RATE=500 scripts/soak.sh
#
# The output is kept in target/soak-<date>.txt.
set -eu
cd "$(dirname "$0")/.."
out="${CARGO_TARGET_DIR:-target}/soak-$(date -u +%Y%m%dT%H%M%SZ).txt"
mkdir -p "$(dirname "$out")"
cargo bench --bench soak 2>&1 | tee "$out"
echo "kept in $out"
