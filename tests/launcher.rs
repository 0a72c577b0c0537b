//! End-to-end tests of the `wsgi-rs` launcher: every subcommand against the
//! real Apache on this machine, with the module cargo just built (embedded
//! mode) and with Debian's mod_wsgi as the peer that proves the daemon-mode
//! configuration. Each test has its own directory and free port, talks
//! HTTP over a plain TcpStream, and checks that no process is left behind.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WSGI_RS: &str = env!("CARGO_BIN_EXE_wsgi-rs");
/// Debian's mod_wsgi (libapache2-mod-wsgi-py3), which has daemon mode.
const DEBIAN_MOD_WSGI: &str = "/usr/lib/apache2/modules/mod_wsgi.so";

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(25);

/// The module cargo built. Building only the tests leaves it in deps/;
/// `cargo build` also puts a copy beside the binary. The newer one is the
/// current one.
fn built_module() -> PathBuf {
    let profile_dir = Path::new(WSGI_RS).parent().expect("binary directory");
    [profile_dir.join("deps"), profile_dir.to_path_buf()]
        .iter()
        .map(|dir| dir.join("libmod_wsgi_rs.so"))
        .filter_map(|path| {
            let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
            Some((modified, path))
        })
        .max()
        .map(|(_, path)| path)
        .expect("libmod_wsgi_rs.so has not been built")
}

/// `--module` for our module, unless the arguments already name one.
fn with_module(args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if !args.contains(&"--module") {
        all.push("--module".into());
        all.push(built_module().to_string_lossy().into_owned());
    }
    all
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A private directory for one test. Apache's children run as www-data
/// when the tests run as root, so it is made world-readable.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("wsgi-rs-launcher-")
            .tempdir()
            .expect("temporary directory");
        set_mode(dir.path(), 0o755);
        Scratch { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
            set_mode(parent, 0o755);
        }
        std::fs::write(&path, contents).unwrap();
        set_mode(&path, 0o644);
        path
    }

    /// Where `serve` is told to put its server root.
    fn server_root(&self) -> PathBuf {
        self.path().join("root")
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `wsgi-rs` with an environment that does not depend on the caller's.
fn wsgi_rs(dir: &Path) -> Command {
    let mut command = Command::new(WSGI_RS);
    command
        .current_dir(dir)
        .env_remove("VIRTUAL_ENV")
        .env_remove("APACHE2")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

/// Collects a pipe on a thread; the text arrives once every holder of the
/// pipe has closed it (for serve: every Apache process has exited).
fn collect(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = send.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    receive
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    /// The one `wsgi-rs: error:` line.
    fn error_line(&self) -> &str {
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("wsgi-rs: error: "))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "one error line expected in:\n{}",
            self.stderr
        );
        errors[0]
    }
}

/// Collects a pipe the child may have (stdout or stderr redirected to a
/// file has none).
fn collect_if_piped(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    match pipe {
        Some(pipe) => collect(pipe),
        None => {
            let (send, receive) = mpsc::channel();
            let _ = send.send(String::new());
            receive
        }
    }
}

fn wait_for(mut child: Child, timeout: Duration) -> Finished {
    let stdout = collect_if_piped(child.stdout.take());
    let stderr = collect_if_piped(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("wsgi-rs did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
    Finished {
        status,
        stdout: stdout
            .recv_timeout(left)
            .expect("stdout still held open by a leftover process"),
        stderr: stderr
            .recv_timeout(left)
            .expect("stderr still held open by a leftover process"),
    }
}

/// Runs a command that is expected to finish by itself.
fn run(mut command: Command) -> Finished {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(child, Duration::from_secs(60))
}

/// Live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmdline.contains(&needle) {
                found.push(format!("{name}: {cmdline}"));
            }
        }
    }
    found
}

