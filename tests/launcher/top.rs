//! `wsgi-rs top --once` against a `wsgi-rs serve --metrics-url` server:
//! the numbers it prints are the requests sent and the daemon group's
//! processes and threads.

use crate::harness::*;

#[test]
fn top_once_prints_the_groups_figures() {
    let scratch = Scratch::new();
    scratch.write("hello.wsgi", HELLO_APP);
    let served = Served::start(
        &scratch,
        &[
            "hello.wsgi",
            "--processes",
            "2",
            "--threads",
            "3",
            "--metrics-url",
            "/server-metrics",
        ],
    );
    for _ in 0..7 {
        assert_eq!(served.get("/").status, 200);
    }
    let url = format!("http://127.0.0.1:{}/server-metrics", served.port);
    // Both daemon processes have started their threads once their gauges
    // say 6 idle threads.
    let mut last;
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    let line = loop {
        let mut top = wsgi_rs(scratch.path());
        top.args(["top", "--once", "--interval", "0.2", &url]);
        let finished = run(top);
        assert!(finished.status.success(), "{}", finished.stderr);
        last = finished.stdout.clone();
        let line = last
            .lines()
            .skip_while(|l| !l.starts_with("GROUP"))
            .find(|l| l.starts_with("wsgi-rs "))
            .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
        if let Some(cols) = line.filter(|c| c.get(3).map(String::as_str) == Some("6")) {
            break cols;
        }
        assert!(std::time::Instant::now() < deadline, "{last}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(last.contains("GROUP"), "{last}");
    // GROUP PROCS BUSY IDLE REQ/S REQUESTS WAIT-P50 WAIT-P99 RESTARTS
    assert_eq!(line[1..4], ["2", "0", "6"], "{last}");
    assert_eq!(line[4], "0.0", "no requests during the interval: {last}");
    assert_eq!(line[5], "7", "{last}");
    assert!(line[6].ends_with("ms") && line[7].ends_with("ms"), "{last}");
    assert_eq!(line[8], "0", "{last}");

    let mut bad = wsgi_rs(scratch.path());
    bad.args([
        "top",
        "--once",
        &format!("http://127.0.0.1:{}/", served.port),
    ]);
    let finished = run(bad);
    assert!(!finished.status.success());
    assert!(
        finished.stderr.contains("serves no mod_wsgi_rs metrics"),
        "{}",
        finished.stderr
    );
    stop_cleanly(served, libc::SIGTERM);
}
