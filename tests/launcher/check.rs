//! `wsgi-rs check`: errors reported with file and line.

use crate::harness::*;

#[test]
fn check_reports_errors_with_file_and_line() {
    let scratch = Scratch::new();
    scratch.write("hello.wsgi", HELLO_APP);
    let base = format!(
        "ServerRoot \"{dir}\"\n\
         LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so\n\
         LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so\n\
         PidFile \"{dir}/httpd.pid\"\n\
         ErrorLog \"{dir}/error_log\"\n",
        dir = scratch.path().display()
    );
    let good = scratch.write(
        "good.conf",
        &format!(
            "{base}WSGIScriptAlias / \"{}/hello.wsgi\"\n",
            scratch.path().display()
        ),
    );
    let ok = run({
        let mut c = wsgi_rs(scratch.path());
        c.arg("check").arg(&good).args(with_module(&[]));
        c
    });
    assert!(ok.status.success(), "{}", ok.stderr);
    assert!(ok.stdout.contains("Syntax OK"));

    let bad = scratch.write(
        "bad.conf",
        &format!("{base}\nWSGIScriptAlias / /srv/app.wsgi proces-group=oops\n"),
    );
    let failed = run({
        let mut c = wsgi_rs(scratch.path());
        c.arg("check").arg(&bad).arg("--module").arg(built_module());
        c
    });
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        failed.stderr.contains(&format!(
            "{}:7: WSGIScriptAlias: unknown option 'proces-group=oops'",
            bad.display()
        )),
        "{}",
        failed.stderr
    );
}
