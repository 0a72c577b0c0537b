#!/usr/bin/env bash
# Runs the whole test suite: formatting and lints, unit tests, and the
# integration tests that start real Apache servers (event, worker, prefork).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --check
cargo clippy --all-targets -- -D warnings

# The framework and deployment-sample tests (tests/integration/frameworks.rs,
# seeds.rs) run real Flask, Falcon, Django and Pyramid apps from this venv.
export WSGI_TEST_VENV="${WSGI_TEST_VENV:-$PWD/target/test-venv}"
bash scripts/test-venv.sh

cargo test
