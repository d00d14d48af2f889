#!/usr/bin/env bash
# The rate one bridge sustains into the collector tiers, beside the rate straight into Jaeger, in one run
# (BENCHMARKS.md, "7. Through the collector tiers"):
#
#   scripts/bench_tiers.sh [SIZE_MB]        (default 64: 222,000 events, 156,000 spans)
#
# Starts its own Jaeger (deploy/jaeger.yaml) on 127.0.0.10, and deploy/collector-gateway.yaml on 127.0.0.11 in front
# of two deploy/collector-sampling.yaml on 127.0.0.12 and .13, all as shipped, with only their addresses set.
# Replays the same generated file twice with the release CLI: into Jaeger, then into the gateway. Checks that
# nothing was dropped anywhere (the bridge's own report, then the gateway's and the samplers' accepted and refused
# spans), and prints events/s for both.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-64}
work=$(mktemp -d /tmp/bamboo-otel-bench-tiers.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

scripts/backends.sh install >/dev/null
otelcol=$(scripts/backends.sh bin otelcol)
jaeger=$(scripts/backends.sh bin jaeger)
cargo build -q --release --features cli --bin bamboo-otel --example gen_load
./target/release/examples/gen_load jsonl "$work/events.jsonl" "$size" >/dev/null
events=$(wc -l < "$work/events.jsonl")

wait_port() { for _ in $(seq 300); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return; sleep 0.1; done; echo "no $1:$2" >&2; exit 1; }
JAEGER_HOST=127.0.0.10 "$jaeger" --config deploy/jaeger.yaml >"$work/jaeger.log" 2>&1 & pids+=($!)
for host in 127.0.0.12 127.0.0.13; do
  SAMPLING_HOST=$host SAMPLING_DECISION_WAIT=5s JAEGER_OTLP_ENDPOINT=127.0.0.10:4317 TEMPO_OTLP_ENDPOINT=127.0.0.10:4317 \
    "$otelcol" --config deploy/collector-sampling.yaml >"$work/sampling-$host.log" 2>&1 & pids+=($!)
done
GATEWAY_HOST=127.0.0.11 SAMPLING_ENDPOINTS='[127.0.0.12:4317, 127.0.0.13:4317]' \
  METRICS_OTLP_ENDPOINT=http://127.0.0.10:4318/v1/metrics \
  "$otelcol" --config deploy/collector-gateway.yaml >"$work/gateway.log" 2>&1 & pids+=($!)
for hp in 127.0.0.10:4317 127.0.0.11:4317 127.0.0.12:4317 127.0.0.13:4317; do wait_port "${hp%:*}" "${hp#*:}"; done

# The collector's own counter, summed over its series.
own() { curl -s "http://$1:8888/metrics" | awk -v m="$2" '$1 ~ "^"m"({|$)" {s += $NF} END {printf "%d", s}'; }

replay() { # name endpoint; leaves the bridge's closing line in $line
  local start end
  start=$(date +%s.%N)
  line=$(OTEL_EXPORTER_OTLP_ENDPOINT=$2 OTEL_METRICS_EXPORTER=none ./target/release/bamboo-otel replay "$work/events.jsonl" 2>&1 | tail -n 1)
  end=$(date +%s.%N)
  echo "$line" | grep -q ': ok' || { echo "$1: the bridge reported a problem: $line" >&2; exit 1; }
  awk -v n="$events" -v a="$start" -v b="$end" -v name="$1" \
    'BEGIN {printf "%-38s %8.2f s  %9.0f events/s\n", name, b - a, n / (b - a)}'
  echo "    bridge: $line"
}

echo "# $(nproc) cores; $events events; $(date -u +%Y-%m-%dT%H:%MZ)"
replay "bridge → Jaeger (OTLP gRPC)" http://127.0.0.10:4317
replay "bridge → gateway → 2 samplers → Jaeger" http://127.0.0.11:4317
# Zero drops past the bridge: everything it exported into the gateway reached the samplers, and nobody refused any.
sent=$(awk -F'[ ,]+' '{for (i = 1; i < NF; i++) if ($(i + 1) == "spans" && $(i + 2) == "exported") print $i}' <<<"$line")
for _ in $(seq 600); do
  got=$(( $(own 127.0.0.12 otelcol_receiver_accepted_spans) + $(own 127.0.0.13 otelcol_receiver_accepted_spans) ))
  [ "$got" -ge "$sent" ] && break
  sleep 0.1
done
echo "    gateway: accepted $(own 127.0.0.11 otelcol_receiver_accepted_spans), refused $(own 127.0.0.11 otelcol_receiver_refused_spans), sent $(own 127.0.0.11 otelcol_exporter_sent_spans), failed $(own 127.0.0.11 otelcol_exporter_send_failed_spans)"
echo "    samplers: accepted $got of $sent spans, refused $(( $(own 127.0.0.12 otelcol_receiver_refused_spans) + $(own 127.0.0.13 otelcol_receiver_refused_spans) ))"
[ "$got" -eq "$sent" ] || { echo "spans were lost between the gateway and the samplers" >&2; exit 1; }
