#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs every test component (idempotent),
# then builds and runs all tests, lints and the formatting check.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-test-env.sh

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
cargo test --locked --all-targets
cargo clippy --locked --all-targets -- -D warnings
cargo fmt --check
# A short smoke run of every fuzz target (the long runs: bash scripts/fuzz.sh, docs/security.md).
bash scripts/fuzz.sh 20000
echo "all checks passed"
