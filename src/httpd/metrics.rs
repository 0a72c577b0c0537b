//! The metrics board in shared memory, and the `wsgi-rs-metrics` handler.
//!
//! The Apache parent maps the board (anonymous, shared) in post_config of
//! each real configuration pass, sized from the plan, before it forks any
//! Apache child or daemon process: every process of the generation then
//! counts into the same cells. A graceful or full restart makes a new board
//! (the old one is unmapped with the old configuration pool), so counters
//! start again from zero at each restart, which Prometheus' `rate()` takes
//! as a counter reset; old-generation children finishing their requests
//! count into their own, now unread, copy.
//!
//! With metrics off no board exists: the request path pays one load of a
//! null pointer, and the handler answers an exposition without samples.

use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ffi;
use super::pool::{pool_box, pool_str};
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

thread_local! {
    /// Request body bytes read by this thread's current request.
    static BODY_READ: Cell<u64> = const { Cell::new(0) };
}

/// This generation's board, when metrics are collected.
pub fn current() -> Option<&'static Board> {
    let board = BOARD.load(Ordering::Acquire);
    // SAFETY: a non-null pointer is a leaked Box (never freed); its cells
    // stay mapped in every process but the parent after its pconf cleanup
    // nulls the pointer, and the parent serves no requests.
    unsafe { board.as_ref() }
}

/// The shared mapping of one board, unmapped with the pool that owns it.
struct Mapping {
    /// Start of the mapping.
    addr: *mut c_void,
    /// Its length in bytes.
    len: usize,
}

/// Pool cleanup: forgets and unmaps the board of the ending generation.
unsafe extern "C" fn unmap(data: *mut c_void) -> ffi::apr_status_t {
    super::boundary::guard("metrics cleanup", (), || {
        BOARD.store(ptr::null_mut(), Ordering::Release);
        // SAFETY: data is the Mapping boxed in pconf by `create`; the
        // mapping is ours and nothing in this process uses it any more.
        unsafe {
            let m = &*data.cast::<Mapping>();
            libc::munmap(m.addr, m.len);
        }
    });
    ffi::APR_SUCCESS as ffi::apr_status_t
}

/// Maps this generation's board when the plan collects metrics.
///
/// # Safety
/// The Apache parent's post_config (real pass) with its live pconf, before
/// any child or daemon process of the generation is forked.
pub unsafe fn create(plan: &ProcessPlan, pconf: *mut ffi::apr_pool_t) {
    BOARD.store(ptr::null_mut(), Ordering::Release);
    if !plan.metrics {
        return;
    }
    let layout = Layout::new(
        plan.python.threads_per_process.max(1) as usize,
        plan.daemon_groups.iter().map(|g| {
            let spec = &g.launch.spec;
            // Two places per process slot: a successor counts in the
            // other one while the process it replaces finishes.
            (
                spec.name.as_str(),
                2 * spec.processes as usize,
                spec.threads as usize,
            )
        }),
    );
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
        return;
    }
    // SAFETY: the mapping holds `layout.cells` zeroed, aligned u64s, valid
    // as AtomicU64 and shared by every process forked from here on; it is
    // only unmapped by `unmap`, after the board is unpublished.
    let cells = unsafe { std::slice::from_raw_parts(addr.cast::<AtomicU64>(), layout.cells) };
    let Some(board) = Board::new(layout, cells) else {
        return;
    };
    // Leaked: one small struct per generation, so no process ever holds a
    // dangling board.
    let board: &'static Board = Box::leak(Box::new(board));
    BOARD.store(ptr::from_ref(board).cast_mut(), Ordering::Release);
    // SAFETY: pconf is live (caller's contract); the cleanup runs when the
    // generation ends, after the supervisor's (registered later, run first).
    unsafe {
        let mapping = pool_box(
            pconf,
            Mapping {
                addr,
                len: len.max(1),
            },
        );
        ffi::apr_pool_cleanup_register(
            pconf,
            mapping.cast(),
            Some(unmap),
            Some(ffi::apr_pool_cleanup_null),
        );
    }
}

/// The board place of slot `slot` of daemon group `group` (plan order).
pub fn daemon_process(group: usize, slot: usize) -> Option<ProcessMetrics> {
    current().map(|board| ProcessMetrics {
        board,
        group: group + 1,
        slot,
    })
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
