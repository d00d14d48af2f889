#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints for every feature set that matters, then all tests with
# the real OTLP backends (Phoenix, VictoriaMetrics, rotel) installed, started on 127.0.0.1 and stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/backends.sh start
trap 'scripts/backends.sh stop' EXIT

cargo fmt --check
# The dashboard JSON is generated: the committed file must be what the generator writes. The deploy/ configs are
# parsed and cross-checked (Python with PyYAML from the backends' venv).
python="${BAMBOO_OTEL_CACHE:-$HOME/.cache/bamboo-otel}/venv/bin/python"
"$python" scripts/make_dashboard.py >/dev/null
git diff --exit-code -- dashboards/ || { echo "dashboards/ is stale: run python3 scripts/make_dashboard.py" >&2; exit 1; }
"$python" scripts/check_deploy.py
cargo clippy --all-targets -- -D warnings
cargo clippy --all-features --all-targets -- -D warnings
cargo clippy --no-default-features --features sources --all-targets -- -D warnings
cargo clippy --no-default-features --all-targets -- -D warnings
cargo clippy --no-default-features --features grpc --all-targets -- -D warnings
cargo clippy --no-default-features --features http --all-targets -- -D warnings
# The README's quickstart, a package of its own (quickstart/) so its cold build stays small.
cargo clippy -p quickstart -- -D warnings
if cargo tree --no-default-features -e normal | grep -q opentelemetry; then
  echo "the build without the otel feature must not depend on OpenTelemetry" >&2
  exit 1
fi

# Licenses, banned crates (native TLS) and sources. Offline: the advisory database is fetched from GitHub, which
# this machine cannot reach, so `check advisories` is left to machines that can (see RELIABILITY.md).
# cargo deny reads the metadata of every target platform (wasm, Android, Windows crates included), while the
# builds above fetched only the host's: fetch them all first, from the lock file, or offline mode fails on a
# fresh cargo home.
command -v cargo-deny >/dev/null 2>&1 || cargo install cargo-deny --locked --version 0.20.2
cargo fetch --locked
cargo deny --offline --log-level error check licenses bans sources

# Fuzz every target for 60 s (libFuzzer + AddressSanitizer); longer runs are recorded in RELIABILITY.md.
scripts/fuzz.sh 60

# Without the `otel` feature: the event model, translator and the no-op Bridge, with no OpenTelemetry dependency.
cargo test --no-default-features
# Everything else, the CLI included (its tests drive the built binary against the backends).
cargo test --all-features
