#!/usr/bin/env bash
# Builds the Debian package with `cargo deb`, installs it with apt, enables
# it with a2enmod (checking that a2enmod refuses it while Debian's mod_wsgi is
# enabled), serves a request through a site of apache-conf/sites-available/
# under the system Apache's configuration, then removes and purges the
# package and checks that nothing of it is left.
#
# Run as root on Debian with Debian's mod_wsgi installed (the conflict's
# other side; scripts/setup-debian.sh installs it). The machine is left as
# it was found: the system Apache is never started on its own ports (the
# request goes to a private instance of the system configuration on a free
# loopback port, with its pid file, locks and logs under a temporary
# directory), Debian's mod_wsgi is enabled again if it was, and
# /etc/apache2 and a2enmod's records in /var/lib/apache2 are compared with
# what they were before. Safe to run again; `.ci/run` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=libapache2-mod-wsgi-rs
# Pinned so every machine builds the package with the same tool.
CARGO_DEB_VERSION=3.8.0
SITE=wsgi-rs-deb-test
SITE_FILE=/etc/apache2/sites-available/$SITE.conf
HTTPD=/usr/sbin/apache2

checks=0
pass() {
    checks=$((checks + 1))
    echo "test-deb: ok: $*"
}
fail() {
    echo "test-deb: FAILED: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || fail "run as root: it installs and removes a package (sudo bash $0)"
dpkg-query -W -f='${Status}' libapache2-mod-wsgi-py3 2>/dev/null | grep -q "install ok installed" ||
    fail "Debian's mod_wsgi (libapache2-mod-wsgi-py3) is needed for the conflict check: run scripts/setup-debian.sh"
if dpkg-query -W -f='${Status}' "$PACKAGE" 2>/dev/null | grep -qv "not-installed"; then
    fail "$PACKAGE is already on this machine; this test installs and purges it: apt-get purge $PACKAGE first"
fi
[ ! -e "$SITE_FILE" ] || fail "$SITE_FILE exists (left by an interrupted run?): a2dissite $SITE; rm $SITE_FILE"

# --- Build the package ----------------------------------------------------
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
    echo "test-deb: installing cargo-deb $CARGO_DEB_VERSION (compiles it: a few minutes)"
    cargo install --quiet --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi
rm -f target/debian/"$PACKAGE"_*.deb target/debian/"$PACKAGE"-dbgsym_*.ddeb
cargo deb
deb=$(ls target/debian/"$PACKAGE"_*.deb)
deb=$(realpath "$deb")
arch=$(dpkg --print-architecture)
version=$(dpkg-deb -f "$deb" Version)
[ "$(basename "$deb")" = "${PACKAGE}_${version}_${arch}.deb" ] || fail "unexpected package file name $deb"
pass "built $(basename "$deb")"

contents=$(dpkg-deb -c "$deb")
echo "$contents"
for path in /usr/lib/apache2/modules/mod_wsgi_rs.so /usr/bin/wsgi-rs \
    /etc/apache2/mods-available/wsgi_rs.load /etc/apache2/mods-available/wsgi_rs.conf \
    /usr/share/doc/$PACKAGE/README.md /usr/share/doc/$PACKAGE/copyright \
    /usr/share/doc/$PACKAGE/examples/sites-available/wsgi-rs-example.conf; do
    grep -q " \.$path\$" <<<"$contents" || fail "$path is not in the package"
done
pass "the package holds the module, the launcher, the a2enmod snippets and the documentation"
for snippet in wsgi_rs.load wsgi_rs.conf; do
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "./etc/apache2/mods-available/$snippet" |
        cmp -s - "apache-conf/$snippet" || fail "the packaged $snippet differs from apache-conf/$snippet"
done
pass "the packaged snippets are apache-conf/'s (what wsgi-rs install writes)"

depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
# The module ABI the headers it was compiled against declare, and the
# libpython it links: both must be dependencies.
mmn=$(awk '/#define MODULE_MAGIC_NUMBER_MAJOR/ {print $3}' "$(apxs -q INCLUDEDIR)/ap_mmn.h")
api="apache2-api-$mmn"
grep -Eq "(^|, )$api(,|$)" <<<"$depends" || fail "Depends lacks $api"
apt-cache show apache2-bin | grep -E '^Provides:' | grep -Eq "(: |, )$api(,|$)" ||
    fail "apache2-bin does not provide $api"
libpython_soname=$(readelf -d target/release/libmod_wsgi_rs.so | sed -n 's/.*NEEDED.*\[\(libpython3[^]]*\)\].*/\1/p')
[ -n "$libpython_soname" ] || fail "the module links no libpython3"
libpython_package=$(dpkg -S "*/$libpython_soname" | grep -E "/$libpython_soname\$" | head -n 1 | cut -d: -f1)
grep -Eq "(^|, )$libpython_package \(" <<<"$depends" ||
    fail "Depends lacks $libpython_package (the module links $libpython_soname)"
pass "Depends names $api (provided by apache2-bin) and $libpython_package ($libpython_soname)"

# --- What the machine looks like now --------------------------------------
state=$(mktemp -d /tmp/test-deb.XXXXXX)
chmod 755 "$state"
fingerprint() {
    find /etc/apache2 /var/lib/apache2 -printf '%p %y %m %l\n' | sort
    find /etc/apache2 /var/lib/apache2 -type f -exec md5sum {} + | sort
}
fingerprint >"$state/before"
tar -C /var/lib -cf "$state/var-lib-apache2.tar" apache2
wsgi_was_enabled=no
a2query -q -m wsgi && wsgi_was_enabled=yes
# Paths of the package that exist before it is installed (directories such
# as /usr/bin): they must still be there afterwards, and only they.
package_paths=$(awk '{print $6}' <<<"$contents" | sed 's|^\.||; s|/$||' | grep -v '^$')
: >"$state/preexisting"
for path in $package_paths; do
    if [ -e "$path" ]; then echo "$path" >>"$state/preexisting"; fi
done

# Removing an enabled module makes the package's prerm ask invoke-rc.d to
# restart apache2. Where nothing says otherwise (no policy-rc.d), that would
# start the system Apache on its ports: deny apache2 actions while this runs.
policy=/usr/sbin/policy-rc.d
policy_marker="# written by mod_wsgi_rs scripts/test-deb.sh"
own_policy=no
if [ ! -e "$policy" ] || grep -qF "$policy_marker" "$policy"; then
    own_policy=yes
    printf '#!/bin/sh\n%s\n[ "$1" = apache2 ] && exit 101\nexit 0\n' "$policy_marker" >"$policy"
    chmod 755 "$policy"
fi

pid_file="$state/run/apache2.pid"
stop_private_apache() {
    [ -f "$pid_file" ] || return 0
    local pid
    pid=$(cat "$pid_file")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$pid_file"
}

cleanup() {
    local status=$?
    set +e
    stop_private_apache
    if [ -L "/etc/apache2/sites-enabled/$SITE.conf" ]; then a2dissite -q "$SITE" >/dev/null; fi
    rm -f "$SITE_FILE"
    if dpkg-query -W -f='${Status}' "$PACKAGE" 2>/dev/null | grep -qv "not-installed"; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$PACKAGE" >/dev/null
    fi
    if [ "$wsgi_was_enabled" = yes ] && ! a2query -q -m wsgi; then a2enmod -q wsgi; fi
    if [ "$wsgi_was_enabled" = no ] && a2query -q -m wsgi; then a2dismod -q wsgi; fi
    # a2enmod's records (enabled by admin or by a package) as they were.
    rm -rf /var/lib/apache2
    tar -C /var/lib -xpf "$state/var-lib-apache2.tar"
    [ "$own_policy" = yes ] && rm -f "$policy"
    if [ "$status" -eq 0 ]; then
        if ! fingerprint | diff "$state/before" - >&2; then
            echo "test-deb: FAILED: /etc/apache2 or /var/lib/apache2 differ from before (above)" >&2
            status=1
        fi
    fi
    rm -rf "$state"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Install ---------------------------------------------------------------
DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 "$deb"
dpkg-query -W -f='${Status}' "$PACKAGE" | grep -q "install ok installed" || fail "$PACKAGE did not install"
dpkg -L "$PACKAGE" | sort >"$state/listed"
while read -r path; do
    [ -e "$path" ] || fail "dpkg -L lists $path but it is not there"
done <"$state/listed"
[ ! -e /etc/apache2/mods-enabled/wsgi_rs.load ] || fail "installing enabled the module (a2enmod wsgi_rs does)"
pass "apt installed it ($(wc -l <"$state/listed") paths) without enabling the module"

# The launcher finds the packaged module without apxs (apache2-dev).
loadline=$(env -i PATH=/nonexistent /usr/bin/wsgi-rs module-config)
[ "$loadline" = 'LoadModule wsgi_rs_module "/usr/lib/apache2/modules/mod_wsgi_rs.so"' ] ||
    fail "wsgi-rs module-config printed: $loadline"
pass "/usr/bin/wsgi-rs finds the packaged module without apxs"

# --- a2enmod: refused next to mod_wsgi, then enabled ----------------------
a2query -q -m wsgi || a2enmod -q wsgi
if refused=$(a2enmod wsgi_rs 2>&1); then fail "a2enmod wsgi_rs succeeded while wsgi is enabled: $refused"; fi
grep -q "Module wsgi is enabled - cannot proceed due to conflicts" <<<"$refused" ||
    fail "a2enmod wsgi_rs did not name the conflict: $refused"
[ ! -e /etc/apache2/mods-enabled/wsgi_rs.load ] || fail "a2enmod wsgi_rs enabled it despite the conflict"
pass "a2enmod wsgi_rs refuses while wsgi is enabled: $(grep -o 'Module wsgi is enabled.*' <<<"$refused")"
a2dismod -q wsgi
a2enmod wsgi_rs
[ -L /etc/apache2/mods-enabled/wsgi_rs.load ] && [ -L /etc/apache2/mods-enabled/wsgi_rs.conf ] ||
    fail "a2enmod wsgi_rs made no mods-enabled links"
pass "a2dismod wsgi; a2enmod wsgi_rs"

# --- A site and a request -------------------------------------------------
app="$state/app"
mkdir -p "$app/static" "$state/run" "$state/lock" "$state/log"
token="deb-test-$RANDOM$RANDOM"
cat >"$app/app.wsgi" <<EOF
def application(environ, start_response):
    body = "$token %s\n" % environ["REQUEST_URI"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
EOF
echo "static $token" >"$app/static/note.txt"
chmod -R a+rX "$state"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The packaged sample site, only its port and application directory changed.
example=/usr/share/doc/$PACKAGE/examples/sites-available/wsgi-rs-example.conf
sed -e "s|<VirtualHost \*:80>|<VirtualHost *:$port>|" -e "s|/srv/app|$app|g" "$example" >"$SITE_FILE"
grep -q "<VirtualHost \*:$port>" "$SITE_FILE" || fail "$example has no <VirtualHost *:80>"
a2ensite -q "$SITE"
apache2ctl -t || fail "apache2ctl -t fails with wsgi_rs and the site enabled"
pass "apache2ctl -t accepts the system configuration with wsgi_rs and the site enabled"

# The system configuration as it is, except that it listens on the free
# port only (ports.conf would take 80) and loads no other site (theirs
# may Listen too); pid file, locks and logs go under $state.
conf="$state/apache2.conf"
sed -e "s|^Include ports.conf\$|Listen 127.0.0.1:$port|" \
    -e "s|^IncludeOptional sites-enabled/\*.conf\$|Include sites-enabled/$SITE.conf|" \
    /etc/apache2/apache2.conf >"$conf"
grep -q "^Listen 127.0.0.1:$port\$" "$conf" && grep -q "^Include sites-enabled/$SITE.conf\$" "$conf" ||
    fail "/etc/apache2/apache2.conf lacks Debian's 'Include ports.conf' or 'IncludeOptional sites-enabled/*.conf'"
run_user=$(set +u && . /etc/apache2/envvars && echo "$APACHE_RUN_USER")
run_group=$(set +u && . /etc/apache2/envvars && echo "$APACHE_RUN_GROUP")
private_apache() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C \
        APACHE_RUN_USER="$run_user" APACHE_RUN_GROUP="$run_group" \
        APACHE_RUN_DIR="$state/run" APACHE_PID_FILE="$pid_file" \
        APACHE_LOCK_DIR="$state/lock" APACHE_LOG_DIR="$state/log" \
        "$HTTPD" -d /etc/apache2 -f "$conf" "$@"
}
modules=$(private_apache -M)
grep -q "wsgi_rs_module (shared)" <<<"$modules" || fail "wsgi_rs_module is not loaded: $modules"
if grep -q " wsgi_module " <<<"$modules"; then fail "Debian's wsgi_module is loaded too"; fi
private_apache -k start
answer=""
for _ in $(seq 600); do
    answer=$(curl -sS --max-time 30 -H "Host: app.example.org" "http://127.0.0.1:$port/" 2>/dev/null) && break
    sleep 0.1
done
[ "$answer" = "$token /" ] || fail "the app did not answer with its token: '$answer'; error log: $(cat "$state/log/"*error*.log)"
pass "GET / answered by the app through mod_wsgi_rs: $answer"
static=$(curl -sS --max-time 30 -H "Host: app.example.org" "http://127.0.0.1:$port/static/note.txt")
[ "$static" = "static $token" ] || fail "the site's /static alias answered '$static'"
pass "GET /static/note.txt answered by Apache through the site's Alias"
stop_private_apache
a2dissite -q "$SITE"
rm -f "$SITE_FILE"

# --- Remove, then purge ---------------------------------------------------
conffiles=$(dpkg-query -W -f='${Conffiles}\n' "$PACKAGE" | awk 'NF {print $1}')
[ -n "$conffiles" ] || fail "$PACKAGE has no conffiles"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -o DPkg::Lock::Timeout=300 "$PACKAGE"
ls /etc/apache2/mods-enabled/wsgi_rs.* 2>/dev/null && fail "removal left mods-enabled links"
while read -r path; do
    [ -d "$path" ] && continue
    grep -qxF "$path" <<<"$conffiles" && continue
    [ ! -e "$path" ] || fail "removal left $path"
done <"$state/listed"
pass "apt-get remove disabled the module (prerm) and removed all but the conffiles"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=300 "$PACKAGE"
dpkg-query -W -f='${Status}' "$PACKAGE" 2>/dev/null | grep -qv "not-installed" && fail "$PACKAGE is still known to dpkg"
while read -r path; do
    if grep -qxF "$path" "$state/preexisting"; then
        [ -e "$path" ] || fail "purging removed $path, which was there before"
    else
        [ ! -e "$path" ] || fail "purging left $path"
    fi
done <"$state/listed"
found=$(find /etc/apache2 /var/lib/apache2 -name 'wsgi_rs*')
[ -z "$found" ] || fail "purging left $found"
pass "apt-get purge removed every path dpkg -L listed, the conffiles and a2enmod's records"

echo "test-deb: $checks passed, 0 failed"
