#!/usr/bin/env bash
# Builds and runs every fuzz target (cargo fuzz, libFuzzer with AddressSanitizer) for a bounded time each:
#   scripts/fuzz.sh [SECONDS_EACH]      (default 60; CI runs the default, RELIABILITY.md records the long runs)
# The corpus starts from real traffic (tests/data/sample-events.jsonl): one seed per line for the parser, and
# whole sessions for the translator. A crash is saved in fuzz/artifacts/<target>/ and fails this script.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
# The machine has one stable toolchain; cargo fuzz passes -Z flags (sanitizer, coverage), which stable accepts
# only with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1

sample=tests/data/sample-events.jsonl
seed() { # target
  local dir=fuzz/corpus/$1
  [ -d "$dir" ] && return
  mkdir -p "$dir"
  case $1 in
    json_lines)
      split -l 1 -d -a 4 "$sample" "$dir/line-"
      cp "$sample" "$dir/whole" ;;
    translate)
      # The first byte picks the translator's settings (time-to-live, capacity, clock).
      for mode in A z; do
        { printf '%s' "$mode"; cat "$sample"; } > "$dir/whole-$mode"
      done
      split -l 24 -d -a 3 "$sample" "$dir/chunk-"
      for f in "$dir"/chunk-*; do { printf '0'; cat "$f"; } > "$f.m" && rm "$f"; done ;;
  esac
}

cargo fuzz build --fuzz-dir fuzz -O
for target in json_lines translate; do
  seed "$target"
  echo "fuzz: $target for ${secs}s"
  # A single allocation over 256 MiB, or 2 GiB resident, is a failure: inputs must not make memory unbounded.
  log=fuzz/corpus/$target.log
  if ! cargo fuzz run --fuzz-dir fuzz -O "$target" "fuzz/corpus/$target" -- \
      -max_total_time="$secs" -max_len=262144 -rss_limit_mb=2048 -malloc_limit_mb=256 -print_final_stats=1 \
      >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|^#[0-9]+ +DONE' "$log"
done
