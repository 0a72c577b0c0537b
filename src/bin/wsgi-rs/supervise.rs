//! Running Apache in the foreground on wsgi-rs's behalf: starting it in a
//! process group of its own, telling when it listens, forwarding Ctrl-C and
//! SIGTERM as a stop, and making sure that when wsgi-rs returns no Apache
//! child or daemon process is left, not even a zombie.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use crate::failure::{Failure, Outcome};

/// The last stop signal received (0 for none); set by the signal handler.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// How many stop signals arrived: a second one means "stop now".
static STOP_COUNT: AtomicI32 = AtomicI32::new(0);

/// Signal handler: records the stop request.
extern "C" fn on_stop_signal(signal: libc::c_int) {
    STOP_SIGNAL.store(signal, Ordering::SeqCst);
    STOP_COUNT.fetch_add(1, Ordering::SeqCst);
}

/// Catches SIGINT, SIGTERM and SIGHUP so they stop Apache instead of
/// killing wsgi-rs and leaving Apache running.
pub fn catch_stop_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to atomics, which is
        // async-signal-safe; sigaction is given a fully initialised struct.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Whether a stop signal arrived.
pub fn stop_requested() -> bool {
    STOP_COUNT.load(Ordering::SeqCst) > 0
}

/// A signal's name, for messages.
fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// How long Apache gets to stop its children and daemon processes (mod_wsgi
/// gives a daemon 5 s to finish its requests) before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How long Apache gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the supervisor looks at Apache.
const POLL: Duration = Duration::from_millis(20);

/// How Apache's run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// Stopped on our request (a signal to wsgi-rs).
    Stopped,
    /// Apache exited by itself with this status text.
    Exited(String),
}

/// A running foreground Apache and its process group.
pub struct Apache {
    /// Apache's parent process; its pid is also the process group id.
    pid: libc::pid_t,
    /// How Apache ended, once it has.
    finished: Option<String>,
    /// Set once the group has been stopped and swept: its id may then be
    /// reused by unrelated processes and must not be signalled again.
    stopped: bool,
}

/// Text for a raw wait status.
fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status}")
    }
}

