//! Apache restarts under load with a daemon group: `apache2 -k graceful`
//! (SIGUSR1) replaces the group's processes without failing or dropping a
//! request, and `graceful-stop` (SIGWINCH) lets requests in flight in
//! daemon processes finish before everything stops.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::common::apps::pattern;
use crate::common::http::{build_request, find, IO_TIMEOUT};
use crate::common::{referee_differs, wait_for, wait_for_count, StopOnDrop};
use crate::common::{Mpm, Running, Server};
use crate::daemon::{daemon_pids, wait_daemons};

/// Echoes a request body, or answers `pid=N` to a GET; always with the
/// serving pid in `X-Pid`. `/hold/NAME` leaves `var/held-NAME` and waits
/// for `var/release` first: a request held in flight as long as a test
/// wants.
const APP: &str = r#"
import os, time
def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path.startswith('/hold/'):
        open('{root}/var/held-' + path[len('/hold/'):], 'w').close()
        while not os.path.exists('{root}/var/release'):
            time.sleep(0.05)
    data = environ['wsgi.input'].read()
    body = data if data else ('pid=%d\n' % os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('Content-Length', str(len(body))),
                              ('X-Pid', str(os.getpid()))])
    return [body]
"#;

/// Apache with daemon group `group` (2 processes x `threads`) serving /app.
fn server(mpm: Mpm, group: &str, threads: u32) -> Running {
    Server::new(mpm)
        .file("app.wsgi", APP)
        .conf(&format!(
            "WSGIDaemonProcess {group} processes=2 threads={threads} display-name=%{{GROUP}}\n\
             WSGIScriptAlias /app {{root}}/app.wsgi process-group={group}\n"
        ))
        .start()
}

/// How one request ended.
enum Outcome {
    /// 200 with the expected body; the serving pid.
    Served(u32),
    /// The connection, kept from an earlier request, was closed before any
    /// byte of an answer: the server closed an idle keep-alive connection
    /// as the request went out (Apache's children do when a graceful
    /// restart asks them to go). Every HTTP client sends the request again
    /// on a new connection, and so does this one.
    ClosedIdle,
    /// Anything else: a wrong status, a short or wrong body, a reset.
    Failed(String),
}

/// A keep-alive HTTP/1.1 client.
struct Client {
    port: u16,
    stream: Option<TcpStream>,
}

impl Client {
    fn new(port: u16) -> Client {
        Client { port, stream: None }
    }

    /// Sends `request` (expecting `expect` back, or a `pid=` line when it
    /// is empty) on the kept connection, or a new one.
    fn send(&mut self, request: &[u8], expect: &[u8]) -> Outcome {
        let reused = self.stream.is_some();
        let mut stream = match self.stream.take() {
            Some(s) => s,
            None => match TcpStream::connect(("127.0.0.1", self.port)) {
                Ok(s) => {
                    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                    s
                }
                Err(e) => return Outcome::Failed(format!("connect: {e}")),
            },
        };
        if let Err(e) = stream.write_all(request) {
            return if reused {
                Outcome::ClosedIdle
            } else {
                Outcome::Failed(format!("write: {e}"))
            };
        }
        let mut data = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let head_end = loop {
            if let Some(at) = find(&data, b"\r\n\r\n") {
                break at + 4;
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) if data.is_empty() && reused => return Outcome::ClosedIdle,
                Ok(0) => return Outcome::Failed(format!("closed after {} bytes", data.len())),
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Outcome::Failed(format!("read: {e} after {} bytes", data.len())),
            }
        };
        let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
        let status = head.split(' ').nth(1).unwrap_or("").to_string();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        };
        let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) else {
            return Outcome::Failed(format!("no Content-Length: {head}"));
        };
        while data.len() < head_end + length {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Outcome::Failed(format!("read body: {e}")),
            }
        }
        let body = &data[head_end..];
        if status != "200" {
            return Outcome::Failed(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        }
        let pid = header("x-pid").and_then(|p| p.parse().ok()).unwrap_or(0);
        let right = if expect.is_empty() {
            body == format!("pid={pid}\n").as_bytes()
        } else {
            body == expect
        };
        if !right {
            return Outcome::Failed(format!("wrong body ({} bytes)", body.len()));
        }
        if header("connection").as_deref() != Some("close") {
            self.stream = Some(stream);
        }
        Outcome::Served(pid)
    }
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    served: usize,
    reconnects: usize,
    failures: Vec<String>,
    pids: HashSet<u32>,
}

