#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 30), each starting from its
# committed seeds (fuzz/seeds/NAME) plus what earlier runs on this checkout kept (fuzz/corpus/NAME,
# not committed). Exits non-zero if any target crashed, panicked, ran out of memory (512 MB) or
# took over 30 s on one input, after printing the panic (or libFuzzer's report) and the input.
# docs/fuzzing.md describes the targets.
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS]  (seconds per target, a positive whole number)" >&2
  exit 2
fi

# libFuzzer builds need the compiler's unstable flags (-Zsanitizer). A nightly toolchain is used
# when one is installed; otherwise the default (stable) one is allowed them, since a machine
# that can install crates may still be unable to fetch another toolchain.
toolchain=()
if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  echo "fuzz: no nightly toolchain; using $(rustc --version) with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# cargo fuzz has no --locked: refuse a fuzz/Cargo.lock that no longer matches the manifests
# (dependencies are then exactly those committed), before the build would rewrite it.
if ! cargo "${toolchain[@]}" metadata --locked --format-version 1 \
  --manifest-path fuzz/Cargo.toml >/dev/null; then
  echo "fuzz: fuzz/Cargo.lock is out of date (a crate's dependencies changed). Update it with the" \
    "workspace's versions and commit it: cp Cargo.lock fuzz/ && cargo metadata" \
    "--manifest-path fuzz/Cargo.toml --format-version 1 >/dev/null" >&2
  exit 1
fi

cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check

mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
echo "fuzz: building ${#targets[@]} targets"
cargo "${toolchain[@]}" fuzz build

# A panic's report then names the functions, files and lines that led to it.
export RUST_BACKTRACE=1
logs=fuzz/artifacts/logs
# One of the figures libFuzzer prints on exit (-print_final_stats=1): final_stat NAME LOG.
final_stat() { awk -v key="stat::$1:" '$1 == key { print $2 }' "$2"; }
mkdir -p "$logs"
failed=()
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  log="$logs/$target.log"
  before=$(find "$artifacts" -type f | sort)
  status=0
  # The corpus directory comes first: libFuzzer adds the inputs it finds there only, so the
  # seeds are read and never changed.
  cargo "${toolchain[@]}" fuzz run "$target" "$corpus" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=512 -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
  started=$(grep -m1 -o 'INITED cov: [0-9]*' "$log" | grep -o '[0-9]*$' || true)
  ended=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | grep -o '[0-9]*$' || true)
  runs=$(final_stat number_of_executed_units "$log")
  speed=$(final_stat average_exec_per_sec "$log")
  memory=$(final_stat peak_rss_mb "$log")
  inputs=$(find "$corpus" "fuzz/seeds/$target" -type f | wc -l)
  printf 'fuzz: %-16s coverage %s -> %s, %s runs (%s/s), %s inputs, peak %s MB\n' "$target" \
    "${started:-?}" "${ended:-?}" "${runs:-?}" "${speed:-?}" "$inputs" "${memory:-?}"
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    echo "fuzz: $target FAILED (exit status $status); from $log:"
    # The panic message and its stack, or libFuzzer's report of a crash, timeout or OOM.
    grep -m1 -A40 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)" "$log" ||
      tail -n 60 "$log"
    comm -13 <(echo "$before") <(find "$artifacts" -type f | sort) | while read -r input; do
      if [ -n "$input" ]; then
        echo "fuzz: $target input that fails: $input" \
          "(again: cargo ${toolchain[*]} fuzz run $target $input)"
      fi
    done
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds} s each without a failure"
