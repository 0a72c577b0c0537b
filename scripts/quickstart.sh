#!/usr/bin/env bash
# From a fresh Debian machine to a WSGI app on http://127.0.0.1:8000/:
# installs what is missing, builds the module and the launcher, and serves an
# example app under a real Apache in daemon mode (Ctrl-C stops everything).
#
#   bash scripts/quickstart.sh [path/to/app.wsgi] [extra wsgi-rs serve options]
set -euo pipefail
cd "$(dirname "$0")/.."

app="${1:-examples/hello.wsgi}"
shift || true

bash scripts/setup-debian.sh
cargo build --release
exec target/release/wsgi-rs serve "$app" --port 8000 "$@"
