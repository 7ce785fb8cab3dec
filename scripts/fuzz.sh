#!/usr/bin/env bash
# Runs obol's fuzz targets (fuzz/fuzz_targets) with libFuzzer on the nightly toolchain.
#
#   bash scripts/fuzz.sh [RUNS] [TARGET...]
#
# RUNS: executions per target (default 10000000). Targets: request_path, payment_header,
# offers_file, route_matcher (default: all). Each starts from its committed corpus
# fuzz/corpus/<target> (new finds go to a scratch directory, so the checkout is left as it
# was; FUZZ_KEEP=1 adds them to the committed corpus) and stops on the first crash, printing
# the input that caused it. Prints one summary line per target: executions, seconds, exec/s.
# scripts/test.sh runs it with a small RUNS as a smoke test.
#
# FUZZ_SANITIZER: cargo fuzz's -s (default none). The targets exercise safe Rust, where a
# sanitizer finds little that Rust's own checks miss (bounds always; overflow too, as the
# targets are built with debug assertions, -a), at most of the speed; FUZZ_SANITIZER=address
# runs them under AddressSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-10000000}
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(request_path payment_header offers_file route_matcher)
fi

cargo fuzz --version >/dev/null 2>&1 || {
    echo "cargo fuzz is not installed: run bash scripts/setup-test-env.sh" >&2
    exit 1
}

for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    log=$(mktemp)
    scratch=$(mktemp -d)
    dirs=("$scratch" "fuzz/corpus/$t")
    if [ "${FUZZ_KEEP:-0}" = 1 ]; then
        dirs=("fuzz/corpus/$t")
    fi
    start=$(date +%s)
    if ! cargo +nightly fuzz run -a -s "${FUZZ_SANITIZER:-none}" --fuzz-dir fuzz "$t" "${dirs[@]}" -- \
        -runs="$RUNS" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz target $t FAILED (full log: $log)" >&2
        exit 1
    fi
    secs=$(( $(date +%s) - start ))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    printf 'fuzz %-15s %12s executions  %6ss (incl. build)  %8s exec/s  0 crashes\n' "$t" "$execs" "$secs" "$rate"
    rm -rf "$log" "$scratch"
done
