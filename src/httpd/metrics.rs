//! The metrics board in shared memory, and the `wsgi-rs-metrics` handler.
//!
//! The Apache parent maps the board (anonymous, shared) in the post_config
//! of its first real configuration pass, before it forks any Apache child
//! or daemon process, and keeps it for its lifetime, as Apache keeps its
//! scoreboard: a restart, graceful or not, only lays the next
//! configuration over the same cells (each group keeps its block by name,
//! new groups take spare ones, see `metrics::board`). So the processes of
//! an earlier generation still serving (Apache children finishing their
//! requests, daemon processes until their group's new ones are ready) count
//! where the new generation reads, and counters never go back to zero.
//! Only a configuration with more groups or processes than the room kept
//! gets a board of its own (counting starts again, as after a counter
//! reset); the earlier one stays mapped for the processes still using it.
//!
//! With metrics off no board exists: the request path pays one load of a
//! null pointer, and the handler answers an exposition without samples.

use std::cell::Cell;
use std::ffi::{c_int, CStr};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ffi;
use super::pool::pool_str;
use super::request::Request;
use crate::metrics::board::Busy;
use crate::metrics::running::Slot;
use crate::metrics::status::{self, Answer};
use crate::metrics::text::{render, CONTENT_TYPE};
use crate::metrics::{Board, Layout, ProcessMetrics};
use crate::plan::ProcessPlan;

/// The handler name that serves the metrics.
pub const HANDLER: &CStr = c"wsgi-rs-metrics";

/// The handler name that serves the status page.
pub const STATUS_HANDLER: &CStr = c"wsgi-rs-status";

/// This generation's board, or null when metrics are off.
static BOARD: AtomicPtr<Board> = AtomicPtr::new(ptr::null_mut());

/// The last board the parent laid out, for the next configuration (also
/// while metrics are off: turned on again, counting goes on).
static KEPT: AtomicPtr<Board> = AtomicPtr::new(ptr::null_mut());

thread_local! {
    /// Request body bytes read by this thread's current request.
    static BODY_READ: Cell<u64> = const { Cell::new(0) };
}

/// This generation's board, when metrics are collected.
pub fn current() -> Option<&'static Board> {
    let board = BOARD.load(Ordering::Acquire);
    // SAFETY: a non-null pointer is a leaked Box (never freed) over cells
    // that are never unmapped.
    unsafe { board.as_ref() }
}

/// Publishes this configuration's board when the plan collects metrics:
/// the board kept from an earlier configuration laid out anew, or a new one.
///
/// # Safety
/// The Apache parent's post_config (real pass), before any child or daemon
/// process of the generation is forked.
pub unsafe fn create(plan: &ProcessPlan) {
    BOARD.store(ptr::null_mut(), Ordering::Release);
    if !plan.metrics {
        return;
    }
    let embedded = plan.python.threads_per_process.max(1) as usize;
    let daemons = || {
        plan.daemon_groups.iter().map(|g| {
            let spec = &g.launch.spec;
            (
                spec.name.as_str(),
                spec.processes as usize,
                spec.threads as usize,
            )
        })
    };
    // SAFETY: as for `current`.
    let kept = unsafe { KEPT.load(Ordering::Acquire).as_ref() };
    let board = match kept.map(|b| b.next(embedded, daemons())) {
        Some(Some(next)) => next,
        other => {
            if other.is_some() {
                ::log::info!(
                    "WSGIRS405: WSGIServerMetrics: the metrics table has no room for this configuration's daemon groups and processes; a larger one is made and its counters start from zero"
                );
            }
            // SAFETY: caller's contract.
            let Some(board) = (unsafe { map(Layout::new(embedded, daemons())) }) else {
                return;
            };
            board
        }
    };
    // Leaked: one small struct per configuration, so no process ever holds
    // a dangling board.
    let board = ptr::from_ref(Box::leak(Box::new(board))).cast_mut();
    KEPT.store(board, Ordering::Release);
    BOARD.store(board, Ordering::Release);
}

/// Maps a new board of `layout` in shared memory, never unmapped: processes
/// forked with it may outlive the configuration (and the board) it was
/// made for. None, logged, when the memory cannot be mapped.
///
/// # Safety
/// The Apache parent, before forking the processes that are to share it.
unsafe fn map(layout: Layout) -> Option<Board> {
    let len = layout.cells * size_of::<AtomicU64>();
    // SAFETY: a fresh anonymous shared mapping; zero-filled by the kernel.
    let addr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len.max(1),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        ::log::error!(
            "WSGIRS300: WSGIServerMetrics: cannot map {len} bytes of shared memory for the metrics: {}; metrics are off",
            std::io::Error::last_os_error()
        );
        return None;
    }
    // SAFETY: the mapping holds `layout.cells` zeroed, aligned u64s, valid
    // as AtomicU64 and shared by every process forked from here on; it is
    // never unmapped.
    let cells = unsafe { std::slice::from_raw_parts(addr.cast::<AtomicU64>(), layout.cells) };
    Board::new(layout, cells)
}

/// Claims `n` process places on the current board for daemon group `group`
/// (plan order): those of one of the supervisor's slots (its process's, or
/// a template's processes'). Empty when metrics are off; a place the board
/// has no room left for counts its group's requests but has no gauges.
pub fn claim_places(group: usize, n: usize) -> Vec<ProcessMetrics> {
    let Some(board) = current() else {
        return Vec::new();
    };
    let group = board.daemon_group(group);
    (0..n)
        .map(|_| ProcessMetrics {
            board,
            group,
            slot: board.claim(group).unwrap_or(usize::MAX),
        })
        .collect()
}

