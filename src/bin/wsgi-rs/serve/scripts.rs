//! The start and stop scripts `wsgi-rs serve --setup-only` leaves in the
//! server root.

use std::path::Path;

/// `sh` single-quoting.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The start and stop scripts of `--setup-only`, like `apachectl start`
/// and `apachectl stop` for this one configuration.
pub(super) fn control_scripts(httpd: &Path, root: &Path) -> (String, String) {
    let httpd = sh_quote(&httpd.to_string_lossy());
    let root_q = sh_quote(&root.to_string_lossy());
    let conf = sh_quote(&root.join("httpd.conf").to_string_lossy());
    let pidfile = sh_quote(&root.join("httpd.pid").to_string_lossy());
    let start = format!(
        "#!/bin/sh\n\
         # Starts the Apache that wsgi-rs configured in this directory, in the\n\
         # background. Its logs are error_log and access_log here; ./stop stops it.\n\
         exec {httpd} -d {root_q} -f {conf} -k start \"$@\"\n"
    );
    let stop = format!(
        r#"#!/bin/sh
# Stops the Apache started by ./start and waits until it has exited.
pidfile={pidfile}
if [ ! -s "$pidfile" ]; then
    echo "not running: $pidfile does not exist" >&2
    exit 0
fi
pid=$(cat "$pidfile")
{httpd} -d {root_q} -f {conf} -k stop || exit $?

running() {{
    if [ -r "/proc/$1/stat" ]; then
        # A zombie has exited already; only its parent has yet to reap it.
        state=$(sed 's/^.*) //' "/proc/$1/stat" | cut -c1)
        [ "$state" != Z ]
    else
        kill -0 "$1" 2>/dev/null
    fi
}}

tries=0
while running "$pid"; do
    tries=$((tries + 1))
    if [ "$tries" -gt 300 ]; then
        echo "Apache (pid $pid) has not stopped after 30 seconds" >&2
        exit 1
    fi
    sleep 0.1
done
"#
    );
    (start, stop)
}