/// Runs `clients` keep-alive clients against /app (alternating a 64 KiB
/// POST echo and a GET) until `during` returns; `during` gets the number
/// of answers so far and the pids that served since it last cleared them.
fn load(
    port: u16,
    clients: usize,
    during: impl FnOnce(&AtomicUsize, &Mutex<HashSet<u32>>),
) -> Tally {
    let stop = AtomicBool::new(false);
    let answered = AtomicUsize::new(0);
    let recent = Mutex::new(HashSet::new());
    let base = pattern(64 * 1024 + 64);
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let (stop, answered, recent, base) = (&stop, &answered, &recent, &base);
                scope.spawn(move || {
                    let mut client = Client::new(port);
                    let mut tally = Tally::default();
                    let mut n = 0usize;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let body: &[u8] = if (i + n) % 2 == 0 {
                            let off = (i * 7 + n) % 64;
                            &base[off..off + 64 * 1024]
                        } else {
                            b""
                        };
                        let method = if body.is_empty() { "GET" } else { "POST" };
                        let req = build_request(
                            method,
                            "/app",
                            port,
                            &[("Connection", "keep-alive")],
                            body,
                        );
                        let mut outcome = client.send(&req, body);
                        if let Outcome::ClosedIdle = outcome {
                            tally.reconnects += 1;
                            outcome = client.send(&req, body);
                            if let Outcome::ClosedIdle = outcome {
                                outcome = Outcome::Failed("closed twice".into());
                            }
                        }
                        match outcome {
                            Outcome::Served(pid) => {
                                tally.served += 1;
                                tally.pids.insert(pid);
                                recent.lock().unwrap().insert(pid);
                            }
                            Outcome::Failed(why) => tally.failures.push(why),
                            Outcome::ClosedIdle => unreachable!(),
                        }
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    tally
                })
            })
            .collect();
        during(&answered, &recent);
        stop.store(true, Ordering::SeqCst);
        let mut all = Tally::default();
        for h in handles {
            let t = h.join().expect("a client thread panicked");
            all.served += t.served;
            all.reconnects += t.reconnects;
            all.failures.extend(t.failures);
            all.pids.extend(t.pids);
        }
        all
    })
}

/// Waits until a daemon process not in `old` has answered a request.
fn wait_new_process_serves(recent: &Mutex<HashSet<u32>>, old: &HashSet<u32>, what: &str) {
    let served = wait_for(Duration::from_secs(60), || {
        recent
            .lock()
            .unwrap()
            .iter()
            .any(|p| !old.contains(p))
            .then_some(())
    });
    assert!(
        served.is_some(),
        "no new daemon process served after {what}"
    );
}

/// 12 keep-alive clients, alternating 64 KiB POST echoes and GETs, against
/// a group of 2 processes x 8 threads; meanwhile four graceful restarts,
/// one of which changes the group's configuration (`threads=8` becomes 6).
/// After each, the test waits until a process of the new generation has
/// answered. No request may fail or be dropped, and the group ends with
/// exactly its 2 processes.
fn graceful_restarts_lose_nothing(mpm: Mpm) {
    if referee_differs("mod_wsgi 4.9.4 answers 503 while its daemons restart on a graceful restart")
    {
        return;
    }
    let group = "graceful";
    let mut s = server(mpm, group, 8);
    let first = wait_daemons(&s, group, 2, Duration::from_secs(30));
    let port = s.port;
    let conf = s.conf_path().to_path_buf();
    let mut seen_old: HashSet<u32> = first.into_iter().collect();
    let tally = load(port, 12, |answered, recent| {
        wait_for_count(answered, 24, Duration::from_secs(60));
        for round in 0..4 {
            if round == 2 {
                let text = std::fs::read_to_string(&conf).unwrap();
                std::fs::write(&conf, text.replace("threads=8", "threads=6")).unwrap();
            }
            seen_old.extend(daemon_pids(&s, group));
            seen_old.extend(recent.lock().unwrap().drain());
            s.graceful();
            wait_new_process_serves(recent, &seen_old, &format!("graceful restart {round}"));
            let so_far = answered.load(Ordering::SeqCst);
            wait_for_count(answered, so_far + 24, Duration::from_secs(60));
        }
    });
    eprintln!(
        "{} MPM: {} served, {} failed, {} keep-alive reconnects, {} daemon pids",
        mpm.name(),
        tally.served,
        tally.failures.len(),
        tally.reconnects,
        tally.pids.len()
    );
    assert!(
        tally.failures.is_empty(),
        "{} of {} requests failed across graceful restarts: {:?}",
        tally.failures.len(),
        tally.served + tally.failures.len(),
        &tally.failures[..tally.failures.len().min(20)]
    );
    // The old generations' processes stop once the new ones serve.
    let last = wait_daemons(&s, group, 2, Duration::from_secs(60));
    assert!(
        last.iter().all(|p| !seen_old.contains(p)),
        "a process of an old generation still runs: {last:?}"
    );
    let log = s.error_log();
    for mark in ["Segmentation fault", "exit signal", "long lost child"] {
        assert!(!log.contains(mark), "{mark} in the error log:\n{log}");
    }
}
per_mpm!(graceful_restarts_lose_nothing);

