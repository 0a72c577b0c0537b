//! The topology users grow into (docs/scaling.md): a front Apache with
//! mod_proxy_balancer, mod_proxy_hcheck checking a health URL of the
//! application, in front of three Apache + mod_wsgi_rs back ends, each on a
//! host of its own (a network namespace with a veth pair, see
//! `common::netns`). Under a steady load of requests at the front it shows:
//! traffic spread over the back ends (each answers with its name; each
//! back end's own `wsgi-rs-metrics` counts what it served), one back end
//! taken out (its health URL fails, the front stops sending to it, it is
//! stopped, started again and taken back) and a rolling deployment (a new
//! version of the script written on one back end after the other, which
//! touch-to-reload picks up), with no failed request at the front.
//! Skipped, saying why, where network namespaces cannot be made.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::netns::{self, get, Backend, Netns};
use crate::common::server::{is_root, MODULES_DIR};
use crate::common::{referee_differs, wait_for, Mpm, Running, Server};

/// The application of every back end: its name, version and pid, and a
/// health URL that fails while `var/down` exists (how an operator takes a
/// back end out of the balancer before stopping it).
fn app(name: &str, version: &str) -> String {
    format!(
        r#"import os
def application(environ, start_response):
    if environ['PATH_INFO'] == '/health':
        if os.path.exists('{{root}}/var/down'):
            start_response('503 Service Unavailable', [('Content-Type', 'text/plain')])
            return [b'down\n']
        body = b'ok\n'
    else:
        body = ('{name} {version} %d\n' % os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
"#
    )
}

/// A back end's configuration: a daemon group, the application at /app and
/// its metrics at /metrics for the front's host only.
const BACKEND_CONF: &str = "\
WSGIDaemonProcess app processes=2 threads=4 display-name=%{GROUP}
WSGIScriptAlias /app {root}/app.wsgi process-group=app application-group=%{GLOBAL}
<Location /metrics>
    SetHandler wsgi-rs-metrics
    Require ip {front}
</Location>
";

/// The front's balancer over `backends`: health checks of /app/health every
/// second, a member out after one failed check and back after one passed.
fn front_conf(backends: &[Backend]) -> String {
    let mut c = String::new();
    for m in [
        "proxy",
        "proxy_http",
        "proxy_balancer",
        "proxy_hcheck",
        "lbmethod_byrequests",
        "slotmem_shm",
    ] {
        c.push_str(&format!("LoadModule {m}_module {MODULES_DIR}/mod_{m}.so\n"));
    }
    c.push_str("<Proxy balancer://cluster>\n");
    for b in backends {
        c.push_str(&format!(
            "    BalancerMember http://{} route={} retry=1 hcmethod=GET hcuri=/app/health \
             hcinterval=1 hcpasses=1 hcfails=1\n",
            b.addr, b.name
        ));
    }
    c.push_str(
        "    ProxySet lbmethod=byrequests failonstatus=502,503\n\
         </Proxy>\n\
         ProxyPass /app balancer://cluster/app\n\
         ProxyTimeout 10\n\
         <Location /balancer-manager>\n    SetHandler balancer-manager\n</Location>\n",
    );
    c
}

/// The back ends' names (each application answers with its own).
const NAMES: [&str; 3] = ["b1", "b2", "b3"];

/// What the clients at the front saw.
#[derive(Default)]
struct Tally {
    /// Requests answered.
    total: usize,
    /// What went wrong, one line per failed request.
    failures: Vec<String>,
    /// Requests answered, by back end name and version.
    served: HashMap<(String, String), usize>,
}

impl Tally {
    /// Requests answered by back end `name` (any version).
    fn by(&self, name: &str) -> usize {
        self.served
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|(_, c)| c)
            .sum()
    }
}

