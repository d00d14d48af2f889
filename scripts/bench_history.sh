#!/usr/bin/env bash
# import-db of a 1 GiB metrics.db, metrics stamped in event time against the wall clock (the SDK's, as before
# event time), side by side in one run, into the VictoriaMetrics that scripts/backends.sh starts. Spans off in
# all three, so the figures are the metrics' cost. Figures go to BENCHMARKS.md §6.
#   scripts/backends.sh start && scripts/bench_history.sh [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-${TMPDIR:-/tmp}/bamboo-otel-bench}"
mkdir -p "$data"
cargo build -q --release --features cli --bin bamboo-otel --example gen_load
[ -f "$data/metrics.db" ] || ./target/release/examples/gen_load db "$data/metrics.db" 1024
ls -l "$data/metrics.db"
vm="http://127.0.0.1:8428/opentelemetry/v1/metrics"
run() {
  echo "-- $1"
  shift
  env OTEL_TRACES_EXPORTER=none OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=http/protobuf \
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="$vm" OTEL_SERVICE_NAME="bench-history-$RANDOM" "$@" \
    /usr/bin/time -f "wall %e s, peak RSS %M KiB" ./target/release/bamboo-otel import-db "$data/metrics.db" \
    ${EXTRA:-} 2>&1 | grep -E "wall .* s, peak|metric points|rows read|events read"
}
# Interleaved rounds: this machine's timings drift by ±25 % from one minute to the next.
for round in $(seq "${RUNS:-3}"); do
  echo "== round $round"
  run "exporters none (floor: read and translate)" OTEL_METRICS_EXPORTER=none
  EXTRA="--metrics-clock wall" run "metrics on the wall clock (SDK, one export at the end)"
  run "metrics in 60 s windows of event time (ours, with exemplars)"
done
