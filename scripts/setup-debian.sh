#!/usr/bin/env bash
# Installs the Debian packages mod_wsgi_rs needs to build and to be tested,
# skipping those already present. Run as root on Debian 12 (or Ubuntu).
set -euo pipefail

packages=(
    apache2 apache2-dev          # httpd itself, and apxs + headers for build.rs
    libclang-dev clang           # bindgen parses the httpd headers with libclang
    python3-dev python3-venv     # the libpython we embed, and venvs for apps
    libapache2-mod-wsgi-py3      # Debian's mod_wsgi: the referee in tests
    python3-pastedeploy          # wsgi-rs serve's PasteDeploy .ini targets, in tests
    python3-cryptography         # a PyO3 extension module that refuses sub-interpreters, in tests
    chromium                     # the wsgi-rs-status page is rendered headless, in tests
    dpkg-dev binutils            # cargo deb: dpkg-shlibdeps for Depends, objcopy for -dbgsym
    iproute2                     # ip netns: back ends on hosts of their own, in the multi-host test
    curl ca-certificates
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]} (run this script as root to install them)" >&2
        exit 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Debian enables mod_wsgi when installing it; we only use it as a test referee
# with private configs, so leave the system Apache as it was otherwise.
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install a Rust toolchain >= 1.85 (https://rustup.rs)" >&2
    exit 1
fi
