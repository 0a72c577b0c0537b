//! Starts a private Apache httpd for one test and controls it.
//!
//! Every test gets its own ServerRoot in a fresh temporary directory, its own
//! port and a complete standalone httpd.conf, so tests can run in parallel and
//! never depend on the machine's /etc/apache2. The module under test is ours
//! (the cdylib cargo built next to the test binary) unless
//! `WSGI_TEST_MODULE=mod_wsgi` selects Debian's mod_wsgi as a referee.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use super::http::{self, Response};

pub const APACHE: &str = "/usr/sbin/apache2";
pub const MODULES_DIR: &str = "/usr/lib/apache2/modules";
/// Apache logs this (AH00489) each time a generation of the server is ready,
/// at start-up and after every restart, graceful or not.
const READY_MARK: &str = "resuming normal operations";
const START_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mpm {
    Event,
    Worker,
    Prefork,
}

impl Mpm {
    pub const ALL: [Mpm; 3] = [Mpm::Event, Mpm::Worker, Mpm::Prefork];

    pub fn name(self) -> &'static str {
        match self {
            Mpm::Event => "event",
            Mpm::Worker => "worker",
            Mpm::Prefork => "prefork",
        }
    }

    pub fn is_threaded(self) -> bool {
        self != Mpm::Prefork
    }

    /// Process/thread counts sized for a 2-core box. Several processes by
    /// default so multi-process behaviour is exercised; `single` gives exactly
    /// one child process, for tests that count state kept in a process.
    fn sizing(self, single: bool) -> &'static str {
        match (self, single) {
            (Mpm::Event | Mpm::Worker, false) => {
                "StartServers 2\nServerLimit 4\nThreadLimit 8\nThreadsPerChild 8\n\
                 MaxRequestWorkers 32\nMinSpareThreads 8\nMaxSpareThreads 24\n\
                 MaxConnectionsPerChild 0\n"
            }
            (Mpm::Event | Mpm::Worker, true) => {
                "StartServers 1\nServerLimit 1\nThreadLimit 8\nThreadsPerChild 8\n\
                 MaxRequestWorkers 8\nMinSpareThreads 1\nMaxSpareThreads 16\n\
                 MaxConnectionsPerChild 0\n"
            }
            (Mpm::Prefork, false) => {
                "StartServers 2\nMinSpareServers 2\nMaxSpareServers 4\nServerLimit 16\n\
                 MaxRequestWorkers 16\nMaxConnectionsPerChild 0\n"
            }
            (Mpm::Prefork, true) => {
                "StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\nServerLimit 1\n\
                 MaxRequestWorkers 1\nMaxConnectionsPerChild 0\n"
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    /// mod_wsgi_rs, the module this project builds.
    Ours,
    /// Debian's mod_wsgi (libapache2-mod-wsgi-py3), the behavioural referee.
    ModWsgi,
}

impl Module {
    /// The module struct's symbol, as given to LoadModule.
    pub fn load_name(self) -> &'static str {
        match self {
            Module::Ours => "wsgi_rs_module",
            Module::ModWsgi => "wsgi_module",
        }
    }

    /// The tag Apache prints in error log lines, as in `[wsgi_rs:error]`.
    pub fn log_tag(self) -> &'static str {
        match self {
            Module::Ours => "wsgi_rs",
            Module::ModWsgi => "wsgi",
        }
    }

    pub fn so_path(self) -> PathBuf {
        match self {
            Module::Ours => our_module_path(),
            Module::ModWsgi => PathBuf::from(MODULES_DIR).join("mod_wsgi.so"),
        }
    }
}

/// The module under test: ours unless `WSGI_TEST_MODULE=mod_wsgi`.
pub fn module() -> Module {
    static CHOICE: OnceLock<Module> = OnceLock::new();
    *CHOICE.get_or_init(|| match std::env::var("WSGI_TEST_MODULE").as_deref() {
        Err(_) | Ok("") | Ok("ours") | Ok("mod_wsgi_rs") => Module::Ours,
        Ok("mod_wsgi") => Module::ModWsgi,
        Ok(other) => panic!("WSGI_TEST_MODULE={other:?}: expected `mod_wsgi` (or unset for ours)"),
    })
}