impl Apache {
    /// Starts `httpd -DFOREGROUND` in a new process group, so a Ctrl-C at the
    /// terminal reaches only wsgi-rs, which then stops Apache in order.
    pub fn start(httpd: &Path, server_root: &Path, config: &Path) -> Outcome<Apache> {
        // Orphans of the group (a daemon process whose parent died) are
        // handed to us, so they can be waited for and reaped.
        // SAFETY: prctl with these arguments only changes this process's
        // attribute.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
        let mut command = Command::new(httpd);
        command
            .arg("-d")
            .arg(server_root)
            .arg("-f")
            .arg(config)
            .arg("-DFOREGROUND")
            .process_group(0);
        // SAFETY: runs in the forked child before exec; prctl is a plain
        // system call and allocates nothing.
        unsafe {
            command.pre_exec(|| {
                // Should wsgi-rs itself be killed, Apache is told to stop too.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| {
            Failure::new(
                format!("could not start {}: {e}", httpd.display()),
                "check that Apache httpd is installed and executable",
            )
        })?;
        Ok(Apache {
            pid: child.id() as libc::pid_t,
            finished: None,
            stopped: false,
        })
    }

    /// Reaps every exited member of the group; records Apache's own end.
    fn reap(&mut self) {
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid on our own process group, without blocking.
            let pid = unsafe { libc::waitpid(-self.pid, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            if pid == self.pid {
                self.finished = Some(describe_status(status));
            }
        }
    }

    /// Whether any process of Apache's session is left.
    fn group_alive(&self) -> bool {
        // SAFETY: signal 0 only checks whether the group has members.
        unsafe { libc::kill(-self.pid, 0) == 0 }
    }

    /// Signals every process of Apache's session.
    fn signal_group(&self, signal: libc::c_int) {
        // SAFETY: the group is Apache's, created by `start`.
        unsafe {
            libc::kill(-self.pid, signal);
        }
    }

    /// Waits until Apache listens on `addresses`. `Ok(None)` when it is up;
    /// `Ok(Some(ending))` when a stop was asked for or Apache exited first.
    pub fn wait_until_listening(&mut self, addresses: &[SocketAddr]) -> Outcome<Option<Ending>> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.reap();
            if let Some(status) = &self.finished {
                return Ok(Some(Ending::Exited(status.clone())));
            }
            // Looked at before a stop request: Apache is still running until
            // we forward the stop, and a client may well have been served
            // already, so "serving" is still the truth.
            if addresses
                .iter()
                .any(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok())
            {
                return Ok(None);
            }
            if stop_requested() {
                return Ok(Some(Ending::Stopped));
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(
                    format!(
                        "Apache did not start listening within {}s",
                        START_TIMEOUT.as_secs()
                    ),
                    "see Apache's messages above",
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Runs until a stop signal arrives or Apache exits by itself.
    pub fn wait(&mut self) -> Ending {
        loop {
            self.reap();
            if let Some(status) = &self.finished {
                return Ending::Exited(status.clone());
            }
            if stop_requested() {
                return Ending::Stopped;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Stops Apache and everything it started, and waits until the whole
    /// process group is gone.
    pub fn stop(&mut self) {
        if self.finished.is_none() {
            let signal = STOP_SIGNAL.load(Ordering::SeqCst);
            if signal != 0 {
                log::info!("{} received, stopping Apache", signal_name(signal));
            }
            // SAFETY: Apache's parent is our child; SIGTERM is its "stop".
            unsafe {
                libc::kill(self.pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + STOP_GRACE;
            let count = STOP_COUNT.load(Ordering::SeqCst);
            while self.finished.is_none() {
                if Instant::now() >= deadline {
                    log::warn!(
                        "Apache did not stop within {}s; killing it",
                        STOP_GRACE.as_secs()
                    );
                    break;
                }
                if STOP_COUNT.load(Ordering::SeqCst) > count {
                    log::warn!("second stop signal: killing Apache");
                    break;
                }
                std::thread::sleep(POLL);
                self.reap();
            }
        }
        self.sweep();
        self.stopped = true;
    }

    /// Kills whatever is left in Apache's process group and reaps it.
    fn sweep(&mut self) {
        self.reap();
        if !self.group_alive() {
            return;
        }
        self.signal_group(libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.group_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            self.reap();
        }
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        if !self.stopped {
            self.stop();
        }
    }
}

/// The socket addresses `host:port` stands for.
pub fn resolve(host: &str, port: u16) -> Outcome<Vec<SocketAddr>> {
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default();
    if addresses.is_empty() {
        return Err(Failure::new(
            format!("the host '{host}' cannot be resolved"),
            "pass --host an IP address or a name this machine can resolve",
        ));
    }
    Ok(addresses)
}

/// Refuses a port something else already listens on, before Apache would
/// fail on it with a less obvious message.
pub fn ensure_port_free(host: &str, port: u16, addresses: &[SocketAddr]) -> Outcome<()> {
    for address in addresses {
        if let Err(error) = std::net::TcpListener::bind(address) {
            let (cause, remedy) = match error.kind() {
                std::io::ErrorKind::AddrInUse => (
                    format!("port {port} on {host} is already in use"),
                    "stop whatever listens there or choose another port with --port".to_owned(),
                ),
                std::io::ErrorKind::PermissionDenied => (
                    format!("listening on port {port} of {host} is not permitted"),
                    "ports below 1024 need root; choose another with --port".to_owned(),
                ),
                _ => (
                    format!("cannot listen on {address}: {error}"),
                    "check --host and --port".to_owned(),
                ),
            };
            return Err(Failure::new(cause, remedy));
        }
    }
    Ok(())
}
