//! Back ends on hosts of their own, on one machine: a network namespace per
//! back end (`ip netns`), joined to the test's namespace by a veth pair with
//! addresses the test picks, and an Apache with the module under test
//! listening inside it. Everything is removed on drop, a failing test
//! included; namespaces left behind by a test process that was killed are
//! removed by the next run.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::{parse_response, Response};
use super::server::{module, Module, APACHE, MODULES_DIR};

/// Prefix of every namespace these tests create: `wsgirs-PID-N`.
const PREFIX: &str = "wsgirs-";

/// The port back ends listen on (each namespace has all ports to itself).
pub const BACKEND_PORT: u16 = 8080;

/// Runs `ip` with `args`; the error says what failed.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The output of `ip` with `args`, or "" when it fails.
fn ip_output(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Removes the namespaces of test processes that no longer run.
fn remove_stale() {
    for line in ip_output(&["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only asks whether the pid exists.
        let alive = unsafe { libc::kill(pid, 0) == 0 };
        if !alive {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Whether network namespaces and veth pairs can be made here (root, a
/// kernel and container that allow them), or why not.
pub fn probe() -> Result<(), String> {
    remove_stale();
    let name = format!("{PREFIX}{}-probe", std::process::id());
    ip(&["netns", "add", &name])?;
    let made = ip(&[
        "-n", &name, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1",
    ]);
    let _ = ip(&["netns", "del", &name]);
    made
}

/// A network namespace with a veth pair: `host_addr` on this side,
/// `addr` inside.
pub struct Netns {
    /// `wsgirs-PID-N`.
    pub name: String,
    /// The address inside the namespace.
    pub addr: Ipv4Addr,
    /// The address on this side of the pair.
    pub host_addr: Ipv4Addr,
    /// The interface on this side.
    host_if: String,
}

impl Netns {
    /// Namespace `index` of this test process, on the /30 network
    /// 10.213.`block`.0; `create_all` picks blocks no route uses.
    fn create(index: usize, block: u8) -> Result<Netns, String> {
        let pid = std::process::id();
        let name = format!("{PREFIX}{pid}-{index}");
        // Interface names have at most 15 bytes.
        let host_if = format!("wr{}h{index}", pid % 10_000_000);
        let host_addr = Ipv4Addr::new(10, 213, block, 1);
        let addr = Ipv4Addr::new(10, 213, block, 2);
        ip(&["netns", "add", &name])?;
        let ns = Netns {
            name,
            addr,
            host_addr,
            host_if,
        };
        let n = ns.name.as_str();
        let host = ns.host_if.as_str();
        ip(&[
            "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", n,
        ])?;
        ip(&["addr", "add", &format!("{host_addr}/30"), "dev", host])?;
        ip(&["link", "set", host, "up"])?;
        ip(&["-n", n, "addr", "add", &format!("{addr}/30"), "dev", "eth0"])?;
        ip(&["-n", n, "link", "set", "eth0", "up"])?;
        ip(&["-n", n, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `count` namespaces, each on a /30 of 10.213.0.0/16 that no route of
    /// this machine uses yet.
    pub fn create_all(count: usize) -> Result<Vec<Netns>, String> {
        remove_stale();
        let routes = ip_output(&["-4", "route", "show"]);
        let start = (std::process::id() % 250) as usize;
        let free: Vec<u8> = (0..=255usize)
            .map(|i| ((start + i) % 256) as u8)
            .filter(|block| !routes.contains(&format!("10.213.{block}.")))
            .take(count)
            .collect();
        if free.len() < count {
            return Err("no free /30 in 10.213.0.0/16".into());
        }
        free.iter()
            .enumerate()
            .map(|(index, block)| Netns::create(index + 1, *block))
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and with it
        // this end; the second command covers a namespace kept alive.
        let _ = ip(&["netns", "del", &self.name]);
        let _ = ip(&["link", "del", &self.host_if]);
    }
}

/// A plain GET on a fresh connection (`Connection: close`) to `addr`; any
/// failure to get a whole response is an error.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read from {addr}: {e} after {} bytes", raw.len())),
        }
    }
    let response = parse_response(&raw, false, false);
    if response.status == 0 || !response.complete {
        return Err(format!(
            "incomplete response from {addr}: {:?}",
            String::from_utf8_lossy(&raw)
        ));
    }
    Ok(response)
}

/// An Apache with the module under test, listening on
/// `addr`:[`BACKEND_PORT`] inside namespace `netns`.
pub struct Backend {
    /// Its name (the app answers with it).
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    netns: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Backend {
    /// Writes the back end's files: `conf` (with `{root}` replaced, and
    /// `{front}` by the address of this side of the pair) after a base
    /// configuration, and `files` (relative path, contents, `{root}`
    /// replaced) under its root. It is not started.
    pub fn new(name: &str, netns: &Netns, conf: &str, files: &[(&str, String)]) -> Backend {
        let base = std::env::temp_dir().join("mod_wsgi_rs-it");
        fs::create_dir_all(&base).unwrap();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(&base)
            .expect("cannot create a back end's root");
        let root = dir.path().display().to_string();
        for sub in ["conf", "logs", "run", "var"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let backend = Backend {
            name: name.to_owned(),
            addr: SocketAddr::from((netns.addr, BACKEND_PORT)),
            netns: netns.name.clone(),
            dir,
            child: None,
        };
        // Apache's children run as www-data: they need to read the tree,
        // and the application may write in var/.
        set_tree_mode(backend.root());
        let var = std::os::unix::fs::PermissionsExt::from_mode(0o777);
        fs::set_permissions(backend.path("var"), var).unwrap();
        for (rel, contents) in files {
            backend.write_file(rel, &contents.replace("{root}", &root));
        }
        let (module_name, so) = (module().load_name(), module().so_path());
        let log_level = match module() {
            Module::Ours => "LogLevel info wsgi_rs:debug",
            Module::ModWsgi => "LogLevel info",
        };
        let text = format!(
            "ServerRoot \"{root}\"\n\
             Listen {}\n\
             ServerName {name}\n\
             PidFile \"{root}/run/httpd.pid\"\n\
             DefaultRuntimeDir \"{root}/run\"\n\
             Mutex file:{root}/run default\n\
             ErrorLog \"{root}/logs/error_log\"\n\
             User www-data\nGroup www-data\n\
             LoadModule mpm_event_module {MODULES_DIR}/mod_mpm_event.so\n\
             LoadModule authz_core_module {MODULES_DIR}/mod_authz_core.so\n\
             LoadModule authz_host_module {MODULES_DIR}/mod_authz_host.so\n\
             LoadModule {module_name} \"{}\"\n\
             {log_level}\n\
             <Directory />\n    Require all denied\n</Directory>\n\
             <Directory \"{root}\">\n    Require all granted\n</Directory>\n\
             Timeout 10\n\
             StartServers 1\nServerLimit 2\nThreadsPerChild 8\nMaxRequestWorkers 16\n\
             # ---- test configuration ----\n{}\n",
            backend.addr,
            so.display(),
            conf.replace("{root}", &root)
                .replace("{front}", &netns.host_addr.to_string())
        );
        backend.write_file("conf/httpd.conf", &text);
        backend
    }

    /// The back end's root directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Writes a file under the root (readable by Apache's children),
    /// replacing it at once (a new file renamed over the old one).
    pub fn write_file(&self, rel: &str, contents: &str) {
        let path = self.path(rel);
        let fresh = path.with_extension("new");
        fs::write(&fresh, contents).unwrap();
        fs::set_permissions(&fresh, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        fs::rename(&fresh, &path).unwrap();
    }

    /// Its error log so far.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.path("logs/error_log")).unwrap_or_default()
    }

    /// Starts Apache in its namespace and waits (up to `timeout`) until
    /// `ready_path` answers 200.
    pub fn start(&mut self, ready_path: &str, timeout: Duration) {
        assert!(self.child.is_none(), "{} already runs", self.name);
        let out = fs::File::create(self.path("logs/startup.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns, APACHE, "-DFOREGROUND", "-f"])
            .arg(self.path("conf/httpd.conf"))
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            // Its own process group, which Drop kills as a whole.
            .process_group(0)
            .spawn()
            .expect("cannot run ip netns exec apache2");
        self.child = Some(child);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = get(self.addr, ready_path, Duration::from_secs(2)) {
                if r.status == 200 {
                    return;
                }
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "back end {} did not serve {ready_path} within {timeout:?} ({exited:?}):\n{}\n{}",
                self.name,
                fs::read_to_string(self.path("logs/startup.log")).unwrap_or_default(),
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `apache2 -k graceful-stop` (SIGWINCH): requests in flight finish.
    /// Waits up to `timeout` for Apache to exit; whether it did.
    pub fn graceful_stop(&mut self, timeout: Duration) -> bool {
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        // SAFETY: kill(2) on the Apache parent this back end started.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGWINCH) };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                self.kill_rest();
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Kills whatever is left of its process group.
    fn kill_rest(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the process group this back end started.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill_rest();
    }
}

/// Makes `dir` traversable and readable by Apache's children.
fn set_tree_mode(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}
