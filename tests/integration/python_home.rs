//! `WSGIPythonHome` pointing at a virtualenv (the common deployment, e.g.
//! RelengAPI's): the app must run with the venv's prefix and packages on top
//! of the base interpreter's standard library.

use std::process::Command;

use crate::common::Server;

const APP: &str = "import sys, venv_only_module\n\
def application(environ, start_response):\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
    return [('%s|%s|%s' % (sys.prefix, sys.base_prefix, venv_only_module.VALUE)).encode()]\n";

#[test]
fn virtualenv_as_python_home() {
    let s = Server::new(crate::common::Mpm::Event).file("app.wsgi", APP);
    let venv = s.root().join("venv");
    let made = Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .expect("run python3 -m venv");
    assert!(made.success(), "python3 -m venv failed");
    let site = std::fs::read_dir(venv.join("lib"))
        .expect("venv lib")
        .next()
        .expect("python3.X dir")
        .expect("dir entry")
        .path()
        .join("site-packages");
    std::fs::write(site.join("venv_only_module.py"), "VALUE = 'from-venv'\n").unwrap();
    // Apache's children (www-data when we are root) must be able to read it.
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&venv)
        .status()
        .unwrap();
    let s = s
        .conf(&format!(
            "WSGIPythonHome {}\nWSGIScriptAlias / {{root}}/app.wsgi\n",
            venv.display()
        ))
        .start();
    let r = s.get("/");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.error_log());
    let text = r.text();
    let parts: Vec<&str> = text.split('|').collect();
    assert_eq!(parts[0], venv.display().to_string(), "sys.prefix");
    assert_eq!(parts[1], "/usr", "sys.base_prefix");
    assert_eq!(parts[2], "from-venv");
}
