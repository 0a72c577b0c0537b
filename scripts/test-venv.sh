#!/usr/bin/env bash
# Creates the virtualenv that the framework and deployment-sample integration
# tests run their Python apps in: $WSGI_TEST_VENV, by default
# target/test-venv, made from /usr/bin/python3 (the interpreter the module
# embeds: a venv must come from the same Python) with the pinned packages of
# tests/requirements-frameworks.txt.
#
# Idempotent: a stamp file, written last, records the requirements and the
# interpreter it was built for. When it matches, nothing is done; otherwise
# (first run, changed requirements, a run interrupted half-way) the venv is
# rebuilt from scratch.
#
# The venv is made world-readable because Apache's children run as www-data.
# That is not enough when the repository itself sits somewhere www-data cannot
# enter (under /root, say), so the tests copy it to a readable place under
# /tmp before pointing WSGIPythonHome at it (tests/integration/common/venv.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

python=/usr/bin/python3
requirements=tests/requirements-frameworks.txt
venv="${WSGI_TEST_VENV:-$PWD/target/test-venv}"
stamp="$venv/.wsgi-test-venv-stamp"

expected="$(cat "$requirements"; echo "# built with $python $("$python" -c 'import sys; print(sys.version.split()[0])')")"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$expected" ]; then
    echo "test venv up to date: $venv"
    exit 0
fi

echo "creating test venv: $venv"
start=$SECONDS
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --requirement "$requirements"
chmod -R a+rX "$venv"
printf '%s\n' "$expected" >"$stamp"
chmod a+r "$stamp"
echo "test venv ready in $((SECONDS - start)) s: $venv"