/// Client threads sending GET /app/ to the front, each on a fresh
/// connection, until dropped.
struct Load {
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(front: SocketAddr, clients: usize) -> Load {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|_| {
                let (tally, stop) = (tally.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let answer = get(front, "/app/", Duration::from_secs(15));
                        let mut t = tally.lock().unwrap();
                        t.total += 1;
                        match answer {
                            Ok(r) if r.status == 200 => {
                                let text = r.text();
                                let mut words = text.split_whitespace();
                                let name = words.next().unwrap_or("").to_owned();
                                let version = words.next().unwrap_or("").to_owned();
                                *t.served.entry((name, version)).or_default() += 1;
                            }
                            Ok(r) => t.failures.push(format!("{} {}", r.status, r.text())),
                            Err(e) => t.failures.push(e),
                        }
                        drop(t);
                        // Leaves the (shared) machine some air.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .collect();
        Load {
            tally,
            stop,
            threads,
        }
    }

    /// Requests answered so far, in all and by each back end of `NAMES`.
    fn snapshot(&self) -> (usize, Vec<usize>) {
        let t = self.tally.lock().unwrap();
        (t.total, NAMES.iter().map(|n| t.by(n)).collect())
    }

    /// Waits (up to `timeout`) until `cond` holds for the tally.
    fn wait(&self, what: &str, timeout: Duration, cond: impl Fn(&Tally) -> bool) {
        let held = wait_for(timeout, || cond(&self.tally.lock().unwrap()).then_some(()));
        let t = self.tally.lock().unwrap();
        assert!(
            held.is_some(),
            "{what}: not within {timeout:?}; {} requests, served {:?}, failures {:?}",
            t.total,
            t.served,
            t.failures
        );
    }

    /// Stops the clients and gives the final tally.
    fn finish(mut self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            t.join().expect("client thread panicked");
        }
        std::mem::take(&mut *self.tally.lock().unwrap())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The value of the sample `name{labels}` in Prometheus text, summed over
/// the samples whose labels include all of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The front's balancer-manager row of `backend` (the text after its URL
/// up to the end of the row), where the member's status shows.
fn member_row(front: &Running, backend: &Backend) -> String {
    let page = front.get("/balancer-manager").text();
    let url = format!(">http://{}<", backend.addr);
    page.split(&url)
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or("")
        .to_owned()
}

#[test]
fn balanced_back_ends_in_their_own_namespaces() {
    if referee_differs("the back ends' metrics come from SetHandler wsgi-rs-metrics, ours") {
        return;
    }
    if !is_root() {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    if let Err(why) = netns::probe() {
        eprintln!("skipped: network namespaces cannot be created here: {why}");
        return;
    }
    let began = Instant::now();
    let nets = Netns::create_all(3).expect("network namespaces");
    let names = NAMES;
    let mut backends: Vec<Backend> = nets
        .iter()
        .zip(names)
        .map(|(net, name)| Backend::new(name, net, BACKEND_CONF, &[("app.wsgi", app(name, "v1"))]))
        .collect();
    std::thread::scope(|s| {
        for b in backends.iter_mut() {
            s.spawn(move || b.start("/app/health", Duration::from_secs(60)));
        }
    });
    let front = Server::new(Mpm::Event).conf(&front_conf(&backends)).start();
    let front_addr = SocketAddr::from(([127, 0, 0, 1], front.port));
    let load = Load::start(front_addr, 4);

    // Spread: every back end serves a fair share.
    load.wait("every back end serves", Duration::from_secs(30), |t| {
        names.iter().all(|n| t.by(n) >= 30)
    });
    let spread: Vec<usize> = {
        let t = load.tally.lock().unwrap();
        names.iter().map(|n| t.by(n)).collect()
    };
    let sum: usize = spread.iter().sum();
    for (name, n) in names.iter().zip(&spread) {
        assert!(
            *n * 2 * names.len() >= sum,
            "{name} served {n} of {sum}: not spread ({spread:?})"
        );
    }
    // Each back end's metrics count at least what the clients saw it serve
    // (the health checks come on top), in its two daemon processes.
    for (b, seen) in backends.iter().zip(&spread) {
        let text = get(b.addr, "/metrics", Duration::from_secs(10))
            .unwrap()
            .text();
        let served = metric(
            &text,
            "wsgi_rs_requests_total",
            &[r#"group="app""#, r#"code="200""#],
        );
        assert!(
            served >= *seen as f64,
            "{}: {served} < {seen}\n{text}",
            b.name
        );
        let processes = metric(&text, "wsgi_rs_processes", &[r#"group="app""#]);
        assert_eq!(processes, 2.0, "{}\n{text}", b.name);
    }

    // Taken out: b2's health URL fails, the front marks it, it stops.
    let b2 = 1;
    std::fs::write(backends[b2].path("var/down"), "").unwrap();
    let downed = Instant::now();
    let marked = wait_for(Duration::from_secs(30), || {
        member_row(&front, &backends[b2])
            .contains("HcFl")
            .then_some(())
    });
    assert!(
        marked.is_some(),
        "the front did not mark b2: {}",
        member_row(&front, &backends[b2])
    );
    let took_out = downed.elapsed();
    assert!(
        backends[b2].graceful_stop(Duration::from_secs(30)),
        "b2 did not stop"
    );
    let at_stop = load.snapshot();
    load.wait("the others serve alone", Duration::from_secs(30), |t| {
        t.total >= at_stop.0 + 100
    });
    let before_start = load.snapshot();
    // Back in: started again, its health passes, the front sends to it.
    std::fs::remove_file(backends[b2].path("var/down")).unwrap();
    let b2_before = load.tally.lock().unwrap().by("b2");
    backends[b2].start("/app/health", Duration::from_secs(60));
    let started = Instant::now();
    load.wait("b2 serves again", Duration::from_secs(30), |t| {
        t.by("b2") > b2_before
    });
    let took_back = started.elapsed();
    load.wait("b2 serves its share", Duration::from_secs(30), |t| {
        t.by("b2") >= b2_before + 30
    });
    let before_rolling = load.snapshot();

    // Rolling deployment: version 2 written on one back end after the
    // other; each picks it up at its next request (touch-to-reload).
    for b in &backends {
        b.write_file(
            "app.wsgi",
            &app(&b.name, "v2").replace("{root}", &b.root().display().to_string()),
        );
        let key = (b.name.clone(), "v2".to_owned());
        load.wait(
            &format!("{} serves v2", b.name),
            Duration::from_secs(30),
            |t| t.served.get(&key).copied().unwrap_or(0) >= 20,
        );
    }
    let tally = load.finish();
    let share = |from: &(usize, Vec<usize>), to: &(usize, Vec<usize>)| {
        let by: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n} {}", to.1[i] - from.1[i]))
            .collect();
        format!("{} requests ({})", to.0 - from.0, by.join(", "))
    };
    let end = (tally.total, names.iter().map(|n| tally.by(n)).collect());
    eprintln!(
        "multihost: {} in {:.1}s, {} failed; first {spread:?}; health check took b2 out in \
         {:.1}s; while b2 was stopped: {}; b2 back in {:.1}s after its start; rolling \
         deployment: {}",
        share(&(0, vec![0; 3]), &end),
        began.elapsed().as_secs_f64(),
        tally.failures.len(),
        took_out.as_secs_f64(),
        share(&at_stop, &before_start),
        took_back.as_secs_f64(),
        share(&before_rolling, &end),
    );
    assert!(
        tally.failures.is_empty(),
        "{} of {} requests failed: {:?}\n--- front ---\n{}",
        tally.failures.len(),
        tally.total,
        tally.failures,
        front.error_log()
    );
    drop(front);
    drop(backends);
    drop(nets);
}
