//! What every launcher test uses: a scratch directory, running `wsgi-rs`
//! and collecting its output, a plain HTTP client, a served application in
//! the background, and the check that nothing was left running.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const WSGI_RS: &str = env!("CARGO_BIN_EXE_wsgi-rs");
/// Debian's mod_wsgi (libapache2-mod-wsgi-py3), which has daemon mode.
pub const DEBIAN_MOD_WSGI: &str = "/usr/lib/apache2/modules/mod_wsgi.so";

pub const START_TIMEOUT: Duration = Duration::from_secs(30);
pub const STOP_TIMEOUT: Duration = Duration::from_secs(25);

/// The module cargo built. Building only the tests leaves it in deps/;
/// `cargo build` also puts a copy beside the binary. The newer one is the
/// current one.
pub fn built_module() -> PathBuf {
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
pub fn with_module(args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if !args.contains(&"--module") {
        all.push("--module".into());
        all.push(built_module().to_string_lossy().into_owned());
    }
    all
}

pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A private directory for one test. Apache's children run as www-data
/// when the tests run as root, so it is made world-readable.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("wsgi-rs-launcher-")
            .tempdir()
            .expect("temporary directory");
        set_mode(dir.path(), 0o755);
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
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
    pub fn server_root(&self) -> PathBuf {
        self.path().join("root")
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `wsgi-rs serve ARGS` (with our module unless ARGS name one)
/// expecting a refusal, and checks the refusal is one line with a cause and
/// a remedy and that nothing was started. Returns the line.
pub fn refusal(scratch: &Scratch, args: &[&str], adjust: impl FnOnce(&mut Command)) -> String {
    let root = scratch.server_root();
    let finished = run({
        let mut c = wsgi_rs(scratch.path());
        c.arg("serve")
            .args(with_module(args))
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

/// `wsgi-rs` with an environment that does not depend on the caller's.
pub fn wsgi_rs(dir: &Path) -> Command {
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
pub fn collect(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = send.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    receive
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The one `wsgi-rs: error:` line.
    pub fn error_line(&self) -> &str {
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
pub fn collect_if_piped(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    match pipe {
        Some(pipe) => collect(pipe),
        None => {
            let (send, receive) = mpsc::channel();
            let _ = send.send(String::new());
            receive
        }
    }
}

pub fn wait_for(mut child: Child, timeout: Duration) -> Finished {
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
pub fn run(mut command: Command) -> Finished {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(child, Duration::from_secs(60))
}

/// Live processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &Path) -> Vec<String> {
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
pub fn kill_processes_mentioning(root: &Path) {
    for line in processes_mentioning(root) {
        if let Some(pid) = line.split(':').next().and_then(|p| p.parse::<i32>().ok()) {
            // SAFETY: plain kill of a process this test started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

pub fn assert_nothing_left(root: &Path) {
    let left = processes_mentioning(root);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
}

pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// A GET over HTTP/1.0, so the body simply ends when the connection does.
pub fn get(port: u16, path: &str, extra_headers: &str) -> Response {
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
pub struct Served {
    pub child: Option<Child>,
    pub root: PathBuf,
    pub port: u16,
}

impl Served {
    /// Starts `wsgi-rs serve` with a server root and port of its own, and
    /// waits until it answers.
    pub fn start(scratch: &Scratch, args: &[&str]) -> Served {
        Self::start_with(scratch, args, |_| {})
    }

    pub fn start_with(
        scratch: &Scratch,
        args: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Served {
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

    pub fn wait_until_up(&mut self) {
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

    pub fn get(&self, path: &str) -> Response {
        get(self.port, path, "")
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Sends `signal` to wsgi-rs (only to it, as a terminal's Ctrl-C would
    /// reach only wsgi-rs's process group) and waits for it to finish.
    pub fn stop(mut self, signal: i32) -> Finished {
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
pub fn stop_cleanly(served: Served, signal: i32) -> Finished {
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

pub const HELLO_APP: &str = r#"
def application(environ, start_response):
    body = b"hello from the launcher test\n"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
"#;

/// Reports what the application sees of its request and process.
pub const ECHO_MODULE: &str = r#"
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

pub fn field<'a>(body: &'a str, name: &str) -> &'a str {
    body.split('|')
        .find_map(|part| part.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

pub fn echo_app(scratch: &Scratch) {
    scratch.write("echo.py", ECHO_MODULE);
    scratch.write("lib/helper.py", "NAME = 'from the python path'\n");
}

/// Edits `echo.py` so it answers `version=two` (a different length, so no
/// stale bytecode can pass for it).
pub fn edit_echo_module(scratch: &Scratch) {
    scratch.write(
        "echo.py",
        &ECHO_MODULE.replace("version=one", "version=two, edited"),
    );
}

pub fn wait_for_version(served: &Served, version: &str) -> Response {
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

/// A virtualenv (without pip, for speed) from the distribution's Python.
pub fn make_venv(scratch: &Scratch) -> PathBuf {
    let venv = scratch.path().join("venv");
    let made = Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success(), "python3 -m venv failed");
    venv
}
