#!/usr/bin/env bash
# The latency `obol serve buyer` adds on a free (never 402) upstream. One load generator sends
# the same constant rate (default 1,000 req/s for 20 s, after a 3 s warm-up) to the upstream
# directly and, at the same time, through the sidecar (each request stream offset by half a
# period), so both see the same machine; ROUNDS times. Prints the percentiles of each and the
# difference of the medians over the rounds.
#
#   benches/sidecar_overhead.sh                  # RATE=1000 DURATION=20 WARMUP=3 ROUNDS=3
#   RATE=2000 DURATION=10 benches/sidecar_overhead.sh
#   PIN=1 benches/sidecar_overhead.sh            # load generator on CPU 1, the rest on CPU 0
#   SKIP_BUILD=1 ...                             # use the binaries already in target/release
#
# Load: examples/sidecar_load.rs (open loop: every request leaves on its own schedule, latency
# from send to the last byte); upstream: the same example's axum server. Both single-threaded.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-1000}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-0}

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --quiet --bin obol --example sidecar_load
fi
OBOL=target/release/obol
LOAD=target/release/examples/sidecar_load

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# Runs `command...` in place of the calling (sub)shell, on CPU `cpu` when PIN=1. Only called
# in a subshell (`&` or a pipeline), so the PID recorded for cleanup is the program's own.
pin() { # cpu command...
    if [ "$PIN" = 1 ] && command -v taskset >/dev/null; then exec taskset -c "$1" "${@:2}"; fi
    exec "${@:2}"
}

wait_for_line() { # file pattern
    for _ in $(seq 1 200); do
        if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "timed out waiting for '$2' in $1:" >&2
    cat "$1" >&2
    exit 1
}

pin 0 "$LOAD" upstream 127.0.0.1:0 >"$TMP/upstream.out" 2>&1 &
PIDS+=($!)
wait_for_line "$TMP/upstream.out" "listening on"
UPSTREAM=$(sed -n 's/^listening on //p' "$TMP/upstream.out")

mkdir -p "$TMP/config" "$TMP/auths"
cat >"$TMP/config/bench.json" <<EOF
{"url": "http://$UPSTREAM", "remoteModel": "bench-model", "network": "base-sepolia",
 "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
 "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "price": "1000"}
EOF
XDG_CONFIG_HOME="$TMP/xdg" pin 0 "$OBOL" serve buyer --listen 127.0.0.1:0 \
    --config-dir "$TMP/config" --auths-dir "$TMP/auths" --state "$TMP/state.json" \
    --log-format json >"$TMP/sidecar.log" 2>&1 &
PIDS+=($!)
wait_for_line "$TMP/sidecar.log" "listening on"
SIDECAR=$(grep -o 'listening on [0-9.:]*' "$TMP/sidecar.log" | head -1 | sed 's/listening on //')

echo "rate ${RATE}/s each, ${DURATION} s per round (+${WARMUP} s warm-up), ${ROUNDS} rounds; upstream $UPSTREAM, sidecar $SIDECAR"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round"
    (pin 1 "$LOAD" load "http://$UPSTREAM/v1/chat/completions" --model bench-model \
        --also "http://$SIDECAR/v1/chat/completions" --model paid/bench-model \
        --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP") >"$TMP/round.jsonl"
    cat "$TMP/round.jsonl"
    sed -n 1p "$TMP/round.jsonl" >>"$TMP/direct.jsonl"
    sed -n 2p "$TMP/round.jsonl" >>"$TMP/sidecar.jsonl"
done

python3 - "$TMP/direct.jsonl" "$TMP/sidecar.jsonl" <<'EOF'
import json, statistics, sys
direct = [json.loads(l) for l in open(sys.argv[1])]
sidecar = [json.loads(l) for l in open(sys.argv[2])]
for runs in (direct, sidecar):
    for r in runs:
        if r["errors"]:
            sys.exit(f"errors during a run: {r}")
print()
print(f"{'':10} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} {'p99.9 µs':>9} {'max µs':>8}   (median of {len(direct)} rounds)")
def med(runs, k):
    return statistics.median(r[k] for r in runs)
keys = ["p50_us", "p90_us", "p99_us", "p999_us", "max_us"]
for name, runs in (("direct", direct), ("sidecar", sidecar)):
    print(f"{name:10} " + " ".join(f"{med(runs, k):>8.0f}" for k in keys[:3]) + f" {med(runs, 'p999_us'):>9.0f} {med(runs, 'max_us'):>8.0f}")
print(f"{'overhead':10} " + " ".join(f"{med(sidecar, k) - med(direct, k):>8.0f}" for k in keys[:3])
      + f" {med(sidecar, 'p999_us') - med(direct, 'p999_us'):>9.0f}")
EOF
