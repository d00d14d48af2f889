#!/usr/bin/env bash
# Every benchmark of BENCHMARKS.md, in one run (about 14 minutes on the 2-core machine, 10 of them the memory
# replay; BENCH_REPLAY_SECS shortens it). Results go to stdout and to target/bench-results/.
#
#   scripts/bench.sh
#
# Starts its own rotel with a blackhole exporter on 127.0.0.1:24317 for the real-collector measurement, so the
# figures are the bridge's and the collector hop's, not those of a slow store behind it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench-results
mkdir -p "$out"
data=${BENCH_DATA:-$(mktemp -d /tmp/bamboo-otel-bench.XXXXXX)}

scripts/backends.sh install
rotel=$(ls "${BAMBOO_OTEL_CACHE:-$HOME/.cache/bamboo-otel}"/venv/lib/python3*/site-packages/rotel/rotel-agent | head -n 1)
"$rotel" start --otlp-grpc-endpoint 127.0.0.1:24317 --otlp-http-endpoint 127.0.0.1:24318 --exporter blackhole \
  > "$out/rotel-blackhole.log" 2>&1 &
rotel_pid=$!
trap 'kill $rotel_pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/24317) 2>/dev/null && break; sleep 0.1; done

{
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
  echo "# $(rustc --version); $(date -u +%Y-%m-%dT%H:%MZ)"
} | tee "$out/machine.txt"

echo "== 1. hot path" ; cargo bench -q --bench hot_path 2>/dev/null | tee "$out/hot_path.txt"
echo "== 2. translation"; cargo bench -q --bench translate 2>/dev/null | grep -E "translate|time:|thrpt:" | tee "$out/translate.txt"
echo "== 3+4. end to end, real collector"; cargo bench -q --bench export 2>/dev/null | tee "$out/export.txt"

echo "== 6. CLI on 1 GiB"
cargo build -q --release --features cli --bin bamboo-otel --example gen_load
./target/release/examples/gen_load jsonl "$data/big.jsonl" 1024
./target/release/examples/gen_load db "$data/metrics.db" 1024
{
  echo "-- floor: read the file (wc -l)"
  /usr/bin/time -f "wall %e s, peak RSS %M KiB" wc -l "$data/big.jsonl"
  echo "-- floor: parse every line (jq -c .)"
  /usr/bin/time -f "wall %e s, peak RSS %M KiB" sh -c "jq -c . '$data/big.jsonl' > /dev/null"
  echo "-- bamboo-otel replay, exporters none (read, parse, translate)"
  OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none \
    /usr/bin/time -f "wall %e s, peak RSS %M KiB" ./target/release/bamboo-otel replay "$data/big.jsonl"
  echo "-- bamboo-otel replay into rotel over gRPC"
  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24317 OTEL_METRICS_EXPORTER=none \
    /usr/bin/time -f "wall %e s, peak RSS %M KiB" ./target/release/bamboo-otel replay "$data/big.jsonl"
  echo "-- bamboo-otel import-db, exporters none"
  OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none \
    /usr/bin/time -f "wall %e s, peak RSS %M KiB" ./target/release/bamboo-otel import-db "$data/metrics.db"
} 2>&1 | tee "$out/cli.txt"

echo "== 8. the bamboo tee"; cargo bench -q --bench tee --features bamboo 2>/dev/null | tee "$out/tee.txt"
echo "== 5. memory"; BENCH_REPLAY_SECS=${BENCH_REPLAY_SECS:-600} cargo bench -q --bench memory 2>/dev/null | tee "$out/memory.txt"
