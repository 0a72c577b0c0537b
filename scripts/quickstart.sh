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

# Apache's children run as www-data when started as root, and a checkout in
# /root is unreadable to them: serve a copy of the (single-file) example
# from a world-readable directory.
serve_dir="$(mktemp -d /tmp/mod_wsgi_rs-quickstart.XXXXXX)"
chmod 755 "$serve_dir"
cp "$app" "$serve_dir/"
chmod 644 "$serve_dir/$(basename "$app")"
trap 'rm -rf "$serve_dir"' EXIT
target/release/wsgi-rs serve "$serve_dir/$(basename "$app")" --port 8000 "$@"
