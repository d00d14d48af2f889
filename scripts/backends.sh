#!/usr/bin/env bash
# Installs, starts and stops the real OTLP backends the end-to-end tests talk to, all on 127.0.0.1:
#   Phoenix          traces   OTLP gRPC :4319 (not 4317: it binds every address, Jaeger has 127.0.0.2:4317), OTLP HTTP :6006/v1/traces, query API :6006
#   VictoriaMetrics  metrics  OTLP HTTP :8428/opentelemetry/v1/metrics, Prometheus API :8428/api/v1/query
#   rotel            collector hop, OTLP gRPC :14317 / HTTP :14318, forwarding to the two above
#   Jaeger v2        traces   OTLP gRPC 127.0.0.2:4317, HTTP 127.0.0.2:4318, query API v3 127.0.0.2:16686
#                    (deploy/jaeger.yaml; its own loopback address, so the README's ports stay as written)
#   Prometheus 3     metrics  OTLP HTTP :9090/api/v1/otlp/v1/metrics, query API :9090 (deploy/prometheus.yml)
# The OpenTelemetry Collector (servers/otelcol) is built here too; tests/collector_tiers.rs starts its tiers.
# Usage: scripts/backends.sh install|start|stop|status|bin NAME
# Installs are cached under $BAMBOO_OTEL_CACHE (default ~/.cache/bamboo-otel) so a second run starts in seconds.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

CACHE=${BAMBOO_OTEL_CACHE:-$HOME/.cache/bamboo-otel}
RUN=${BAMBOO_OTEL_RUN:-$CACHE/run}
PHOENIX_VERSION=20.26.1
ROTEL_VERSION=0.0.1a15
VENV=$CACHE/venv
VM_BIN=$CACHE/victoria-metrics/usr/bin/victoria-metrics
# The rotel wheel ships its agent binary inside the package, not on the venv's PATH.
rotel_bin() { ls "$VENV"/lib/python3*/site-packages/rotel/rotel-agent 2>/dev/null | head -n 1; }

log() { printf 'backends: %s\n' "$*" >&2; }

install_python() {
  # pip's output is read whole first: `pip show | grep -q` fails under pipefail when grep stops reading early.
  local shown
  shown=$("$VENV/bin/pip" show arize-phoenix 2>/dev/null || true)
  if [ -x "$VENV/bin/phoenix" ] && [ -x "$(rotel_bin)" ] && grep -q "^Version: $PHOENIX_VERSION$" <<<"$shown"; then
    return
  fi
  log "installing arize-phoenix==$PHOENIX_VERSION and rotel==$ROTEL_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "arize-phoenix==$PHOENIX_VERSION" "rotel==$ROTEL_VERSION"
}

# VictoriaMetrics is packaged by Debian trixie only. Fetch the .deb through a private apt configuration whose
# sources are this machine's own Debian mirror with the suite renamed, and unpack it: `dpkg -i` would fail on a
# libzstd version check, but the static binary runs fine on bookworm.
install_victoria_metrics() {
  [ -x "$VM_BIN" ] && return
  log "fetching victoria-metrics from Debian trixie"
  local apt=$CACHE/apt
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/etc/empty" "$CACHE/victoria-metrics"
  local mirror
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$apt/etc/sources.list"
  cat > "$apt/etc/apt.conf" <<CONF
Dir::State "$apt";
Dir::State::Lists "$apt/lists";
Dir::State::status "/var/lib/dpkg/status";
Dir::Cache "$apt";
Dir::Cache::archives "$apt/archives";
Dir::Etc::SourceList "$apt/etc/sources.list";
Dir::Etc::SourceParts "$apt/etc/empty";
Dir::Etc::Preferences "$apt/etc/empty/preferences";
Dir::Etc::PreferencesParts "$apt/etc/empty";
APT::Architecture "amd64";
APT::Sandbox::User "root";
CONF
  APT_CONFIG=$apt/etc/apt.conf apt-get -qq update
  (cd "$apt/archives" && APT_CONFIG=$apt/etc/apt.conf apt-get -qq download victoria-metrics)
  dpkg-deb -x "$apt"/archives/victoria-metrics_*.deb "$CACHE/victoria-metrics"
  [ -x "$VM_BIN" ] || { log "victoria-metrics binary not found after unpacking"; exit 1; }
}

