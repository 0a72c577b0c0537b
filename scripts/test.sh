#!/usr/bin/env bash
# Runs the whole test suite: formatting and lints, unit tests, and the
# integration tests that start real Apache servers (event, worker, prefork).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