/// Kills what a failed test may have left running under `root`.
fn kill_processes_mentioning(root: &Path) {
    for line in processes_mentioning(root) {
        if let Some(pid) = line.split(':').next().and_then(|p| p.parse::<i32>().ok()) {
            // SAFETY: plain kill of a process this test started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

fn assert_nothing_left(root: &Path) {
    let left = processes_mentioning(root);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
}

struct Response {
    status: u16,
    head: String,
    body: String,
}

/// A GET over HTTP/1.0, so the body simply ends when the connection does.
fn get(port: u16, path: &str, extra_headers: &str) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{extra_headers}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// A `wsgi-rs serve` running in the background.
struct Served {
    child: Option<Child>,
    root: PathBuf,
    port: u16,
}

impl Served {
    /// Starts `wsgi-rs serve` with a server root and port of its own, and
    /// waits until it answers.
    fn start(scratch: &Scratch, args: &[&str]) -> Served {
        Self::start_with(scratch, args, |_| {})
    }

    fn start_with(scratch: &Scratch, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Served {
        let port = free_port();
        let root = scratch.server_root();
        let mut command = wsgi_rs(scratch.path());
        command
            .arg("serve")
            .args(with_module(args))
            .arg("--port")
            .arg(port.to_string())
            .arg("--server-root")
            .arg(&root)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        adjust(&mut command);
        let child = command.spawn().unwrap();
        let mut served = Served {
            child: Some(child),
            root,
            port,
        };
        served.wait_until_up();
        served
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let child = self.child.as_mut().unwrap();
            if let Some(status) = child.try_wait().unwrap() {
                let finished = wait_for(self.child.take().unwrap(), STOP_TIMEOUT);
                panic!(
                    "wsgi-rs exited ({status}) before serving:\n{}\n{}",
                    finished.stdout, finished.stderr
                );
            }
            assert!(Instant::now() < deadline, "wsgi-rs did not start serving");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, path: &str) -> Response {
        get(self.port, path, "")
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Sends `signal` to wsgi-rs (only to it, as a terminal's Ctrl-C would
    /// reach only wsgi-rs's process group) and waits for it to finish.
    fn stop(mut self, signal: i32) -> Finished {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.pid(), signal);
        }
        wait_for(self.child.take().unwrap(), STOP_TIMEOUT)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        kill_processes_mentioning(&self.root);
    }
}

/// Stops with `signal` and checks the clean ending the launcher promises.
fn stop_cleanly(served: Served, signal: i32) -> Finished {
    let root = served.root.clone();
    assert!(
        !processes_mentioning(&root).is_empty(),
        "Apache should be running under {}",
        root.display()
    );
    let finished = served.stop(signal);
    assert!(
        finished.status.success(),
        "exit {:?} (signal {:?}) after a stop:\n{}",
        finished.status.code(),
        finished.status.signal(),
        finished.stderr
    );
    assert_nothing_left(&root);
    finished
}

const HELLO_APP: &str = r#"
def application(environ, start_response):
    body = b"hello from the launcher test\n"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
"#;

/// Reports what the application sees of its request and process.
const ECHO_MODULE: &str = r#"
import os
import helper


def app(environ, start_response):
    body = "|".join([
        "version=one",
        "script_name=" + environ.get("SCRIPT_NAME", ""),
        "path_info=" + environ.get("PATH_INFO", ""),
        "authorization=" + environ.get("HTTP_AUTHORIZATION", "-"),
        "process_group=" + str(environ.get("mod_wsgi.process_group", "-")),
        "helper=" + helper.NAME,
        "pid=%d" % os.getpid(),
    ]).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
"#;

fn field<'a>(body: &'a str, name: &str) -> &'a str {
    body.split('|')
        .find_map(|part| part.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

fn echo_app(scratch: &Scratch) {
    scratch.write("echo.py", ECHO_MODULE);
    scratch.write("lib/helper.py", "NAME = 'from the python path'\n");
}

#[test]
fn serves_a_wsgi_script_embedded_and_sigint_leaves_nothing_behind() {
    let scratch = Scratch::new();
    scratch.write("hello.wsgi", HELLO_APP);
    let served = Served::start(&scratch, &["hello.wsgi", "--embedded"]);
    let response = served.get("/");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "hello from the launcher test\n");
    let port = served.port;
    let finished = stop_cleanly(served, libc::SIGINT);
    assert!(
        finished
            .stdout
            .contains(&format!("at http://127.0.0.1:{port}/ (embedded mode")),
        "{}",
        finished.stdout
    );
    // The access log goes to the terminal's stdout.
    assert!(
        finished.stdout.contains("\"GET / HTTP/1.0\" 200"),
        "{}",
        finished.stdout
    );
    assert!(finished.stderr.contains("SIGINT received, stopping Apache"));
}

#[test]
fn serves_a_module_callable_with_options_and_sigterm_stops_it() {
    let scratch = Scratch::new();
    echo_app(&scratch);
    scratch.write("static/style.css", "body { color: teal }\n");
    let served = Served::start(
        &scratch,
        &[
            "echo:app",
            "--embedded",
            "--mount-point",
            "/app/",
            "--python-path",
            "lib",
            "--url-alias",
            "/static",
            "static",
            "--pass-authorization",
            "--processes",
            "2",
            "--threads",
            "3",
        ],
    );
    let response = get(
        served.port,
        "/app/some/where",
        "Authorization: Bearer xyz\r\n",
    );
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(field(&response.body, "script_name"), "/app");
    assert_eq!(field(&response.body, "path_info"), "/some/where");
    assert_eq!(field(&response.body, "authorization"), "Bearer xyz");
    assert_eq!(field(&response.body, "helper"), "from the python path");
    let css = served.get("/static/style.css");
    assert_eq!(css.status, 200);
    assert_eq!(css.body, "body { color: teal }\n");
    assert!(css.head.contains("text/css"), "{}", css.head);
    assert_eq!(served.get("/elsewhere").status, 404);
    let config = std::fs::read_to_string(served.root.join("httpd.conf")).unwrap();
    assert!(config.contains("ThreadsPerChild 3\n"));
    assert!(config.contains("MaxRequestWorkers 6\n"));
    stop_cleanly(served, libc::SIGTERM);
}

#[test]
fn serves_a_paste_deploy_ini() {
    let scratch = Scratch::new();
    scratch.write(
        "factory.py",
        r#"
def make_app(global_config, **settings):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("greeting=" + settings["greeting"]).encode()]
    return app
"#,
    );
    scratch.write(
        "site.ini",
        "[app:main]\nuse = call:factory:make_app\ngreeting = hello from paste\n",
    );
    let served = Served::start(&scratch, &["site.ini", "--embedded"]);
    let response = served.get("/");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body, "greeting=hello from paste");
    stop_cleanly(served, libc::SIGINT);
}

#[test]
fn serves_under_the_worker_and_prefork_mpms() {
    for mpm in ["worker", "prefork"] {
        let scratch = Scratch::new();
        scratch.write("hello.wsgi", HELLO_APP);
        let served = Served::start(&scratch, &["hello.wsgi", "--embedded", "--mpm", mpm]);
        assert_eq!(served.get("/").status, 200, "{mpm}");
        let config = std::fs::read_to_string(served.root.join("httpd.conf")).unwrap();
        assert!(
            config.contains(&format!("LoadModule mpm_{mpm}_module")),
            "{mpm}"
        );
        stop_cleanly(served, libc::SIGINT);
    }
}

/// Edits `echo.py` so it answers `version=two` (a different length, so no
/// stale bytecode can pass for it).
fn edit_echo_module(scratch: &Scratch) {
    scratch.write(
        "echo.py",
        &ECHO_MODULE.replace("version=one", "version=two, edited"),
    );
}

fn wait_for_version(served: &Served, version: &str) -> Response {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = served.get("/");
        if response.status == 200 && field(&response.body, "version") == version {
            return response;
        }
        assert!(
            Instant::now() < deadline,
            "still {} after the edit",
            response.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn reload_on_changes_picks_up_an_edited_module_embedded() {
    let scratch = Scratch::new();
    echo_app(&scratch);
    let served = Served::start(
        &scratch,
        &[
            "echo:app",
            "--embedded",
            "--reload-on-changes",
            "--python-path",
            "lib",
        ],
    );
    let before = served.get("/");
    assert_eq!(field(&before.body, "version"), "one");
    edit_echo_module(&scratch);
    wait_for_version(&served, "two, edited");
    let finished = stop_cleanly(served, libc::SIGINT);
    assert!(
        finished
            .stderr
            .contains("wsgi-rs: reloading, changed: echo"),
        "{}",
        finished.stderr
    );
}

/// `serve` runs the app in a daemon process by default; `module` picks the
/// module (None: ours) and `loaded` is the LoadModule line to expect.
fn daemon_mode_is_the_default(module: Option<&str>, loaded: &str) {
    let scratch = Scratch::new();
    echo_app(&scratch);
    let mut args = vec!["echo:app", "--python-path", "lib"];
    args.extend(module.iter().flat_map(|m| ["--module", *m]));
    let served = Served::start(&scratch, &args);
    let response = served.get("/");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(field(&response.body, "process_group"), "wsgi-rs");
    assert_eq!(field(&response.body, "helper"), "from the python path");
    let config = std::fs::read_to_string(served.root.join("httpd.conf")).unwrap();
    assert!(config.contains(loaded), "{config}");
    assert!(config.contains("WSGIDaemonProcess"), "{config}");
    // The daemon process is a separate process from Apache's children,
    // and is stopped with them.
    let daemon_pid = field(&response.body, "pid").to_owned();
    assert!(Path::new("/proc").join(&daemon_pid).exists());
    let finished = stop_cleanly(served, libc::SIGINT);
    assert!(
        finished.stdout.contains("(daemon mode;"),
        "{}",
        finished.stdout
    );
    assert!(!Path::new("/proc").join(&daemon_pid).exists());
}

#[test]
fn daemon_mode_is_the_default_and_works_with_debian_mod_wsgi() {
    daemon_mode_is_the_default(
        Some(DEBIAN_MOD_WSGI),
        &format!("LoadModule wsgi_module \"{DEBIAN_MOD_WSGI}\""),
    );
}

#[test]
fn daemon_mode_is_the_default_with_our_module() {
    daemon_mode_is_the_default(None, "LoadModule wsgi_rs_module");
}

/// `--reload-on-changes` in daemon mode: editing an imported module restarts
/// the daemon process, which imports everything afresh.
fn reload_on_changes_restarts_the_daemon(module: Option<&str>) {
    let scratch = Scratch::new();
    echo_app(&scratch);
    let mut args = vec!["echo:app", "--reload-on-changes", "--python-path", "lib"];
    args.extend(module.iter().flat_map(|m| ["--module", *m]));
    let served = Served::start(&scratch, &args);
    let before = served.get("/");
    assert_eq!(field(&before.body, "version"), "one");
    edit_echo_module(&scratch);
    let after = wait_for_version(&served, "two, edited");
    assert_ne!(field(&before.body, "pid"), field(&after.body, "pid"));
    stop_cleanly(served, libc::SIGTERM);
}

#[test]
fn reload_on_changes_restarts_the_daemon_process() {
    reload_on_changes_restarts_the_daemon(Some(DEBIAN_MOD_WSGI));
}

#[test]
fn reload_on_changes_restarts_our_daemon_process() {
    reload_on_changes_restarts_the_daemon(None);
}

/// A virtualenv (without pip, for speed) from the distribution's Python.
fn make_venv(scratch: &Scratch) -> PathBuf {
    let venv = scratch.path().join("venv");
    let made = Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success(), "python3 -m venv failed");
    venv
}

#[test]
fn python_home_defaults_to_the_active_virtualenv() {
    let scratch = Scratch::new();
    let venv = make_venv(&scratch);
    scratch.write(
        "prefix.wsgi",
        r#"
import sys
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [sys.prefix.encode()]
"#,
    );
    let served = Served::start_with(
        &scratch,
        &["prefix.wsgi", "--module", DEBIAN_MOD_WSGI],
        |c| {
            c.env("VIRTUAL_ENV", &venv);
        },
    );
    assert_eq!(served.get("/").body, venv.to_string_lossy());
    let config = std::fs::read_to_string(served.root.join("httpd.conf")).unwrap();
    assert!(config.contains(&format!("WSGIPythonHome \"{}\"", venv.display())));
    assert!(config.contains(&format!("python-home={}", venv.display())));
    let finished = stop_cleanly(served, libc::SIGINT);
    assert!(finished.stderr.contains("using the active virtualenv"));
}

#[test]
fn generated_daemon_and_embedded_configs() {
    let scratch = Scratch::new();
    scratch.write("hello.wsgi", HELLO_APP);
    let daemon = run({
        let mut c = wsgi_rs(scratch.path());
        c.args([
            "serve",
            "hello.wsgi",
            "--setup-only",
            "--module",
            DEBIAN_MOD_WSGI,
        ])
        .args([
            "--processes",
            "3",
            "--threads",
            "4",
            "--maximum-requests",
            "50",
        ])
        .args(["--request-timeout", "20"])
        .arg("--server-root")
        .arg(scratch.path().join("daemon"));
        c
    });
    assert!(daemon.status.success(), "{}", daemon.stderr);
    let text = std::fs::read_to_string(scratch.path().join("daemon/httpd.conf")).unwrap();
    let app_dir = scratch.path().display();
    assert!(text.contains(&format!(
        "WSGIDaemonProcess wsgi-rs processes=3 threads=4 home={app_dir} maximum-requests=50 \
         request-timeout=20\n"
    )));
    assert!(text.contains("WSGIProcessGroup wsgi-rs\n"));
    assert!(text.contains("WSGIApplicationGroup %{GLOBAL}\n"));
    assert!(text.contains(&format!("WSGIScriptAlias \"/\" \"{app_dir}/hello.wsgi\"\n")));
    assert!(text.contains("ErrorLog \""), "setup-only logs to files");

    let embedded = run({
        let mut c = wsgi_rs(scratch.path());
        c.args(["serve", "hello.wsgi", "--setup-only", "--embedded"])
            .args(with_module(&[]))
            .arg("--server-root")
            .arg(scratch.path().join("embedded"));
        c
    });
    assert!(embedded.status.success(), "{}", embedded.stderr);
    let text = std::fs::read_to_string(scratch.path().join("embedded/httpd.conf")).unwrap();
    assert!(!text.contains("WSGIDaemonProcess"));
    assert!(!text.contains("WSGIProcessGroup"));
    assert!(text.contains("WSGIApplicationGroup %{GLOBAL}\n"));
    assert!(text.contains("LoadModule wsgi_rs_module"));
    if running_as_root() {
        assert!(text.contains("User www-data\nGroup www-data\n"));
        let root_mode = std::fs::metadata(scratch.path().join("embedded"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(root_mode & 0o777, 0o755);
        let conf_mode = std::fs::metadata(scratch.path().join("embedded/httpd.conf"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(conf_mode & 0o777, 0o644);
    } else {
        assert!(!text.contains("\nUser "));
    }
}

#[test]
fn setup_only_start_and_stop_scripts_run_apache_in_the_background() {
    let scratch = Scratch::new();
    scratch.write("hello.wsgi", HELLO_APP);
    let root = scratch.server_root();
    let port = free_port();
    let setup = run({
        let mut c = wsgi_rs(scratch.path());
        c.args(["serve", "hello.wsgi", "--setup-only", "--embedded"])
            .args(with_module(&[]))
            .args(["--port", &port.to_string()])
            .arg("--server-root")
            .arg(&root);
        c
    });
    assert!(setup.status.success(), "{}", setup.stderr);
    let printed = |label: &str| -> PathBuf {
        setup
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{label}: ")))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("no {label} path in {}", setup.stdout))
    };
    assert_eq!(printed("config"), root.join("httpd.conf"));
    let (start, stop) = (printed("start"), printed("stop"));
    assert_nothing_left(&root);

    let started = run(Command::new(&start));
    assert!(started.status.success(), "{}", started.stderr);
    let cleanup = Served {
        child: None,
        root: root.clone(),
        port,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "./start did not bring Apache up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let response = cleanup.get("/");
    assert_eq!(response.body, "hello from the launcher test\n");

    let stopped = run(Command::new(&stop));
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert_nothing_left(&root);
    let access_log = std::fs::read_to_string(root.join("access_log")).unwrap();
    assert!(access_log.contains("\"GET / HTTP/1.0\" 200"));
    assert!(root.join("error_log").is_file());
    drop(cleanup);
}

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

#[test]
fn install_writes_debian_and_rhel_layouts() {
    let module = built_module();
    let module_bytes = std::fs::read(&module).unwrap();
    let shipped_load = include_str!("../apache-conf/wsgi_rs.load");
    let shipped_conf = include_str!("../apache-conf/wsgi_rs.conf");

    let debian = Scratch::new();
    std::fs::create_dir_all(debian.path().join("etc/apache2/mods-available")).unwrap();
    let installed = run({
        let mut c = wsgi_rs(debian.path());
        c.arg("install")
            .arg("--destdir")
            .arg(debian.path())
            .arg("--module")
            .arg(&module);
        c
    });
    assert!(installed.status.success(), "{}", installed.stderr);
    // apxs names the module directory when --libexecdir is not given.
    let copied = debian.path().join("usr/lib/apache2/modules/mod_wsgi_rs.so");
    assert_eq!(std::fs::read(&copied).unwrap(), module_bytes);
    let mods = debian.path().join("etc/apache2/mods-available");
    assert_eq!(
        std::fs::read_to_string(mods.join("wsgi_rs.load")).unwrap(),
        shipped_load
    );
    assert_eq!(
        std::fs::read_to_string(mods.join("wsgi_rs.conf")).unwrap(),
        shipped_conf
    );
    assert!(installed.stdout.contains("a2enmod wsgi_rs"));

    // A second install (an upgrade) keeps an edited configuration.
    std::fs::write(mods.join("wsgi_rs.conf"), "# mine\n").unwrap();
    let again = run({
        let mut c = wsgi_rs(debian.path());
        c.arg("install")
            .arg("--destdir")
            .arg(debian.path())
            .arg("--module")
            .arg(&module);
        c
    });
    assert!(again.status.success(), "{}", again.stderr);
    assert!(
        again.stdout.contains("restart Apache fully"),
        "{}",
        again.stdout
    );
    assert_eq!(
        std::fs::read_to_string(mods.join("wsgi_rs.conf")).unwrap(),
        "# mine\n"
    );

    let rhel = Scratch::new();
    std::fs::create_dir_all(rhel.path().join("etc/httpd/conf.modules.d")).unwrap();
    let installed = run({
        let mut c = wsgi_rs(rhel.path());
        c.arg("install")
            .arg("--destdir")
            .arg(rhel.path())
            .args(["--libexecdir", "/usr/lib64/httpd/modules"])
            .arg("--module")
            .arg(&module);
        c
    });
    assert!(installed.status.success(), "{}", installed.stderr);
    assert!(rhel
        .path()
        .join("usr/lib64/httpd/modules/mod_wsgi_rs.so")
        .is_file());
    let snippet =
        std::fs::read_to_string(rhel.path().join("etc/httpd/conf.modules.d/10-wsgi_rs.conf"))
            .unwrap();
    assert!(
        snippet.contains("\nLoadModule wsgi_rs_module /usr/lib64/httpd/modules/mod_wsgi_rs.so\n")
    );
    assert!(snippet.ends_with(shipped_conf));
}

#[test]
fn module_config_prints_the_lines_for_the_active_virtualenv() {
    let scratch = Scratch::new();
    let venv = make_venv(&scratch);
    let module = built_module();
    let load_line = format!("LoadModule wsgi_rs_module \"{}\"", module.display());
    let home_line = format!("WSGIPythonHome \"{}\"", venv.display());

    let from_env = run({
        let mut c = wsgi_rs(scratch.path());
        c.arg("module-config")
            .args(with_module(&[]))
            .env("VIRTUAL_ENV", &venv);
        c
    });
    assert!(from_env.status.success(), "{}", from_env.stderr);
    assert_eq!(from_env.stdout, format!("{load_line}\n{home_line}\n"));

    // No VIRTUAL_ENV, but the python3 found first on PATH is a virtualenv's.
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let from_path = run({
        let mut c = wsgi_rs(scratch.path());
        c.arg("module-config")
            .args(with_module(&[]))
            .env("PATH", path);
        c
    });
    assert!(from_path.status.success(), "{}", from_path.stderr);
    assert_eq!(from_path.stdout, format!("{load_line}\n{home_line}\n"));

    let system = run({
        let mut c = wsgi_rs(scratch.path());
        c.arg("module-config")
            .args(with_module(&[]))
            .env("PATH", "/usr/bin:/bin");
        c
    });
    assert!(system.status.success(), "{}", system.stderr);
    assert_eq!(system.stdout, format!("{load_line}\n"));
}

/// Runs `wsgi-rs serve ARGS` expecting a refusal, and checks the refusal
/// is one line with a cause and a remedy and that nothing was started.
fn refused(scratch: &Scratch, args: &[&str], adjust: impl FnOnce(&mut Command)) -> String {
    let root = scratch.server_root();
    let finished = run({
        let mut c = wsgi_rs(scratch.path());
        c.arg("serve")
            .args(with_module(args))
            .arg("--embedded")
            .arg("--server-root")
            .arg(&root);
        adjust(&mut c);
        c
    });
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    let line = finished.error_line().to_owned();
    assert!(line.contains("; "), "no remedy in: {line}");
    assert_nothing_left(&root);
    line
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