# The Go servers are built from their official modules, pinned by servers/NAME/go.mod and go.sum, and cached by
# the hash of those two files and the Go version: a cold build takes minutes (BENCHMARKS.md), a cached one none.
go_bin() { # name -> path of the cached binary
  local key
  key=$(cat "$ROOT/servers/$1/go.mod" "$ROOT/servers/$1/go.sum" "$ROOT/servers/$1"/*.go 2>/dev/null \
    | cat - <(go env GOVERSION) | sha256sum | cut -c1-16)
  echo "$CACHE/bin/$1-$key"
}
build_go() { # name package...
  local name=$1 out; shift
  out=$(go_bin "$name")
  [ -x "$out/${name}" ] && return
  log "building $name from servers/$name ($*); cached in $out"
  mkdir -p "$out.tmp"
  local pkg start=$SECONDS
  for pkg in "$@"; do
    (cd "$ROOT/servers/$name" && go build -trimpath -buildvcs=false -o "$out.tmp/$(basename "$pkg" | sed "s/^\.$/$name/")" "$pkg")
  done
  rm -rf "$out" && mv "$out.tmp" "$out"
  log "built $name in $((SECONDS - start)) s"
}
install_go() {
  command -v go >/dev/null || { log "go is needed to build Jaeger, Prometheus and the collector"; exit 1; }
  # The machine's own Go (1.26): the pinned modules build with it, and nothing is fetched but modules.
  export GOTOOLCHAIN=local
  build_go jaeger github.com/jaegertracing/jaeger/cmd/jaeger
  build_go prometheus github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
  build_go otelcol .
}
bin() { # name: the path of a built server binary (jaeger, prometheus, promtool, otelcol)
  local dir=$1
  [ "$1" = promtool ] && dir=prometheus
  echo "$(go_bin "$dir")/$1"
}

# Prometheus as deploy/docker-compose.yml runs it: OTLP receiver, exemplar storage, the first sample of a new
# series counted from its start time; deploy/prometheus.yml sets the out-of-order window and promoted resource
# attributes. scripts/check_deploy.py checks that the compose file uses exactly these flags.
PROMETHEUS_FLAGS=(
  --web.enable-otlp-receiver
  --enable-feature=exemplar-storage
  --enable-feature=created-timestamp-zero-ingestion
)

wait_http() { # url seconds name
  local url=$1 secs=$2 name=$3 i
  for ((i = 0; i < secs * 5; i++)); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  log "$name did not become ready at $url within ${secs}s; its log:"
  tail -n 40 "$RUN/$name.log" >&2 || true
  return 1
}

start_one() { # name cmd...
  local name=$1; shift
  if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    log "$name already running (pid $(cat "$RUN/$name.pid"))"; return
  fi
  nohup "$@" >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

start() {
  install_python
  install_victoria_metrics
  install_go
  mkdir -p "$RUN" "$RUN/phoenix" "$RUN/vm-data"
  rm -rf "$RUN/prometheus-data"
  JAEGER_HOST=127.0.0.2 start_one jaeger "$(bin jaeger)" --config "$ROOT/deploy/jaeger.yaml"
  start_one prometheus "$(bin prometheus)" --config.file="$ROOT/deploy/prometheus.yml" "${PROMETHEUS_FLAGS[@]}" \
    --web.listen-address=127.0.0.1:9090 --storage.tsdb.path="$RUN/prometheus-data" \
    --storage.tsdb.retention.time=100y
  PHOENIX_HOST=127.0.0.1 PHOENIX_PORT=6006 PHOENIX_GRPC_PORT=4319 PHOENIX_WORKING_DIR="$RUN/phoenix" \
    PHOENIX_TELEMETRY_ENABLED=false start_one phoenix "$VENV/bin/phoenix" serve
  start_one victoria-metrics "$VM_BIN" -httpListenAddr=127.0.0.1:8428 -storageDataPath="$RUN/vm-data" \
    -opentelemetry.usePrometheusNaming -search.latencyOffset=0s -search.disableCache -retentionPeriod=100y
  start_one rotel "$(rotel_bin)" start \
    --otlp-grpc-endpoint 127.0.0.1:14317 --otlp-http-endpoint 127.0.0.1:14318 \
    --exporter otlp --otlp-exporter-protocol http \
    --otlp-exporter-traces-endpoint http://127.0.0.1:6006/v1/traces \
    --otlp-exporter-metrics-endpoint http://127.0.0.1:8428/opentelemetry/v1/metrics \
    --otlp-exporter-logs-endpoint http://127.0.0.1:8428/opentelemetry/v1/logs
  wait_http http://127.0.0.1:8428/health 30 victoria-metrics
  wait_http http://127.0.0.1:6006/healthz 90 phoenix
  wait_http http://127.0.0.2:13133/status 60 jaeger
  wait_http http://127.0.0.1:9090/-/ready 60 prometheus
  # rotel has no health endpoint: wait for its OTLP HTTP port to answer at all.
  local i
  for ((i = 0; i < 150; i++)); do
    curl -s -o /dev/null http://127.0.0.1:14318/ && break
    sleep 0.2
  done
  curl -s -o /dev/null http://127.0.0.1:14318/ || { log "rotel did not start"; tail -n 40 "$RUN/rotel.log" >&2; exit 1; }
  log "all backends up (logs in $RUN)"
}

stop() {
  local name
  local pids=() pid i
  for name in rotel phoenix victoria-metrics jaeger prometheus; do
    if [ -f "$RUN/$name.pid" ]; then
      pid=$(cat "$RUN/$name.pid")
      kill "$pid" 2>/dev/null && pids+=("$pid")
      rm -f "$RUN/$name.pid"
    fi
  done
  # Wait for them to exit (Phoenix takes a few seconds), so a start right after finds its ports free.
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

status() {
  local name
  for name in phoenix victoria-metrics rotel jaeger prometheus; do
    if [ -f "$RUN/$name.pid" ] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
      echo "$name: running (pid $(cat "$RUN/$name.pid"))"
    else
      echo "$name: stopped"
    fi
  done
}

case "${1:-}" in
  install) install_python; install_victoria_metrics; install_go ;;
  bin) bin "${2:?usage: $0 bin jaeger|prometheus|promtool|otelcol}" ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