/// Our cdylib. The test binary lives in target/<profile>/deps/; `cargo test`
/// builds the library there, `cargo build` uplifts a copy to
/// target/<profile>/. Take the newer one so a stale build never gets tested.
fn our_module_path() -> PathBuf {
    let exe = std::env::current_exe().expect("cannot find the test executable's path");
    let deps = exe
        .parent()
        .expect("test executable has no parent directory");
    let profile = deps.parent().expect("target/<profile>/deps has no parent");
    let newest = [profile, deps]
        .iter()
        .map(|dir| dir.join("libmod_wsgi_rs.so"))
        .filter_map(|so| Some((fs::metadata(&so).ok()?.modified().ok()?, so)))
        .max();
    match newest {
        Some((_, so)) => so,
        None => panic!(
            "our module libmod_wsgi_rs.so is in neither {} nor {}: build the cdylib first \
             (`cargo build`), or run the suite against Debian's module with WSGI_TEST_MODULE=mod_wsgi",
            profile.display(),
            deps.display()
        ),
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// `mkdir -p` that makes every directory it creates 0755, because Apache's
/// children run as www-data and must be able to traverse into the tree.
fn create_dirs(path: &Path) {
    let mut cur = PathBuf::new();
    for comp in path.components() {
        cur.push(comp);
        if !cur.exists() {
            match fs::create_dir(&cur) {
                Ok(()) => set_mode(&cur, 0o755),
                // Another test created it at the same moment.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => panic!("mkdir {}: {e}", cur.display()),
            }
        }
    }
}

fn write_file_mode(path: &Path, contents: &[u8], mode: u32) {
    if let Some(parent) = path.parent() {
        create_dirs(parent);
    }
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_mode(path, mode);
}

fn free_port() -> u16 {
    // The OS hands out an unused port; Apache binds it a moment later. A rare
    // race with another test is handled by retrying the start-up.
    let l = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: plain kill(2) on a pid this harness spawned.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Builder for one test's Apache.
pub struct Server {
    mpm: Mpm,
    module: Module,
    dir: tempfile::TempDir,
    snippets: Vec<String>,
    /// (relative path, contents, substitute `{root}`/`{port}`?)
    files: Vec<(String, Vec<u8>, bool)>,
    single_process: bool,
    /// Run as `apache2 -X` (httpd's single-process debug mode).
    debug_mode: bool,
}

impl Server {
    pub fn new(mpm: Mpm) -> Server {
        let base = std::env::temp_dir().join("mod_wsgi_rs-it");
        create_dirs(&base);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", mpm.name()))
            .tempdir_in(&base)
            .expect("cannot create a temporary ServerRoot");
        set_mode(dir.path(), 0o755);
        for sub in ["conf", "logs", "run", "htdocs"] {
            create_dirs(&dir.path().join(sub));
        }
        // var/ is where apps record things (close() calls …); they run as
        // www-data, so it has to be world-writable.
        let var = dir.path().join("var");
        fs::create_dir(&var).unwrap();
        set_mode(&var, 0o777);
        Server {
            mpm,
            module: module(),
            dir,
            snippets: Vec::new(),
            files: Vec::new(),
            single_process: false,
            debug_mode: false,
        }
    }

    /// Appends configuration; `{root}` becomes the ServerRoot (the temporary
    /// directory) and `{port}` the listening port.
    pub fn conf(mut self, snippet: &str) -> Server {
        self.snippets.push(snippet.to_string());
        if !snippet.ends_with('\n') {
            self.snippets.push("\n".to_string());
        }
        self
    }

    /// A text file under the root (mode 0644), with `{root}` and `{port}`
    /// substituted as in `conf`.
    pub fn file(mut self, rel_path: &str, contents: &str) -> Server {
        self.files
            .push((rel_path.to_string(), contents.as_bytes().to_vec(), true));
        self
    }

    /// A file written byte for byte.
    pub fn file_bytes(mut self, rel_path: &str, contents: &[u8]) -> Server {
        self.files
            .push((rel_path.to_string(), contents.to_vec(), false));
        self
    }

    /// Exactly one Apache child process (for tests counting per-process state).
    pub fn single_process(mut self) -> Server {
        self.single_process = true;
        self
    }

    /// Runs Apache as `apache2 -X`: one process, serving on threads, which
    /// never logs "resuming normal operations".
    pub fn debug_mode(mut self) -> Server {
        self.debug_mode = true;
        self
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn conf_path(&self) -> PathBuf {
        self.root().join("conf/httpd.conf")
    }

    /// The generated httpd.conf, as last written.
    pub fn conf_text(&self) -> String {
        fs::read_to_string(self.conf_path()).unwrap_or_default()
    }

    fn subst(&self, text: &str, port: u16) -> String {
        text.replace("{root}", &self.root().display().to_string())
            .replace("{port}", &port.to_string())
    }

    fn write_files(&self, port: u16) {
        for (rel, contents, substitute) in &self.files {
            let data = if *substitute {
                self.subst(&String::from_utf8_lossy(contents), port)
                    .into_bytes()
            } else {
                contents.clone()
            };
            write_file_mode(&self.root().join(rel), &data, 0o644);
        }
    }

    fn render_conf(&self, port: u16) -> String {
        let root = self.root().display().to_string();
        let mut c = String::new();
        c.push_str(&format!(
            "# Generated by the mod_wsgi_rs integration harness: {} MPM, module {:?}\n",
            self.mpm.name(),
            self.module
        ));
        c.push_str(&format!("ServerRoot \"{root}\"\n"));
        c.push_str(&format!("Listen 127.0.0.1:{port}\n"));
        c.push_str("ServerName 127.0.0.1\n");
        c.push_str(&format!("PidFile \"{root}/run/httpd.pid\"\n"));
        c.push_str(&format!("DefaultRuntimeDir \"{root}/run\"\n"));
        c.push_str(&format!("Mutex file:{root}/run default\n"));
        c.push_str(&format!("ErrorLog \"{root}/logs/error_log\"\n"));
        if is_root() {
            // Apache refuses to run children as root; this is what a real
            // Debian install uses, and it makes permission mistakes visible.
            c.push_str("User www-data\nGroup www-data\n");
        }
        c.push_str(&format!(
            "LoadModule mpm_{0}_module {MODULES_DIR}/mod_mpm_{0}.so\n",
            self.mpm.name()
        ));
        for m in [
            "authz_core",
            "authz_host",
            "mime",
            "alias",
            "dir",
            "env",
            "setenvif",
            "headers",
        ] {
            c.push_str(&format!("LoadModule {m}_module {MODULES_DIR}/mod_{m}.so\n"));
        }
        c.push_str(&format!(
            "LoadModule {} \"{}\"\n",
            self.module.load_name(),
            self.module.so_path().display()
        ));
        // A per-module level needs the module loaded first.
        match self.module {
            Module::Ours => c.push_str("LogLevel info wsgi_rs:debug\n"),
            Module::ModWsgi => c.push_str("LogLevel info\n"),
        }
        c.push_str("TypesConfig /etc/mime.types\n");
        c.push_str(&format!("DocumentRoot \"{root}/htdocs\"\n"));
        c.push_str("<Directory />\n    AllowOverride None\n    Require all denied\n</Directory>\n");
        c.push_str(&format!(
            "<Directory \"{root}\">\n    Require all granted\n</Directory>\n"
        ));
        // Far above any deliberate timeout of a test (1-4 s), so that a
        // bound telling the two apart leaves a loaded machine room; a
        // test that needs Apache's Timeout (or the daemon socket-timeout
        // it sets by default) sets its own.
        c.push_str("Timeout 60\n");
        c.push_str(self.mpm.sizing(self.single_process));
        c.push_str("# ---- test configuration ----\n");
        for s in &self.snippets {
            c.push_str(&self.subst(s, port));
        }
        c
    }

    fn write_conf(&self, port: u16) -> PathBuf {
        let path = self.conf_path();
        write_file_mode(&path, self.render_conf(port).as_bytes(), 0o644);
        path
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(APACHE);
        // A clean environment: the children embed Python, and a developer's
        // PYTHONPATH/PYTHONHOME or pyenv shims must not leak into them.
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            // Its own process group: on shutdown Apache signals its whole
            // process group (killpg), which would otherwise hit the test runner.
            .process_group(0);
        for keep in ["RUST_BACKTRACE", "RUST_LOG"] {
            if let Ok(v) = std::env::var(keep) {
                cmd.env(keep, v);
            }
        }
        cmd
    }

    /// Runs `apache2 -t` on the configuration instead of starting it, for
    /// configuration-error tests. Returns the exit status and stdout+stderr.
    pub fn start_expect_failure(&self) -> (ExitStatus, String) {
        let port = free_port();
        self.write_files(port);
        let conf = self.write_conf(port);
        let out = self
            .command()
            .arg("-t")
            .arg("-f")
            .arg(&conf)
            .output()
            .expect("cannot run apache2 -t");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status, text)
    }

    /// Writes everything, starts Apache in the foreground and waits until it
    /// serves. Panics with the logs if it exits or never listens.
    pub fn start(self) -> Running {
        let error_log = self.root().join("logs/error_log");
        let startup_log = self.root().join("logs/startup.log");
        let mut failure = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            self.write_files(port);
            let conf = self.write_conf(port);
            let _ = fs::remove_file(&error_log);
            let out = fs::File::create(&startup_log).unwrap();
            let mut child = self
                .command()
                .arg("-f")
                .arg(&conf)
                .arg(if self.debug_mode {
                    "-X"
                } else {
                    "-DFOREGROUND"
                })
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {APACHE}: {e}"));
            let marks = usize::from(!self.debug_mode);
            match wait_serving(&mut child, &error_log, port, marks, START_TIMEOUT) {
                Ok(generation) => {
                    return Running {
                        port,
                        mpm: self.mpm,
                        module: self.module,
                        child,
                        generation,
                        conf_path: conf,
                        dir: Some(self.dir),
                    };
                }
                Err(why) => {
                    signal(child.id(), libc::SIGKILL);
                    let _ = child.wait();
                    let logs = format!(
                        "{why}\n--- startup output ---\n{}\n--- error log ---\n{}",
                        fs::read_to_string(&startup_log).unwrap_or_default(),
                        fs::read_to_string(&error_log).unwrap_or_default()
                    );
                    if logs.contains("Address already in use") {
                        failure = logs; // lost a port race with another test
                        continue;
                    }
                    panic!(
                        "Apache ({} MPM, {:?}) did not start: {logs}\n--- httpd.conf ---\n{}",
                        self.mpm.name(),
                        self.module,
                        self.conf_text()
                    );
                }
            }
        }
        panic!("Apache could not get a free port after 5 attempts: {failure}");
    }
}

/// Waits until the error log shows `want_generation` ready marks and the
/// port accepts connections. Returns the number of ready marks seen.
fn wait_serving(
    child: &mut Child,
    error_log: &Path,
    port: u16,
    want_generation: usize,
    timeout: Duration,
) -> Result<usize, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("apache2 exited ({status})"));
        }
        let log = fs::read_to_string(error_log).unwrap_or_default();
        let generation = log.matches(READY_MARK).count();
        if generation >= want_generation
            && TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
                .is_ok()
        {
            return Ok(generation);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not serving on 127.0.0.1:{port} after {timeout:?} (ready marks {generation}, wanted {want_generation})"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A started Apache. Dropping it stops Apache and removes its directory
/// (kept when `WSGI_TEST_KEEP` is set, for post-mortems).
pub struct Running {
    pub port: u16,
    pub mpm: Mpm,
    pub module: Module,
    child: Child,
    generation: usize,
    conf_path: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl Running {
    pub fn root(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    /// A path under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn conf_path(&self) -> &Path {
        &self.conf_path
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let req = http::build_request(method, path, self.port, headers, body);
        let (data, reset) = http::exchange(self.port, &req);
        http::parse_response(&data, method == "HEAD", reset)
    }

    /// GET `path`, waiting up to `patience` for each read instead of the
    /// harness's 10 s: for a request whose answer may rightly come late on
    /// a loaded machine (it waits on something the test does meanwhile, or
    /// queues behind process replacements) when how late is not what the
    /// test asserts. The server's own timeouts must be as patient.
    pub fn get_patiently(&self, path: &str, patience: Duration) -> Response {
        let mut c = self.connect();
        c.set_read_timeout(Some(patience)).unwrap();
        c.write_all(&http::build_request("GET", path, self.port, &[], b""))
            .unwrap();
        let (data, reset) = http::read_to_eof(&mut c);
        http::parse_response(&data, false, reset)
    }

    /// Sends raw bytes on a new connection and reads to EOF (10 s timeout).
    pub fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        http::exchange(self.port, bytes).0
    }

    /// `raw`, parsed. `head`: the request was HEAD.
    pub fn raw_response(&self, bytes: &[u8], head: bool) -> Response {
        let (data, reset) = http::exchange(self.port, bytes);
        http::parse_response(&data, head, reset)
    }

    /// A connection with the harness timeouts, for tests that drive the
    /// socket themselves (timing, disconnecting mid-response).
    pub fn connect(&self) -> TcpStream {
        http::connect(self.port)
    }

    pub fn error_log(&self) -> String {
        let bytes = fs::read(self.path("logs/error_log")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Polls the error log for `needle`. Useful because log lines from the
    /// app may be written after the response has been sent.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.error_log().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls for a file under the root (apps record events in var/) and
    /// returns its contents.
    pub fn wait_file(&self, rel: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(s) = fs::read_to_string(self.path(rel)) {
                if !s.is_empty() {
                    return Some(s);
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Graceful restart (SIGUSR1), then wait until the new generation serves.
    pub fn graceful(&mut self) {
        self.signal_restart(libc::SIGUSR1, "graceful restart");
    }

    /// Hard restart (SIGHUP), then wait until the new generation serves.
    pub fn restart(&mut self) {
        self.signal_restart(libc::SIGHUP, "restart");
    }

    fn signal_restart(&mut self, sig: libc::c_int, what: &str) {
        let want = self.generation + 1;
        signal(self.child.id(), sig);
        let log = self.path("logs/error_log");
        match wait_serving(
            &mut self.child,
            &log,
            self.port,
            want,
            Duration::from_secs(20),
        ) {
            Ok(generation) => self.generation = generation,
            Err(why) => panic!(
                "Apache did not come back after a {what}: {why}\n--- error log ---\n{}",
                self.error_log()
            ),
        }
    }

    /// `apache2 -k graceful-stop` (SIGWINCH): Apache stops listening and
    /// exits once its children have finished what they are doing.
    pub fn graceful_stop(&self) {
        signal(self.child.id(), libc::SIGWINCH);
    }

    /// Sends `sig` to the Apache parent.
    pub fn send_signal(&self, sig: libc::c_int) {
        signal(self.child.id(), sig);
    }

    /// Waits up to `patience` for the Apache parent to exit; true if it did.
    pub fn wait_exit(&mut self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    /// Pids of the Apache parent's direct children, from /proc.
    pub fn child_pids(&self) -> Vec<u32> {
        children_of(self.child.id())
    }

    /// Sets a file's mtime at least 1 s past both now and its current mtime,
    /// so a reload check sees a change even with 1-second mtime granularity.
    pub fn touch(&self, rel: &str) {
        let p = self.path(rel);
        let current = fs::metadata(&p)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let base = current.max(SystemTime::now());
        let f = fs::File::options()
            .write(true)
            .open(&p)
            .unwrap_or_else(|e| panic!("touch {}: {e}", p.display()));
        f.set_modified(base + Duration::from_secs(2)).unwrap();
    }

    /// (Re)writes a text file under the root with the usual modes; `{root}`
    /// and `{port}` are substituted.
    pub fn write_file(&self, rel: &str, contents: &str) {
        let text = contents
            .replace("{root}", &self.root().display().to_string())
            .replace("{port}", &self.port.to_string());
        let p = self.path(rel);
        // Rewrite in place (not rename) so the inode and directory stay as a
        // user editing the file would leave them.
        let mut f = fs::File::create(&p).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        f.write_all(text.as_bytes()).unwrap();
        set_mode(&p, 0o644);
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return; // already gone (and reaped: its pid must not be signalled)
        }
        let pid = self.child.id();
        let kids = self.child_pids();
        signal(pid, libc::SIGTERM);
        // Children normally exit within milliseconds of the parent's SIGTERM.
        // One that hangs in its shutdown (Debian's mod_wsgi does, destroying a
        // sub-interpreter under the threaded MPMs) would make Apache wait about
        // 10 s before it SIGKILLs it; do that sooner so the suite stays fast.
        // Clean shutdown is asserted by its own test, not here.
        let grace = Instant::now() + Duration::from_millis(1500);
        while kids.iter().any(|&k| is_apache(k)) && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(25));
        }
        for &k in &kids {
            if is_apache(k) {
                signal(k, libc::SIGKILL);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut exited = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        if !exited {
            signal(pid, libc::SIGKILL);
            let _ = self.child.wait();
        }
    }

    /// Stops Apache with SIGTERM and reports how it went: the time until the
    /// parent exited and whether it had to escalate to killing children
    /// (AH00045/AH00046 in the log). Nothing is forced within `patience`.
    pub fn shutdown(mut self, patience: Duration) -> (Duration, bool, String) {
        let start = Instant::now();
        signal(self.child.id(), libc::SIGTERM);
        let mut exited = false;
        while start.elapsed() < patience {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let took = start.elapsed();
        let log = self.error_log();
        let escalated = !exited || log.contains("AH00045") || log.contains("AH00046");
        // Drop finishes the job (forcefully if needed) and removes the files.
        (took, escalated, log)
    }
}

fn is_apache(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "apache2")
        && fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may contain spaces, so split after
        // the last ')'.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next();
        let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) && state != Some("Z") {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

impl Drop for Running {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The most useful thing when a test fails is what Apache said.
            let log = self.error_log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!(
                "--- last {} lines of {}/logs/error_log ({} MPM, {:?}) ---\n{}",
                tail.len(),
                self.root().display(),
                self.mpm.name(),
                self.module,
                tail.join("\n")
            );
        }
        self.stop();
        if let Some(dir) = self.dir.take() {
            if std::env::var_os("WSGI_TEST_KEEP").is_some() {
                eprintln!("keeping {}", dir.keep().display());
            }
        }
    }
}
