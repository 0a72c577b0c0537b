//! Mercurial's hgweb, a real application that needs mod_wsgi's log
//! streams (it takes `sys.stdout.buffer` at import): the venv's `hg`
//! clones a repository over HTTP and pushes a changeset back, in embedded
//! and daemon mode.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::server::is_root;
use crate::common::venv::venv;
use crate::common::{Mode, Mpm, Server};

/// The stock hgweb.wsgi of Mercurial's contrib/, for one repository.
const HGWEB: &str = r#"
config = b"{root}/repo"
from mercurial import demandimport
demandimport.enable()
from mercurial.hgweb import hgweb
application = hgweb(config)
"#;

/// Runs the venv's `hg` with no user or system configuration.
fn hg(cwd: &Path, args: &[&str]) -> Output {
    let venv = venv();
    let out = Command::new(venv.join("bin/python3"))
        .arg(venv.join("bin/hg"))
        .args([
            "--config",
            "ui.username=mod_wsgi_rs tests <tests@example.invalid>",
        ])
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HGRCPATH", "")
        .env("HGPLAIN", "1")
        .env("LANG", "C.UTF-8")
        .output()
        .expect("run hg");
    assert!(
        out.status.success(),
        "hg {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The served repository belongs to the user Apache's children run as
/// (www-data when the tests run as root), as in a real deployment: hg
/// writes to it on push, and it warns about (and ignores) an `.hg/hgrc`
/// owned by someone else.
fn hand_to_apache(repo: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "www-data:www-data"])
            .arg(repo)
            .status()
            .expect("chown");
        assert!(status.success(), "chown -R www-data {}", repo.display());
    }
}

fn clone_and_push(mode: Mode) {
    let venv = venv().display();
    let conf = match mode {
        Mode::Embedded => format!("WSGIPythonHome {venv}\n"),
        Mode::Daemon => {
            format!("WSGIDaemonProcess hg threads=2 python-home={venv}\nWSGIProcessGroup hg\n")
        }
    };
    let s = Server::new(Mpm::Event)
        .file("hgweb.wsgi", HGWEB)
        .conf(&conf)
        .conf("WSGIApplicationGroup %{GLOBAL}\nWSGIScriptAlias /hg {root}/hgweb.wsgi\n")
        .start();

    // The served repository, with one changeset.
    let repo = s.path("repo");
    fs::create_dir_all(&repo).unwrap();
    hg(&repo, &["init"]);
    fs::write(
        repo.join(".hg/hgrc"),
        "[web]\nallow-push = *\npush_ssl = false\n",
    )
    .unwrap();
    fs::write(repo.join("README"), "served by hgweb\n").unwrap();
    hg(&repo, &["commit", "--addremove", "-m", "first"]);
    hand_to_apache(&repo);

    let url = format!("http://127.0.0.1:{}/hg", s.port);
    let work = tempfile::tempdir().unwrap();
    let out = hg(work.path(), &["clone", &url, "copy"]);
    let copy = work.path().join("copy");
    assert_eq!(
        fs::read_to_string(copy.join("README")).unwrap(),
        "served by hgweb\n",
        "clone ({mode:?}): {}",
        String::from_utf8_lossy(&out.stdout)
    );

    fs::write(copy.join("PUSHED"), "pushed over HTTP\n").unwrap();
    hg(&copy, &["commit", "--addremove", "-m", "second"]);
    hg(&copy, &["push", &url]);
    let log = hg(&repo, &["log", "--template", "{desc}\n"]);
    assert_eq!(
        String::from_utf8_lossy(&log.stdout),
        "second\nfirst\n",
        "the push ({mode:?}) did not reach the served repository:\n{}",
        s.error_log()
    );
}

#[test]
fn clone_and_push_embedded() {
    clone_and_push(Mode::Embedded);
}

#[test]
fn clone_and_push_daemon() {
    clone_and_push(Mode::Daemon);
}
