//! `wsgi.input`: a file-like reader over the request body. Reads go to the
//! backend with the GIL released; the body's end is the backend's end of
//! body, so reading never runs past it (`wsgi.input_terminated` is True).

use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::gateway::{BodyError, Exchange};

/// Upper bound on one backend read, so `read(huge)` does not allocate `huge`
/// before any byte has arrived.
const MAX_READ: usize = 1 << 20;
/// How much a line read asks the backend for at a time.
const LINE_CHUNK: usize = 8192;

/// `wsgi.input`: the request body as a file-like object.
#[pyclass(module = "mod_wsgi", immutable_type)]
pub struct Input {
    /// The request.
    exchange: Arc<Exchange>,
    /// Bytes read ahead (by line reads).
    buf: Vec<u8>,
    /// Where unread bytes start in `buf`.
    pos: usize,
    /// The body has ended.
    eof: bool,
}

impl Input {
    /// The body of the request in `exchange`.
    pub fn new(exchange: Arc<Exchange>) -> Self {
        Input {
            exchange,
            buf: Vec::new(),
            pos: 0,
            eof: false,
        }
    }

    /// Bytes read ahead and not consumed.
    fn available(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads up to `want` more bytes from the backend into the buffer.
    fn fill(&mut self, py: Python<'_>, want: usize) -> PyResult<()> {
        if self.eof {
            return Ok(());
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > LINE_CHUNK && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let want = want.clamp(1, MAX_READ);
        let start = self.buf.len();
        self.buf.resize(start + want, 0);
        let mut target = std::mem::take(&mut self.buf);
        let result = self.read_backend(py, &mut target[start..]);
        self.buf = target;
        match result {
            Ok(n) => {
                self.buf.truncate(start + n);
                Ok(())
            }
            Err(e) => {
                self.buf.truncate(start);
                Err(e)
            }
        }
    }

    /// One backend read into `target` (0 at the end of the body).
    fn read_backend(&mut self, py: Python<'_>, target: &mut [u8]) -> PyResult<usize> {
        let result = {
            let mut guard = self.exchange.lock(py);
            let state = &mut *guard;
            match state.backend.as_mut() {
                None => Err(BodyError::Closed),
                Some(backend) => {
                    let backend: &mut dyn super::Backend = backend.as_mut();
                    let timed = state.track.published.then(std::time::Instant::now);
                    let r = py.detach(|| backend.read_body(target));
                    if let Err(BodyError::AlreadyAnswered(_)) = &r {
                        state.response.body_refused = true;
                    }
                    let track = &mut state.track;
                    track.input_reads += 1;
                    if let Ok(n) = &r {
                        track.input_length += *n as u64;
                    }
                    if let Some(t) = timed {
                        track.input_time += t.elapsed();
                    }
                    r
                }
            }
        };
        match result {
            Ok(n) => {
                if n == 0 {
                    self.eof = true;
                }
                Ok(n)
            }
            Err(e) => {
                self.eof = true;
                Err(PyOSError::new_err(format!("request data read error: {e}")))
            }
        }
    }

    /// `read(n)` with nothing buffered: the body goes straight into the
    /// bytes object returned, not through the buffer and a copy.
    fn read_into_bytes<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        let mut got = 0;
        let mut failure = None;
        let bytes = PyBytes::new_with(py, n, |target| {
            while got < n && !self.eof {
                match self.read_backend(py, &mut target[got..]) {
                    Ok(k) => got += k,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            Ok(())
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        if got == n {
            Ok(bytes)
        } else {
            Ok(PyBytes::new(py, &bytes.as_bytes()[..got]))
        }
    }

    /// Consumes `n` read-ahead bytes.
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.available());
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        out
    }

    /// Reads up to and including a newline, at most `limit` bytes.
    fn read_line(&mut self, py: Python<'_>, limit: Option<usize>) -> PyResult<Vec<u8>> {
        let mut scanned = 0;
        loop {
            let avail = &self.buf[self.pos..];
            if let Some(i) = avail[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i + 1;
                let end = limit.map_or(end, |l| end.min(l));
                return Ok(self.take(end).to_vec());
            }
            if let Some(l) = limit {
                if avail.len() >= l {
                    return Ok(self.take(l).to_vec());
                }
            }
            if self.eof {
                let n = self.available();
                return Ok(self.take(n).to_vec());
            }
            scanned = avail.len();
            self.fill(py, LINE_CHUNK)?;
        }
    }
}

/// A size argument: None or negative means all.
fn size_arg(size: Option<isize>) -> Option<usize> {
    match size {
        Some(n) if n >= 0 => Some(n as usize),
        _ => None,
    }
}

#[pymethods]
impl Input {
    /// `read(size=-1)`.
    #[pyo3(signature = (size = None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        match size_arg(size) {
            None => {
                while !self.eof {
                    self.fill(py, 64 * 1024)?;
                }
            }
            Some(n) if n > 0 && n <= MAX_READ && self.available() == 0 && !self.eof => {
                return self.read_into_bytes(py, n);
            }
            Some(n) => {
                while self.available() < n && !self.eof {
                    let missing = n - self.available();
                    self.fill(py, missing)?;
                }
            }
        }
        let n = size_arg(size).unwrap_or(usize::MAX);
        Ok(PyBytes::new(py, self.take(n)))
    }

    /// `readline(size=-1)`.
    #[pyo3(signature = (size = None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let line = self.read_line(py, size_arg(size))?;
        Ok(PyBytes::new(py, &line))
    }

    /// `readlines(hint=-1)`.
    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let hint = size_arg(hint).filter(|&h| h > 0);
        let lines = PyList::empty(py);
        let mut total = 0;
        loop {
            let line = self.read_line(py, None)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.append(PyBytes::new(py, &line))?;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    /// Iterates over lines.
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next line.
    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let line = self.read_line(py, None)?;
        if line.is_empty() {
            return Err(PyStopIteration::new_err(()));
        }
        Ok(PyBytes::new(py, &line))
    }

    /// Nothing to close: the request owns the body.
    fn close(&self) {}
}
