//! What `serve` refuses, and how: one line with a cause and a remedy, and
//! nothing left running; what it warns about; running without root; and
//! finding the module next to the executable.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::harness::*;

/// [`refusal`] in embedded mode.
fn refused(scratch: &Scratch, args: &[&str], adjust: impl FnOnce(&mut Command)) -> String {
    refusal(scratch, &[args, &["--embedded"]].concat(), adjust)
}

#[test]
fn refuses_missing_files() {
    let scratch = Scratch::new();
    let line = refused(&scratch, &["missing.wsgi"], |_| {});
    assert!(line.contains("the WSGI script") && line.contains("missing.wsgi does not exist"));
    let line = refused(&scratch, &["missing.ini"], |_| {});
    assert!(line.contains("the PasteDeploy file") && line.contains("does not exist"));
    scratch.write("hello.wsgi", HELLO_APP);
    let line = refused(
        &scratch,
        &["hello.wsgi", "--module", "/nonexistent/mod_wsgi_rs.so"],
        |_| {},
    );
    assert!(
        line.contains("the module /nonexistent/mod_wsgi_rs.so does not exist"),
        "{line}"
    );
}

/// `--interrupt-timeout` changes what a daemon process does when
/// `--request-timeout` fires: without either it could do nothing.
#[test]
fn refuses_an_interrupt_timeout_that_could_do_nothing() {
    let scratch = Scratch::new();
    scratch.write("hello.wsgi", HELLO_APP);
    let both = [
        "hello.wsgi",
        "--request-timeout",
        "5",
        "--interrupt-timeout",
        "5",
    ];
    let line = refused(&scratch, &both, |_| {});
    assert!(
        line.contains("--interrupt-timeout applies to daemon processes, and --embedded runs none"),
        "{line}"
    );
    let line = refusal(
        &scratch,
        &["hello.wsgi", "--interrupt-timeout", "5"],
        |_| {},
    );
    assert!(
        line.contains("--interrupt-timeout acts when --request-timeout fires, and none is given")
            && line.contains("add --request-timeout SECONDS"),
        "{line}"
    );
}

#[test]
fn refuses_a_port_in_use() {
    let scratch = Scratch::new();
    scratch.write("hello.wsgi", HELLO_APP);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let line = refused(&scratch, &["hello.wsgi", "--port", &port], |_| {});
    assert!(
        line.contains(&format!("port {port} on 127.0.0.1 is already in use")),
        "{line}"
    );
    assert!(line.contains("--port"));
}

#[test]
fn refuses_to_run_without_apache() {
    let scratch = Scratch::new();
    scratch.write("hello.wsgi", HELLO_APP);
    let line = refused(&scratch, &["hello.wsgi"], |c| {
        c.env("APACHE2", "/nonexistent/apache2");
    });
    assert!(line.contains("not an executable Apache httpd"), "{line}");
    assert!(
        line.contains("apt-get install apache2") || line.contains("unset it"),
        "{line}"
    );
}

#[test]
fn reports_an_application_that_does_not_import() {
    let scratch = Scratch::new();
    let line = refused(&scratch, &["no_such_module_here:app"], |_| {});
    assert!(
        line.contains(
            "the application cannot be imported: ModuleNotFoundError: No module named \
             'no_such_module_here'"
        ),
        "{line}"
    );
    scratch.write("broken.wsgi", "raise RuntimeError('broken on purpose')\n");
    let line = refused(&scratch, &["broken.wsgi"], |_| {});
    assert!(line.contains("RuntimeError: broken on purpose"), "{line}");
    scratch.write("nothing.wsgi", "x = 1\n");
    let line = refused(&scratch, &["nothing.wsgi"], |_| {});
    assert!(
        line.contains("defines no callable named 'application'"),
        "{line}"
    );
}

#[test]
fn warns_when_apaches_user_cannot_read_the_application() {
    let scratch = Scratch::new();
    let private = scratch.write("private/hello.wsgi", HELLO_APP);
    set_mode(private.parent().unwrap(), 0o700);
    let finished = run({
        let mut c = wsgi_rs(scratch.path());
        c.args(["serve", "private/hello.wsgi", "--setup-only", "--embedded"])
            .args(with_module(&[]))
            .arg("--server-root")
            .arg(scratch.server_root());
        c
    });
    assert!(finished.status.success(), "{}", finished.stderr);
    let warned = finished
        .stderr
        .contains("Apache runs the application as www-data, which cannot read");
    assert_eq!(warned, running_as_root(), "{}", finished.stderr);
}

#[test]
fn serves_without_root_and_without_user_lines() {
    const NOBODY: u32 = 65534;
    let scratch = Scratch::new();
    scratch.write("hello.wsgi", HELLO_APP);
    // Apache reopens /dev/stdout and /dev/stderr, which only their owner
    // may do: the unprivileged user gets files of its own rather than this
    // test's pipes, and a server root it can write to.
    let root = scratch.server_root();
    std::fs::create_dir(&root).unwrap();
    let stdout_path = scratch.write("stdout.txt", "");
    let stderr_path = scratch.write("stderr.txt", "");
    if running_as_root() {
        for path in [&root, &stdout_path, &stderr_path] {
            std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
        }
    }
    let served = Served::start_with(&scratch, &["hello.wsgi", "--embedded"], |c| {
        c.stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        if running_as_root() {
            c.uid(NOBODY).gid(NOBODY);
        }
    });
    assert_eq!(served.get("/").status, 200);
    let config = std::fs::read_to_string(root.join("httpd.conf")).unwrap();
    assert!(!config.contains("\nUser "), "{config}");
    assert!(!config.contains("\nGroup "), "{config}");
    let apache_user = processes_mentioning(&root)
        .iter()
        .filter_map(|line| line.split(':').next())
        .map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|uids| uids.split_whitespace().next())
                .unwrap_or("")
                .to_owned()
        })
        .collect::<Vec<_>>();
    let expected_uid = if running_as_root() {
        NOBODY.to_string()
    } else {
        // SAFETY: getuid has no preconditions.
        unsafe { libc::getuid() }.to_string()
    };
    assert!(
        apache_user
            .iter()
            .all(|uid| uid.is_empty() || *uid == expected_uid),
        "{apache_user:?}"
    );
    stop_cleanly(served, libc::SIGINT);
    let output = std::fs::read_to_string(&stdout_path).unwrap();
    assert!(output.contains("\"GET / HTTP/1.0\" 200"), "{output}");
}

#[test]
fn finds_the_module_next_to_the_executable() {
    // As `cargo build` or an installation leaves them: side by side.
    let scratch = Scratch::new();
    let bin = scratch.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(WSGI_RS, bin.join("wsgi-rs")).unwrap();
    std::fs::copy(built_module(), bin.join("libmod_wsgi_rs.so")).unwrap();
    let finished = run({
        let mut c = Command::new(bin.join("wsgi-rs"));
        c.arg("module-config")
            .env_remove("VIRTUAL_ENV")
            .env("PATH", "/usr/bin:/bin");
        c
    });
    assert!(finished.status.success(), "{}", finished.stderr);
    assert_eq!(
        finished.stdout,
        format!(
            "LoadModule wsgi_rs_module \"{}\"\n",
            bin.join("libmod_wsgi_rs.so").display()
        )
    );
}
