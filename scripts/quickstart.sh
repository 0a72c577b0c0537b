#!/usr/bin/env bash
# From a fresh Debian machine to a WSGI app on http://127.0.0.1:8000/:
# installs what is missing, builds the module, writes a private Apache
# configuration and runs Apache in the foreground (Ctrl-C stops it).
#
#   bash scripts/quickstart.sh [path/to/app.wsgi] [port]
set -euo pipefail
cd "$(dirname "$0")/.."

app="$(realpath "${1:-examples/hello.wsgi}")"
port="${2:-8000}"

bash scripts/setup-debian.sh
cargo build --release

# Everything Apache's children read lives in one world-readable directory:
# when started as root they run as www-data, which cannot read /root.
root="$(mktemp -d /tmp/mod_wsgi_rs.XXXXXX)"
chmod 755 "$root"
cp target/release/libmod_wsgi_rs.so "$root/mod_wsgi_rs.so"
cp "$app" "$root/app.wsgi"
chmod 644 "$root"/*

user_lines=""
if [ "$(id -u)" -eq 0 ]; then
    user_lines=$'User www-data\nGroup www-data'
fi

cat > "$root/httpd.conf" <<CONF
ServerRoot "$root"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$root/httpd.pid"
DefaultRuntimeDir "$root"
Mutex file:$root default
$user_lines
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule wsgi_rs_module "$root/mod_wsgi_rs.so"
TypesConfig /etc/mime.types
ErrorLog /dev/stderr
LogFormat "%h \"%r\" %>s %b %D" short
CustomLog /dev/stdout short
LogLevel info
WSGIScriptAlias / "$root/app.wsgi"
WSGIApplicationGroup %{GLOBAL}
<Directory "$root">
    Require all granted
</Directory>
CONF

echo "mod_wsgi_rs: serving $app on http://127.0.0.1:$port/ (Ctrl-C to stop; config in $root)"
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$root"' INT TERM EXIT
/usr/sbin/apache2 -f "$root/httpd.conf" -DFOREGROUND &
pid=$!
wait "$pid"