/// `apache2 -k graceful-stop` with requests in flight in the daemon
/// processes: each finishes with a complete 200, then Apache, the group's
/// processes and its socket are gone.
fn graceful_stop_finishes_requests_in_flight(mpm: Mpm) {
    let group = "gstop";
    let mut s = server(mpm, group, 4);
    let daemons = wait_daemons(&s, group, 2, Duration::from_secs(30));
    let port = s.port;
    let held = 3;
    let answers: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..held)
            .map(|i| {
                scope.spawn(move || {
                    let req = build_request("GET", &format!("/app/hold/{i}"), port, &[], b"");
                    let (data, reset) = crate::common::http::exchange(port, &req);
                    crate::common::http::parse_response(&data, false, reset)
                })
            })
            .collect();
        let running = wait_for(Duration::from_secs(60), || {
            (0..held)
                .all(|i| s.path(&format!("var/held-{i}")).exists())
                .then_some(())
        });
        assert!(running.is_some(), "the held requests never started");
        s.graceful_stop();
        // Apache has taken the signal and is waiting for its children.
        assert!(
            s.wait_log("shutting down gracefully", Duration::from_secs(30)),
            "no graceful-stop in the log:\n{}",
            s.error_log()
        );
        std::fs::write(s.path("var/release"), b"").unwrap();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, r) in answers.iter().enumerate() {
        assert_eq!(
            (r.status, r.complete),
            (200, true),
            "held request {i} did not finish: {}",
            r.text()
        );
    }
    assert!(
        s.wait_exit(Duration::from_secs(60)),
        "Apache did not exit after graceful-stop:\n{}",
        s.error_log()
    );
    let gone = wait_for(Duration::from_secs(30), || {
        daemons
            .iter()
            .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "daemon processes {daemons:?} outlived Apache"
    );
    let sockets: Vec<_> = ["run", "logs"]
        .iter()
        .flat_map(|d| std::fs::read_dir(s.path(d)).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sock"))
        .map(|e| e.path())
        .collect();
    assert!(sockets.is_empty(), "sockets left behind: {sockets:?}");
}
per_mpm!(graceful_stop_finishes_requests_in_flight);

/// A group a graceful restart removes from the configuration serves the
/// old generation's request in flight to the end (its process and socket
/// stay while an old child may still use them); then its process stops
/// and its socket goes. The group that stays serves throughout.
fn removed_group_finishes_then_goes(mpm: Mpm) {
    if referee_differs("mod_wsgi stops every daemon process at once on a restart") {
        return;
    }
    let mut s = Server::new(mpm)
        .file("app.wsgi", APP)
        .conf(
            "WSGIDaemonProcess kept processes=1 threads=2 display-name=%{GROUP}\n\
             WSGIDaemonProcess gone processes=1 threads=2 display-name=%{GROUP}\n\
             WSGIScriptAlias /app {root}/app.wsgi process-group=kept\n\
             WSGIScriptAlias /gone {root}/app.wsgi process-group=gone\n",
        )
        .start();
    let gone = wait_daemons(&s, "gone", 1, Duration::from_secs(30));
    let socket = s.path("run/wsgi_rs.gone.sock");
    assert!(socket.exists(), "no socket {}", socket.display());
    let port = s.port;
    let held = std::thread::spawn(move || {
        let req = build_request("GET", "/gone/hold/old", port, &[], b"");
        let (data, reset) = crate::common::http::exchange(port, &req);
        crate::common::http::parse_response(&data, false, reset)
    });
    let running = wait_for(Duration::from_secs(60), || {
        s.path("var/held-old").exists().then_some(())
    });
    assert!(running.is_some(), "the held request never started");
    let conf = s.conf_path().to_path_buf();
    let text = std::fs::read_to_string(&conf).unwrap();
    let without: Vec<&str> = text.lines().filter(|l| !l.contains("gone")).collect();
    std::fs::write(&conf, without.join("\n") + "\n").unwrap();
    s.graceful();
    assert_eq!(s.get("/app").status, 200, "the kept group does not serve");
    assert_eq!(
        daemon_pids(&s, "gone"),
        gone,
        "the removed group's process went while an old child still used it"
    );
    assert!(socket.exists(), "the removed group's socket went too early");
    std::fs::write(s.path("var/release"), b"").unwrap();
    let r = held.join().unwrap();
    assert_eq!((r.status, r.complete), (200, true), "{}", r.text());
    let went = wait_for(Duration::from_secs(60), || {
        (daemon_pids(&s, "gone").is_empty() && !socket.exists()).then_some(())
    });
    assert!(
        went.is_some(),
        "the removed group is still there: {:?}, socket {}",
        daemon_pids(&s, "gone"),
        socket.exists()
    );
    assert_eq!(s.get("/app").status, 200);
}
per_mpm!(removed_group_finishes_then_goes);
