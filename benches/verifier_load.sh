#!/usr/bin/env bash
# Load benchmark of `obol serve verifier` (issue 3), on loopback, against
#   (a) a bare axum "hello" server (examples/bench_hello.rs): the ceiling;
#   (b) the npm reference seller middleware `@x402/express` (tests/support/rail/seller.mjs);
#   (c) our verifier (release build).
# Load comes from wrk (Debian package, installed by scripts/setup-test-env.sh) in a second
# process. Paid requests go through an instant loopback facilitator (examples/instant_facilitator.rs)
# that (b) and (c) share, and every paid request carries a different payment signed in advance
# (examples/gen_payments.rs), since a payment is accepted once.
#
# Measured:
#   1. unpaid 402 path: requests/s of (a), (b), (c) [proxy path and /verify], and our p99 at
#      half of our peak rate (wrk paced by a Lua delay() per connection);
#   2. paid path: ForwardAuth /verify (--verify-only, and settling before the 200), proxy mode
#      (verify + upstream + settle) with each payment-state store (file, memory, Redis; also at
#      half the in-memory peak, for what each store adds to p99), and (b) (verify + handler +
#      settle);
#   3. 10,000 routes: route match time (examples/route_match.rs), zero failed requests while
#      the offers file is swapped in a loop under load, resident memory under load.
# Prints a table and writes the section "Verifier (issue 3)" of docs/benchmarks.md.
#
# Usage: benches/verifier_load.sh
# Environment: DURATION (s per run, default 8), CONNS (default 64), THREADS (wrk threads,
#   default 2), REPEAT (runs per measurement, the best is kept, default 3), RELOAD_DURATION
#   (default 20), PACE_MS (delay per connection of the half-rate runs, default 1), BUSY_MAX (% CPU used by other processes tolerated before a run, default 15),
#   QUIET_WAIT (s to wait for that, default 120), WRITE_DOCS (1: update docs/benchmarks.md).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RAIL_DIR="$REPO_ROOT/tests/support/rail"
DOCS="$REPO_ROOT/docs/benchmarks.md"
DURATION=${DURATION:-8}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
REPEAT=${REPEAT:-3}
RELOAD_DURATION=${RELOAD_DURATION:-20}
BUSY_MAX=${BUSY_MAX:-15}
QUIET_WAIT=${QUIET_WAIT:-120}
PACE_MS=${PACE_MS:-1}
WRITE_DOCS=${WRITE_DOCS:-1}
ROUTES=10000
PAY_TO=0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC
# base-sepolia USDC: the offer's default asset; the express seller asks for the same.
USDC=0x036CbD53842c5426634e7929541eC2318f3dCF7e

log() { printf '[verifier_load] %s\n' "$*" >&2; }
die() {
    printf '[verifier_load] FAILED: %s\n' "$*" >&2
    exit 1
}

command -v wrk >/dev/null || die "wrk not installed: run scripts/setup-test-env.sh"
command -v node >/dev/null || die "node not installed: run scripts/setup-test-env.sh"
command -v curl >/dev/null || die "curl not installed"
[ -f "$RAIL_DIR/node_modules/@x402/express/package.json" ] ||
    die "@x402/express not installed: run scripts/setup-test-env.sh"

log "building (release): obol, examples bench_hello instant_facilitator gen_payments route_match"
(cd "$REPO_ROOT" && cargo build --release --quiet --bin obol --example bench_hello \
    --example instant_facilitator --example gen_payments --example route_match --example reload_memory) || die "cargo build"
BIN="$REPO_ROOT/target/release"
EX="$BIN/examples"

WORK=$(mktemp -d -t obol-verifier-load-XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_status URL STATUS [curl args]: until GET URL answers STATUS (30 s).
wait_status() {
    local url=$1 want=$2 got i
    shift 2
    for i in $(seq 300); do
        got=$(curl -s -o /dev/null -w '%{http_code}' "$@" "$url" || true)
        [ "$got" = "$want" ] && return 0
        sleep 0.1
    done
    die "GET $url answered ${got:-nothing}, expected $want"
}

# Percentage of CPU time used by all processes over one second (our servers are idle then).
busy_pct() {
    local a b
    a=($(head -n1 /proc/stat))
    sleep 1
    b=($(head -n1 /proc/stat))
    awk -v u1="${a[1]}" -v n1="${a[2]}" -v s1="${a[3]}" -v i1="${a[4]}" -v w1="${a[5]}" \
        -v q1="${a[6]}" -v r1="${a[7]}" -v t1="${a[8]}" \
        -v u2="${b[1]}" -v n2="${b[2]}" -v s2="${b[3]}" -v i2="${b[4]}" -v w2="${b[5]}" \
        -v q2="${b[6]}" -v r2="${b[7]}" -v t2="${b[8]}" 'BEGIN {
        busy = (u2-u1)+(n2-n1)+(s2-s1)+(q2-q1)+(r2-r1)+(t2-t1); idle = (i2-i1)+(w2-w1);
        printf "%.0f", ((busy + idle) > 0 ? 100 * busy / (busy + idle) : 0) }'
}

# Waits (up to QUIET_WAIT s) until other processes use at most BUSY_MAX % CPU; sets BG.
wait_quiet() {
    local waited=0
    BG=$(busy_pct)
    while [ "$BG" -gt "$BUSY_MAX" ] && [ "$waited" -lt "$QUIET_WAIT" ]; do
        sleep 4
        waited=$((waited + 5))
        BG=$(busy_pct)
    done
    [ "$BG" -le "$BUSY_MAX" ] || log "machine still busy (${BG}% CPU used by others): measuring anyway"
}

# --- Lua scripts --------------------------------------------------------------------------------