/// Counts request body bytes read for this thread's request.
pub fn body_read(n: u64) {
    if !BOARD.load(Ordering::Relaxed).is_null() {
        BODY_READ.with(|c| c.set(c.get() + n));
    }
}

/// One request of ours being counted, from the handler's start to its end.
pub struct Tally {
    /// The board.
    board: &'static Board,
    /// The board's group index: 0 embedded, daemon groups from 1.
    group: usize,
    /// Its record in the running-requests table, once it is known to be ours.
    listed: Option<Slot<'static>>,
}

impl Tally {
    /// Starts counting a request, when metrics are collected.
    pub fn start() -> Option<Tally> {
        let board = current()?;
        BODY_READ.with(|c| c.set(0));
        Some(Tally {
            board,
            group: 0,
            listed: None,
        })
    }

    /// The request is ours: it shows in the running-requests table (its
    /// method and URL, from Apache's request time) until it finishes.
    pub fn list(&mut self, req: &Request<'_>) {
        let mut url = String::from_utf8_lossy(req.method()).into_owned();
        url.push(' ');
        url.push_str(&String::from_utf8_lossy(req.unparsed_uri()));
        // SAFETY: the live request this handler call serves.
        let start = unsafe { (*req.raw()).request_time }.max(0) as u64;
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() }.max(0) as u64;
        self.listed = self
            .board
            .running()
            .claim(std::process::id(), tid, start, &url);
    }

    /// The request goes to daemon group `plan_index` (plan order).
    pub fn route_daemon(&mut self, plan_index: usize) {
        self.route(self.board.daemon_group(plan_index));
    }

    /// The request goes to board group `group` (0 embedded, daemon groups
    /// from 1).
    pub fn route(&mut self, group: usize) {
        self.group = group;
        if let Some(slot) = &self.listed {
            slot.set_group(group);
        }
    }

    /// An embedded request starts running: busy until the guard drops.
    pub fn running(&self) -> (Busy<'static>, Instant) {
        (self.board.busy(0, None), Instant::now())
    }

    /// An embedded request ran for `d`.
    pub fn ran(&self, d: Duration) {
        self.board.duration(0, d);
    }

    /// Counts the finished request: the handler returned `ret`.
    pub fn finish(self, req: &Request<'_>, ret: c_int) {
        if ret == ffi::DECLINED as c_int {
            return;
        }
        // SAFETY: the live request this handler call serves.
        let (status, sent) = unsafe { ((*req.raw()).status, (*req.raw()).bytes_sent) };
        // The handler's own answer when it returns one, else what was sent.
        let code = if ret >= 100 { ret } else { status };
        let read = BODY_READ.with(Cell::take);
        self.board
            .request(self.group, code.max(0) as u32, read, sent.max(0) as u64);
    }
}

/// Serves `SetHandler wsgi-rs-metrics`: the board in Prometheus text, or
/// without samples when metrics are off. No Python is involved.
pub fn serve(req: &mut Request<'_>) -> c_int {
    if !matches!(req.method(), b"GET" | b"HEAD") {
        return ffi::HTTP_METHOD_NOT_ALLOWED as c_int;
    }
    answer(req, CONTENT_TYPE, &exposition())
}

/// Serves `SetHandler wsgi-rs-status`: the live status page, or the data it
/// polls (`?format=prometheus`, `?format=running`). No Python is involved.
pub fn serve_status(req: &mut Request<'_>) -> c_int {
    if !matches!(req.method(), b"GET" | b"HEAD") {
        return ffi::HTTP_METHOD_NOT_ALLOWED as c_int;
    }
    match Answer::for_query(req.query_string()) {
        Answer::Page => answer(req, status::PAGE_TYPE, status::PAGE),
        Answer::Prometheus => answer(req, CONTENT_TYPE, &exposition()),
        Answer::Running => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64);
            let json = match current() {
                Some(board) => status::running_json(board, now),
                None => "{\"running\":[]}\n".to_owned(),
            };
            answer(req, status::JSON_TYPE, &json)
        }
    }
}

/// The board in Prometheus text, or a comment alone when metrics are off.
fn exposition() -> String {
    match current() {
        Some(board) => render(&board.snapshot()),
        None => "# mod_wsgi_rs metrics are off (WSGIServerMetrics Off)\n".to_owned(),
    }
}

/// Answers `text` as `content_type`, never cached.
fn answer(req: &mut Request<'_>, content_type: &str, text: &str) -> c_int {
    let r = req.raw();
    // SAFETY: the live request; the content type and header are copied into
    // its pool, and the body is written through its own output filters.
    // A failed write means the client went away: nothing more to say.
    let _ = unsafe {
        ffi::ap_set_content_type(r, pool_str((*r).pool, content_type));
        ffi::apr_table_setn(
            (*r).headers_out,
            c"Cache-Control".as_ptr(),
            c"no-store".as_ptr(),
        );
        ffi::ap_set_content_length(r, text.len() as i64);
        let bb = ffi::wsgi_rs_brigade_new(r);
        ffi::wsgi_rs_write(r, bb, text.as_ptr().cast(), text.len(), 0)
    };
    ffi::OK as c_int
}