cat >"$WORK/summary.lua" <<'EOF'
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

# Paced: each connection waits WRK_DELAY_MS after each answer (rate = conns / (delay + latency)).
{
    echo 'local d = tonumber(os.getenv("WRK_DELAY_MS"))'
    echo 'function delay() return d end'
    cat "$WORK/summary.lua"
} >"$WORK/paced.lua"

# Paid: thread k of WRK_THREADS sends lines k, k+n, ... of WRK_PAYMENTS as PAYMENT-SIGNATURE (plus
# the headers in WRK_HEADERS, "A: x|B: y"; each connection waits WRK_DELAY_MS after every answer
# when it is set and not 0). A thread whose share is used up stops; its last
# requests in flight go to WRK_SPARE_PATH (free) so that no payment is ever sent twice.
cat >"$WORK/paid.lua" <<'EOF'
local pace = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if pace > 0 then function delay() return pace end end
local threads, counter = {}, 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
local reqs, i, spare = {}, 0, nil
exhausted = 0
function init(args)
  local nthreads = tonumber(os.getenv("WRK_THREADS"))
  local path = os.getenv("WRK_PATH")
  local extra = {}
  for h in string.gmatch(os.getenv("WRK_HEADERS") or "", "[^|]+") do
    local k, v = h:match("^%s*([^:]+):%s*(.*)$")
    if k then extra[k] = v end
  end
  local n = 0
  for line in io.lines(os.getenv("WRK_PAYMENTS")) do
    if n % nthreads == tid then
      local headers = {}
      for k, v in pairs(extra) do headers[k] = v end
      headers["PAYMENT-SIGNATURE"] = line
      reqs[#reqs + 1] = wrk.format("GET", path, headers)
    end
    n = n + 1
  end
  spare = wrk.format("GET", os.getenv("WRK_SPARE_PATH"))
end
function request()
  i = i + 1
  if i > #reqs then
    exhausted = exhausted + 1
    wrk.thread:stop()
    return spare
  end
  return reqs[i]
end
function done(summary, latency, requests)
  local spare_sent = 0
  for _, t in ipairs(threads) do spare_sent = spare_sent + t:get("exhausted") end
  io.write(string.format("SPARE %d\n", spare_sent))
EOF
sed -n '/^  local e = summary.errors/,$p' "$WORK/summary.lua" >>"$WORK/paid.lua"

# Reload test: cycles over three offers of the 10,000 and counts every answer that is not 402.
cat >"$WORK/reload.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
local reqs, i = {}, 0
unexpected = 0
function init(args)
  for _, p in ipairs({"/services/offer-0/v1/x", "/services/offer-5000/v1/x", "/services/offer-9999/v1/x"}) do
    reqs[#reqs + 1] = wrk.format("GET", p)
  end
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function response(status, headers, body)
  if status ~= 402 then unexpected = unexpected + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("unexpected") end
  io.write(string.format("UNEXPECTED %d\n", bad))
EOF
sed -n '/^  local e = summary.errors/,$p' "$WORK/summary.lua" >>"$WORK/reload.lua"

# --- measurement helpers ------------------------------------------------------------------------

declare -A RPS P50 P99 MAXL ERRS BGS NOTE REQS

# field LINE NAME: the value of NAME=... in a RESULT line.
field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<" $1"; }

# record NAME RESULT_LINE: keeps the run with the highest rate.
record() {
    local name=$1 line=$2 rps
    rps=$(field "$line" rps)
    if [ -z "${RPS[$name]:-}" ] || awk -v a="$rps" -v b="${RPS[$name]}" 'BEGIN{exit !(a>b)}'; then
        RPS[$name]=$rps
        P50[$name]=$(field "$line" p50_us)
        P99[$name]=$(field "$line" p99_us)
        MAXL[$name]=$(field "$line" max_us)
        REQS[$name]=$(field "$line" requests)
        ERRS[$name]="connect=$(field "$line" connect) read=$(field "$line" read) write=$(field "$line" write) timeout=$(field "$line" timeout) status>399=$(field "$line" status)"
        BGS[$name]=$BG
    fi
}

# measure NAME [wrk args...]: REPEAT runs of wrk with the summary script, best kept.
measure() {
    local name=$1 out line r
    shift
    for r in $(seq "$REPEAT"); do
        wait_quiet
        out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$WORK/summary.lua" "$@")
        line=$(grep '^RESULT' <<<"$out") || die "$name: no result from wrk: $out"
        log "$name run $r: $(field "$line" rps) req/s, p99 $(field "$line" p99_us) us (others ${BG}% CPU)"
        record "$name" "$line"
    done
}

# paid_run CONNS SECS DELAY_MS URL PATH SPARE_PATH COUNT [HEADER...]: one wrk run of COUNT fresh
# payments (DELAY_MS > 0: each connection waits that long after every answer); sets PAID_LINE
# and PAID_SPARE (requests that found the payments used up).
paid_run() {
    local conns=$1 secs=$2 delay=$3 url=$4 path=$5 spare=$6 count=$7 out headers="" h
    shift 7
    for h in "$@"; do headers="${headers:+$headers|}$h"; done
    "$EX/gen_payments" "$url" "$count" "$WORK/payments.txt" "$@" 2>>"$WORK/gen.log" ||
        die "gen_payments for $url"
    wait_quiet
    out=$(WRK_THREADS=$THREADS WRK_PATH=$path WRK_SPARE_PATH=$spare WRK_HEADERS=$headers \
        WRK_PAYMENTS="$WORK/payments.txt" WRK_DELAY_MS=$delay \
        wrk -t"$THREADS" -c"$conns" -d"${secs}s" -s "$WORK/paid.lua" "$url")
    rm -f "$WORK/payments.txt"
    PAID_LINE=$(grep '^RESULT' <<<"$out") || die "$path: no result from wrk: $out"
    PAID_SPARE=$(sed -n 's/^SPARE \([0-9]*\)/\1/p' <<<"$out")
    [ "$(field "$PAID_LINE" status)" = 0 ] || die "$url: $(field "$PAID_LINE" status) paid requests were refused ($PAID_LINE)"
}

# measure_paid NAME URL PATH SPARE_PATH COUNT [HEADER...]: fresh payments for each run.
measure_paid() {
    local name=$1 url=$2 path=$3 spare=$4 count=$5 r
    shift 5
    for r in $(seq "$REPEAT"); do
        paid_run "$CONNS" "$DURATION" 0 "$url" "$path" "$spare" "$count" "$@"
        log "$name run $r: $(field "$PAID_LINE" rps) req/s, p99 $(field "$PAID_LINE" p99_us) us, payments used up early: $([ "$PAID_SPARE" = 0 ] && echo no || echo "yes ($PAID_SPARE)") (others ${BG}% CPU)"
        record "$name" "$PAID_LINE"
        # Enough payments for the next run: 1.5x what this one could use.
        count=$(awk -v r="$(field "$PAID_LINE" rps)" -v d="$DURATION" -v c="$count" \
            'BEGIN { n = int(r * d * 1.5); print (n > c ? n : c) }')
    done
}

# measure_paid_paced NAME RATE URL PATH SPARE_PATH [HEADER...]: p99 of paid requests at RATE
# req/s, paced as measure_paced does (calibration runs of 3 s, then REPEAT runs; the median run
# by p99 is kept).
measure_paid_paced() {
    local name=$1 rate=$2 url=$3 path=$4 spare=$5 conns achieved cal r
    shift 5
    local count
    count=$(awk -v r="$rate" -v d="$DURATION" 'BEGIN { print int(r * d * 1.5) + 1000 }')
    conns=$(awk -v r="$rate" -v d="$PACE_MS" 'BEGIN { c = int(r * (d + 1) / 1000 + 0.5); print (c < 1 ? 1 : c) }')
    for cal in 1 2 3; do
        paid_run "$conns" 3 "$PACE_MS" "$url" "$path" "$spare" "$count" "$@"
        recalibrate "$conns" "$rate" "$(field "$PAID_LINE" rps)" || break
    done
    local p99s=() lines=() bgs=()
    for r in $(seq "$REPEAT"); do
        paid_run "$conns" "$DURATION" "$PACE_MS" "$url" "$path" "$spare" "$count" "$@"
        [ "$PAID_SPARE" = 0 ] || die "$name: the payments ran out at $(field "$PAID_LINE" rps) req/s"
        log "$name run $r: $conns connections, $(field "$PAID_LINE" rps) req/s (target $rate), p99 $(field "$PAID_LINE" p99_us) us (others ${BG}% CPU)"
        lines+=("$PAID_LINE")
        p99s+=("$(field "$PAID_LINE" p99_us)")
        bgs+=("$BG")
    done
    keep_median "$name" "$conns connections, target $rate req/s, the median p99 of $REPEAT runs"
}

# keep_median NAME NOTE: records the run of lines/p99s/bgs (the caller's) with the median p99.
keep_median() {
    local name=$1 median line
    median=$(for i in "${!p99s[@]}"; do echo "${p99s[$i]} $i"; done |
        sort -n | awk -v n="${#p99s[@]}" 'NR == int((n + 1) / 2) { print $2 }')
    line=${lines[$median]}
    RPS[$name]=$(field "$line" rps)
    P50[$name]=$(field "$line" p50_us)
    P99[$name]=$(field "$line" p99_us)
    MAXL[$name]=$(field "$line" max_us)
    REQS[$name]=$(field "$line" requests)
    BGS[$name]=${bgs[$median]}
    NOTE[$name]=$2
}

# recalibrate CONNS RATE ACHIEVED: sets conns to the connection count that should reach RATE;
# fails (keep CONNS) when ACHIEVED is within 3% of RATE.
recalibrate() {
    awk -v a="$3" -v r="$2" 'BEGIN { exit !(a > 0.97 * r && a < 1.03 * r) }' && return 1
    conns=$(awk -v c="$1" -v r="$2" -v a="$3" 'BEGIN { n = int(c * r / a + 0.5); print (n < 1 ? 1 : n) }')
}

# measure_paced NAME RATE [wrk args...]: p99 at RATE req/s. Each connection waits PACE_MS after
# every answer, so the connection count sets the rate; up to three 3 s calibration runs correct
# it, then REPEAT runs; the median run by p99 is kept.
measure_paced() {
    local name=$1 rate=$2 out line conns r achieved
    shift 2
    conns=$(awk -v r="$rate" -v d="$PACE_MS" 'BEGIN { c = int(r * (d + 0.2) / 1000 + 0.5); print (c < 1 ? 1 : c) }')
    local cal
    for cal in 1 2 3; do
        out=$(WRK_DELAY_MS=$PACE_MS wrk -t"$THREADS" -c"$conns" -d3s -s "$WORK/paced.lua" "$@")
        line=$(grep '^RESULT' <<<"$out") || die "$name: no result from wrk: $out"
        recalibrate "$conns" "$rate" "$(field "$line" rps)" || break
    done
    local p99s=() lines=() bgs=()
    for r in $(seq "$REPEAT"); do
        wait_quiet
        out=$(WRK_DELAY_MS=$PACE_MS wrk -t"$THREADS" -c"$conns" -d"${DURATION}s" -s "$WORK/paced.lua" "$@")
        line=$(grep '^RESULT' <<<"$out") || die "$name: no result from wrk: $out"
        achieved=$(field "$line" rps)
        log "$name run $r: $conns connections, $achieved req/s (target $rate), p99 $(field "$line" p99_us) us (others ${BG}% CPU)"
        lines+=("$line")
        p99s+=("$(field "$line" p99_us)")
        bgs+=("$BG")
    done
    keep_median "$name" "$conns connections, target $rate req/s, the median p99 of $REPEAT runs"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

RUSTC_VERSION=$(rustc --version | cut -d' ' -f1-2)
WRK_VERSION=$( (wrk --version 2>&1 || true) | head -n1 | cut -d' ' -f1-2)
NODE_VERSION=$(node --version)

# --- start the servers --------------------------------------------------------------------------

export HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/config" XDG_STATE_HOME="$WORK/home/state"
mkdir -p "$XDG_CONFIG_HOME"
echo 'networks: []' >"$WORK/networks.yaml"
export OBOL_NETWORKS="$WORK/networks.yaml"
unset OBOL_OFFERS_FILE OBOL_FACILITATOR_URL OBOL_LISTEN OBOL_VERIFIER_MODE RUST_LOG || true

FAC_PORT=$(free_port)
"$EX/instant_facilitator" "127.0.0.1:$FAC_PORT" >"$WORK/facilitator.log" 2>&1 &
PIDS+=($!)
FAC="http://127.0.0.1:$FAC_PORT"
wait_status "$FAC/supported" 200

HELLO_PORT=$(free_port)
"$EX/bench_hello" "127.0.0.1:$HELLO_PORT" >"$WORK/hello.log" 2>&1 &
HELLO_PID=$!
PIDS+=($HELLO_PID)
HELLO="http://127.0.0.1:$HELLO_PORT"
wait_status "$HELLO/" 200

EXPRESS_PORT=$(free_port)
(cd "$RAIL_DIR" && exec env NODE_ENV=production FACILITATOR_URL="$FAC" PAY_TO="$PAY_TO" \
    TOKEN_ADDRESS="$USDC" PRICE_ATOMIC=10000 TOKEN_NAME=USDC NETWORK=eip155:84532 \
    PORT="$EXPRESS_PORT" node seller.mjs) >"$WORK/express.log" 2>&1 &
PIDS+=($!)
EXPRESS="http://127.0.0.1:$EXPRESS_PORT"
wait_status "$EXPRESS/free" 200
wait_status "$EXPRESS/paid" 402

cat >"$WORK/offers.yaml" <<EOF
wallet: "$PAY_TO"
chain: base-sepolia
routes:
  - pattern: /services/bench/*
    price: '0.01'
    offerNamespace: local
    offerName: bench
    upstreamURL: $HELLO
    stripPrefix: /services/bench
EOF

start_verifier() { # NAME OFFERS [args...]: sets VPORT, VPID. Its own state file unless --state.
    local name=$1 offers=$2
    shift 2
    local state=(--state "$WORK/$name.redb")
    case " $* " in *" --state "*) state=() ;; esac
    VPORT=$(free_port)
    "$BIN/obol" serve verifier --listen "127.0.0.1:$VPORT" --offers-file "$offers" \
        --facilitator "$FAC" "${state[@]}" "$@" >"$WORK/$name.log" 2>&1 &
    VPID=$!
    PIDS+=($VPID)
    wait_status "http://127.0.0.1:$VPORT/readyz" 200
}

# --verify-only changes only ForwardAuth (proxy mode always settles): this one's /verify grants
# after the facilitator's /verify; the second one's settles before the 200 (the default).
start_verifier verifier "$WORK/offers.yaml" --mode both --verify-only
OURS="http://127.0.0.1:$VPORT"
start_verifier verifier-sbg "$WORK/offers.yaml" --mode forward-auth
OURS_SBG="http://127.0.0.1:$VPORT"
# The paid proxy with the other payment-state stores: in memory, and a local redis-server.
start_verifier verifier-mem "$WORK/offers.yaml" --mode proxy --state memory
OURS_MEM="http://127.0.0.1:$VPORT"
command -v redis-server >/dev/null || die "redis-server not installed: run scripts/setup-test-env.sh"
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
start_verifier verifier-redis "$WORK/offers.yaml" --mode proxy --state "redis://127.0.0.1:$REDIS_PORT/0"
OURS_REDIS="http://127.0.0.1:$VPORT"

FWD=(-H 'X-Forwarded-Uri: /services/bench/v1/data' -H 'X-Forwarded-Host: seller.example' -H 'X-Forwarded-Proto: https')
wait_status "$OURS/services/bench/v1/data" 402
wait_status "$OURS/verify" 402 "${FWD[@]}"

# Warm-up (Node's JIT, connection pools), not measured.
for url in "$HELLO/" "$EXPRESS/paid" "$OURS/services/bench/v1/data"; do
    wrk -t"$THREADS" -c"$CONNS" -d2s "$url" >/dev/null
done

# --- 1. unpaid 402 path -------------------------------------------------------------------------

log "1. unpaid: $REPEAT x ${DURATION}s per server, wrk -t$THREADS -c$CONNS, best run kept"
measure hello "$HELLO/"
measure express_402 "$EXPRESS/paid"
measure ours_402_proxy "$OURS/services/bench/v1/data"
measure ours_402_fa "${FWD[@]}" "$OURS/verify"

# The whole of a 402 run was 402s (wrk counts them as status errors).
for n in express_402 ours_402_proxy ours_402_fa; do
    case "${ERRS[$n]}" in
    *"status>399=${REQS[$n]}") ;;
    *) die "$n: not every answer was a 402 (${ERRS[$n]}, ${REQS[$n]} requests)" ;;
    esac
done

HALF_PROXY=$(awk -v r="${RPS[ours_402_proxy]}" 'BEGIN { printf "%d", r / 2 }')
HALF_FA=$(awk -v r="${RPS[ours_402_fa]}" 'BEGIN { printf "%d", r / 2 }')
measure_paced ours_402_proxy_half "$HALF_PROXY" "$OURS/services/bench/v1/data"
measure_paced ours_402_fa_half "$HALF_FA" "${FWD[@]}" "$OURS/verify"

# --- 2. paid path -------------------------------------------------------------------------------

log "2. paid: a different pre-signed payment per request, instant facilitator"
FWD_HEADERS=('X-Forwarded-Uri: /services/bench/v1/data' 'X-Forwarded-Host: seller.example' 'X-Forwarded-Proto: https')
measure_paid ours_paid_fa "$OURS/verify" /verify /healthz 100000 "${FWD_HEADERS[@]}"
measure_paid ours_paid_fa_sbg "$OURS_SBG/verify" /verify /healthz 60000 "${FWD_HEADERS[@]}"
measure_paid ours_paid_proxy "$OURS/services/bench/v1/data" /services/bench/v1/data /healthz 60000
measure_paid ours_paid_proxy_mem "$OURS_MEM/services/bench/v1/data" /services/bench/v1/data /healthz 60000
measure_paid ours_paid_proxy_redis "$OURS_REDIS/services/bench/v1/data" /services/bench/v1/data /healthz 60000
# The stores at the same rate, half of the in-memory store's peak: what each adds to p99.
PAID_HALF=$(awk -v r="${RPS[ours_paid_proxy_mem]}" 'BEGIN { print int(r / 2) }')
measure_paid_paced ours_paid_proxy_mem_half "$PAID_HALF" "$OURS_MEM/services/bench/v1/data" /services/bench/v1/data /healthz
measure_paid_paced ours_paid_proxy_half "$PAID_HALF" "$OURS/services/bench/v1/data" /services/bench/v1/data /healthz
measure_paid_paced ours_paid_proxy_redis_half "$PAID_HALF" "$OURS_REDIS/services/bench/v1/data" /services/bench/v1/data /healthz
measure_paid express_paid "$EXPRESS/paid" /paid /free 10000

# --- 3. 10,000 routes ---------------------------------------------------------------------------

log "3. $ROUTES routes"
MATCH_OUT=$("$EX/route_match" "$ROUTES")
printf '%s\n' "$MATCH_OUT" >&2
MATCH_WORST_NS=$(sed -n 's/^match_worst_ns=//p' <<<"$MATCH_OUT")
RESOLVE_MS=$(sed -n 's/.* resolve_ms=\([0-9.]*\).*/\1/p' <<<"$MATCH_OUT")
PARSE_MS=$(sed -n 's/.* parse_ms=\([0-9.]*\).*/\1/p' <<<"$MATCH_OUT")
# The heap of a reload, counted by a wrapping allocator (examples/reload_memory.rs).
HEAP_OUT=$("$EX/reload_memory" "$ROUTES")
printf '%s\n' "$HEAP_OUT" >&2
HEAP_TABLE=$(sed -n 's/.* table_mib=\([0-9.]*\).*/\1/p' <<<"$HEAP_OUT")
HEAP_PEAK=$(sed -n 's/.* reload_peak_mib=\([0-9.]*\).*/\1/p' <<<"$HEAP_OUT")

# Two offers files of 10,000 offers that differ in every price, as `obol sell create` writes them.
gen_offers() { # PRICE
    awk -v price="$1" -v pay_to="$PAY_TO" -v up="$HELLO" -v n="$ROUTES" 'BEGIN {
        printf "wallet: \"%s\"\nchain: base-sepolia\nroutes:\n", pay_to
        for (i = 0; i < n; i++)
            printf "  - pattern: /services/offer-%d/*\n    price: \x27%s\x27\n    offerNamespace: local\n    offerName: offer-%d\n    upstreamURL: %s\n    stripPrefix: /services/offer-%d\n", i, price, i, up, i
    }'
}
gen_offers 0.01 >"$WORK/offers-a.yaml"
gen_offers 0.02 >"$WORK/offers-b.yaml"
cp "$WORK/offers-a.yaml" "$WORK/offers10k.yaml"
start_verifier verifier10k "$WORK/offers10k.yaml" --mode both --reload-interval 100ms
BIG="http://127.0.0.1:$VPORT"
BIG_PID=$VPID
RSS_IDLE=$(rss_kib "$BIG_PID")

# rss_sampler FILE: writes the max VmRSS (KiB) of the 10k verifier to FILE every 100 ms.
rss_sampler() {
    local max=0 r
    while :; do
        r=$(rss_kib "$BIG_PID" 2>/dev/null || echo 0)
        if [ "${r:-0}" -gt "$max" ]; then
            max=$r
            echo "$max" >"$1"
        fi
        sleep 0.1
    done
}

# a) Steady load, no reload: the resident memory of the daemon at work.
wait_quiet
BG_STEADY=$BG
rss_sampler "$WORK/rss_steady" &
SAMPLER=$!
PIDS+=($SAMPLER)
STEADY_OUT=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$WORK/reload.lua" "$BIG/")
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
STEADY_LINE=$(grep '^RESULT' <<<"$STEADY_OUT") || die "steady run: no result: $STEADY_OUT"
RSS_STEADY=$(cat "$WORK/rss_steady")

# b) The same load while the file is swapped (atomic rename, as `obol sell` writes it) every
#    300 ms between two versions that differ in every price: every swap is a full reload.
wait_quiet
BG_RELOAD=$BG
RELOADS_BEFORE=$(grep -c 'offers reloaded' "$WORK/verifier10k.log" || true)
(
    i=0
    while :; do
        if [ $((i % 2)) -eq 0 ]; then src=offers-b.yaml; else src=offers-a.yaml; fi
        cp "$WORK/$src" "$WORK/offers10k.yaml.tmp" && mv -f "$WORK/offers10k.yaml.tmp" "$WORK/offers10k.yaml"
        i=$((i + 1))
        echo "$i" >"$WORK/swaps"
        sleep 0.3
    done
) &
SWAPPER=$!
PIDS+=($SWAPPER)
rss_sampler "$WORK/rss_reload" &
SAMPLER=$!
PIDS+=($SAMPLER)
RELOAD_OUT=$(wrk -t"$THREADS" -c"$CONNS" -d"${RELOAD_DURATION}s" -s "$WORK/reload.lua" "$BIG/")
kill "$SWAPPER" "$SAMPLER" 2>/dev/null || true
wait "$SWAPPER" "$SAMPLER" 2>/dev/null || true
sleep 1
RELOAD_LINE=$(grep '^RESULT' <<<"$RELOAD_OUT") || die "reload run: no result: $RELOAD_OUT"
UNEXPECTED=$(sed -n 's/^UNEXPECTED \([0-9]*\)/\1/p' <<<"$RELOAD_OUT")
UNEXPECTED_STEADY=$(sed -n 's/^UNEXPECTED \([0-9]*\)/\1/p' <<<"$STEADY_OUT")
RELOADS=$(($(grep -c 'offers reloaded' "$WORK/verifier10k.log" || true) - RELOADS_BEFORE))
SWAPS=$(cat "$WORK/swaps")
RSS_MAX=$(cat "$WORK/rss_reload" 2>/dev/null || echo 0)
RSS_AFTER=$(rss_kib "$BIG_PID")
HWM=$(hwm_kib "$BIG_PID")
RELOAD_SOCKET_ERRORS=$(($(field "$RELOAD_LINE" connect) + $(field "$RELOAD_LINE" read) + $(field "$RELOAD_LINE" write) + $(field "$RELOAD_LINE" timeout)))
log "steady run: $(field "$STEADY_LINE" requests) requests, $UNEXPECTED_STEADY not 402, RSS max $RSS_STEADY KiB"
log "reload run: $(field "$RELOAD_LINE" requests) requests, $UNEXPECTED not 402, $RELOAD_SOCKET_ERRORS socket errors, $RELOADS reloads ($SWAPS swaps), RSS max $RSS_MAX KiB, after $RSS_AFTER KiB"

# --- report -------------------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
signed_ms() { awk -v u="$1" 'BEGIN { printf "%+.2f ms", u / 1000 }'; }
krps() { awk -v r="$1" 'BEGIN { printf "%.0f", r }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
ok() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "**missed**"; fi; }

H=${RPS[hello]}
E=${RPS[express_402]}
OP=${RPS[ours_402_proxy]}
OF=${RPS[ours_402_fa]}
EP=${RPS[express_paid]}

row() { # NAME LABEL
    printf '| %s | %s | %s | %s | %s | %s%% |\n' "$2" "$(krps "${RPS[$1]}")" "$(ms "${P50[$1]}")" \
        "$(ms "${P99[$1]}")" "$(ms "${MAXL[$1]}")" "${BGS[$1]}"
}

SECTION="$WORK/section.md"
{
    echo "## Verifier (issue 3)"
    echo
    echo "\`obol serve verifier\` under load on loopback, against a bare axum \"hello\" server (the ceiling)"
    echo "and the npm reference seller middleware \`@x402/express\` 2.27.0 (the peer), same machine, same run."
    echo "Load from \`wrk\` in a second process: $THREADS threads, $CONNS keep-alive connections, ${DURATION} s per run,"
    echo "best of $REPEAT runs (the run with the highest rate; its latencies are shown). Nothing is pinned to a"
    echo "core: the server, the facilitator and wrk share the 2 cores. \"others\" is the CPU used by other"
    echo "processes in the second before the run (the script waits up to ${QUIET_WAIT} s for it to fall under ${BUSY_MAX}%)."
    echo
    echo "### Unpaid requests (402)"
    echo
    echo "| server | req/s | p50 | p99 | max | others |"
    echo "|---|---|---|---|---|---|"
    row hello "(a) axum hello (200 \`hello\`)"
    row express_402 "(b) \`@x402/express\` \`GET /paid\` → 402"
    row ours_402_proxy "(c) obol proxy \`GET /services/bench/v1/data\` → 402"
    row ours_402_fa "(c) obol ForwardAuth \`/verify\` (\`X-Forwarded-Uri\`) → 402"
    row ours_402_proxy_half "(c) obol proxy at half its peak rate (paced)"
    row ours_402_fa_half "(c) obol \`/verify\` at half its peak rate (paced)"
    echo
    echo "| target | result | |"
    echo "|---|---|---|"
    echo "| 402 throughput ≥ 60% of (a) | proxy $(pct "$OP" "$H"), \`/verify\` $(pct "$OF" "$H") | $(ok "$OP >= 0.6 * $H && $OF >= 0.6 * $H") |"
    echo "| 402 throughput ≥ 5× (b) | proxy $(ratio "$OP" "$E")×, \`/verify\` $(ratio "$OF" "$E")× | $(ok "$OP >= 5 * $E && $OF >= 5 * $E") |"
    echo "| p99 ≤ 2 ms at half our peak rate | proxy $(ms "${P99[ours_402_proxy_half]}") at $(krps "${RPS[ours_402_proxy_half]}") req/s, \`/verify\` $(ms "${P99[ours_402_fa_half]}") at $(krps "${RPS[ours_402_fa_half]}") req/s | $(ok "${P99[ours_402_proxy_half]} <= 2000 && ${P99[ours_402_fa_half]} <= 2000") |"
    echo
    echo "Half-rate runs: plain wrk cannot set a rate, so a Lua \`delay()\` makes each connection wait ${PACE_MS} ms"
    echo "after every answer and the connection count sets the rate (${NOTE[ours_402_proxy_half]}; \`/verify\`: ${NOTE[ours_402_fa_half]})."
    echo "Every answer of the 402 runs was checked to be an error status (wrk counts them), and the endpoints"
    echo "answer 402 before the runs."
    echo
    echo "### Paid requests"
    echo
    echo "Every request carries a different valid payment (the replay guard refuses a repeat): EIP-3009"
    echo "authorizations signed in advance by \`examples/gen_payments.rs\` for the requirement each server's own"
    echo "402 names, sent by a wrk Lua script that never sends one twice. The facilitator"
    echo "(\`examples/instant_facilitator.rs\`) answers \`/verify\` and \`/settle\` at once; (b) and (c) use the same one."
    echo "Every paid request was answered 2xx."
    echo
    echo "| server | facilitator calls | req/s | p50 | p99 | max | others |"
    echo "|---|---|---|---|---|---|---|"
    printf '| %s | %s | %s | %s | %s | %s | %s%% |\n' "(c) obol ForwardAuth \`/verify --verify-only\` (access without payment)" "verify" "$(krps "${RPS[ours_paid_fa]}")" "$(ms "${P50[ours_paid_fa]}")" "$(ms "${P99[ours_paid_fa]}")" "$(ms "${MAXL[ours_paid_fa]}")" "${BGS[ours_paid_fa]}"
    printf '| %s | %s | %s | %s | %s | %s | %s%% |\n' "(c) obol ForwardAuth \`/verify\` (settles before the 200, the default)" "verify + settle" "$(krps "${RPS[ours_paid_fa_sbg]}")" "$(ms "${P50[ours_paid_fa_sbg]}")" "$(ms "${P99[ours_paid_fa_sbg]}")" "$(ms "${MAXL[ours_paid_fa_sbg]}")" "${BGS[ours_paid_fa_sbg]}"
    printf '| %s | %s | %s | %s | %s | %s | %s%% |\n' "(c) obol proxy (upstream = the hello server), payment state in a file (the default)" "verify + settle" "$(krps "${RPS[ours_paid_proxy]}")" "$(ms "${P50[ours_paid_proxy]}")" "$(ms "${P99[ours_paid_proxy]}")" "$(ms "${MAXL[ours_paid_proxy]}")" "${BGS[ours_paid_proxy]}"
    printf '| %s | %s | %s | %s | %s | %s | %s%% |\n' "(c) obol proxy, \`--state memory\`" "verify + settle" "$(krps "${RPS[ours_paid_proxy_mem]}")" "$(ms "${P50[ours_paid_proxy_mem]}")" "$(ms "${P99[ours_paid_proxy_mem]}")" "$(ms "${MAXL[ours_paid_proxy_mem]}")" "${BGS[ours_paid_proxy_mem]}"
    printf '| %s | %s | %s | %s | %s | %s | %s%% |\n' "(c) obol proxy, \`--state redis://\` (local redis-server)" "verify + settle" "$(krps "${RPS[ours_paid_proxy_redis]}")" "$(ms "${P50[ours_paid_proxy_redis]}")" "$(ms "${P99[ours_paid_proxy_redis]}")" "$(ms "${MAXL[ours_paid_proxy_redis]}")" "${BGS[ours_paid_proxy_redis]}"
    printf '| %s | %s | %s | %s | %s | %s | %s%% |\n' "(b) \`@x402/express\` \`GET /paid\`" "verify + settle" "$(krps "$EP")" "$(ms "${P50[express_paid]}")" "$(ms "${P99[express_paid]}")" "$(ms "${MAXL[express_paid]}")" "${BGS[express_paid]}"
    echo
    echo "| target | result | |"
    echo "|---|---|---|"
    echo "| paid ForwardAuth throughput ≥ 3× (b) | $(ratio "${RPS[ours_paid_fa]}" "$EP")× (settling before the 200: $(ratio "${RPS[ours_paid_fa_sbg]}" "$EP")×; proxy: $(ratio "${RPS[ours_paid_proxy]}" "$EP")×) | $(ok "${RPS[ours_paid_fa]} >= 3 * $EP") |"
    echo "| p99 beside both | ours $(ms "${P99[ours_paid_fa]}"), (b) $(ms "${P99[express_paid]}") | reported |"
    FILE_ADDS=$(( ${P99[ours_paid_proxy_half]} - ${P99[ours_paid_proxy_mem_half]} ))
    REDIS_ADDS=$(( ${P99[ours_paid_proxy_redis_half]} - ${P99[ours_paid_proxy_mem_half]} ))
    echo "| paid proxy p99 at half the in-memory peak ($(krps "$PAID_HALF") req/s): file / Redis store against memory | $(ms "${P99[ours_paid_proxy_half]}") / $(ms "${P99[ours_paid_proxy_redis_half]}") against $(ms "${P99[ours_paid_proxy_mem_half]}"): $(signed_ms "$FILE_ADDS") / $(signed_ms "$REDIS_ADDS") | $(ok "$FILE_ADDS <= 1000 && $REDIS_ADDS <= 1000") (≤ 1 ms each) |"
    echo "| paid proxy p99 at full load: file / Redis store against memory | $(signed_ms "$(( ${P99[ours_paid_proxy]} - ${P99[ours_paid_proxy_mem]} ))") / $(signed_ms "$(( ${P99[ours_paid_proxy_redis]} - ${P99[ours_paid_proxy_mem]} ))") | reported |"
    echo
    echo "Half-rate paid runs: ${NOTE[ours_paid_proxy_mem_half]} (memory); ${NOTE[ours_paid_proxy_half]} (file); ${NOTE[ours_paid_proxy_redis_half]} (Redis)."
    echo "The file store commits what is queued together (one fsync for many payments), and every payment's"
    echo "change is on disk before its answer."
    echo
    echo "wrk errors of the paid runs: ours \`/verify\` ${ERRS[ours_paid_fa]}; (b) ${ERRS[express_paid]}."
    echo
    echo "### $ROUTES routes"
    echo
    echo "| measurement | result | target | |"
    echo "|---|---|---|---|"
    echo "| route match (\`Matcher::find\`, worst of first/middle/last offer, glob, exact, miss) | $MATCH_WORST_NS ns | ≤ 2 µs | $(ok "$MATCH_WORST_NS <= 2000") |"
    echo "| requests that were not 402 while the file was swapped $SWAPS times ($RELOADS reloads) under load | $UNEXPECTED of $(field "$RELOAD_LINE" requests) (socket errors: $RELOAD_SOCKET_ERRORS) | 0 | $(ok "$UNEXPECTED == 0 && $RELOAD_SOCKET_ERRORS == 0") |"
    echo "| resident memory (VmRSS, max sampled every 100 ms) under load, routes loaded | $(mib "$RSS_STEADY") ($(krps "$(field "$STEADY_LINE" rps)") req/s) | ≤ 40 MiB | $(ok "$RSS_STEADY <= 40960") |"
    echo "| resident memory under load while reloading every 300 ms (peak during a reload) | $(mib "$RSS_MAX") | ≤ 40 MiB | $(ok "$RSS_MAX <= 40960") |"
    echo "| VmRSS idle after the first load / after the reload run (VmHWM) | $(mib "$RSS_IDLE") / $(mib "$RSS_AFTER") ($(mib "$HWM")) | | |"
    echo "| heap of the loaded table / peak heap during a full reload (counted by \`examples/reload_memory.rs\`) | ${HEAP_TABLE} MiB / ${HEAP_PEAK} MiB | | |"
    echo
    echo "The sampled peak can miss the top of a reload: VmHWM, the kernel's own high-water mark, is the"
    echo "exact maximum of the whole run (it includes the start and the first load)."
    echo
    echo "Others used ${BG_STEADY}% / ${BG_RELOAD}% CPU before the steady / reload runs. A reload holds, for a moment, the old and the"
    echo "new route table. What keeps that moment small: the offers file is parsed by \`serde-saphyr\` straight from"
    echo "the parser's events (\`serde_yaml_ng\` first loaded every event of the document, 32 MB for this file), the"
    echo "parsed rules are resolved by value and freed one by one, the file is resolved once per reload (it was"
    echo "twice), a route's 402 requirement is rendered when first asked instead of kept (2.3 MB per table), and the"
    echo "daemon runs glibc with two arenas and a fixed 128 KiB mmap threshold, so the big buffers of a reload go"
    echo "back to the OS when freed (\`src/daemon.rs\`). After each reload the verifier also calls \`malloc_trim\`."
    echo
    echo "The offers file (1.8 MB, ${ROUTES} offers written the way \`obol sell create\` writes them) is parsed in"
    echo "${PARSE_MS} ms and resolved in ${RESOLVE_MS} ms (\`examples/route_match.rs\`); the verifier does that off the"
    echo "request threads and swaps the route table atomically. During the reload run, wrk"
    echo "(${RELOAD_DURATION} s, $(krps "$(field "$RELOAD_LINE" rps)") req/s, p99 $(ms "$(field "$RELOAD_LINE" p99_us)")) cycles over the first, middle"
    echo "and last offer, and a Lua \`response()\` counts every answer that is not 402; a second process swaps the"
    echo "file (copy + rename) every 300 ms between two versions that differ in every price."
    echo
    echo "Machine: $(nproc) cores (\`nproc\`), \`$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)\`, Linux $(uname -r), shared VM."
    echo "$RUSTC_VERSION, release profile (\`lto = \"thin\"\`, \`codegen-units = 4\`); $WRK_VERSION;"
    echo "Node.js $NODE_VERSION (\`NODE_ENV=production\`). Measured $(date -u +%Y-%m-%d) by \`benches/verifier_load.sh\`."
    echo
    echo "Reproduce:"
    echo
    echo '```sh'
    echo "bash scripts/setup-test-env.sh      # wrk, node and the npm x402 packages"
    echo "bash benches/verifier_load.sh       # ~45 min; DURATION=8 REPEAT=3 CONNS=64 THREADS=2 by default"
    echo '```'
    echo
} >"$SECTION"

cat "$SECTION"

if [ "$WRITE_DOCS" = 1 ]; then
    if grep -q '^## Verifier (issue 3)$' "$DOCS"; then
        # Replace the section in place (up to the next "## " heading).
        awk -v section="$SECTION" '
            $0 == "## Verifier (issue 3)" { while ((getline line < section) > 0) print line; skip = 1; next }
            skip && /^## / { skip = 0 }
            !skip { print }
        ' "$DOCS" >"$WORK/benchmarks.md"
    else
        { cat "$DOCS"; echo; cat "$SECTION"; } >"$WORK/benchmarks.md"
    fi
    # Keep exactly one trailing newline.
    sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$WORK/benchmarks.md" >"$DOCS"
    log "wrote the section \"Verifier (issue 3)\" of ${DOCS#"$REPO_ROOT"/}"
fi
