//! Delivering an application's response: the iterable is consumed item by
//! item and each item handed to the backend with the GIL released; a
//! `wsgi.file_wrapper` over a real file goes to the backend as a file
//! (sendfile in Apache); a failure becomes the request's [`Outcome`].

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::describe::{log_exception, type_name};
use super::file_wrapper::FileWrapper;
use super::gateway::{Exchange, ExchangeState, LogLevel, WriteError};

/// How a request ended, for the server side to turn into a status.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The response was delivered (or the client went away).
    Done,
    /// The app failed before any output: answer 500.
    Failed,
    /// An input filter already answered the client (e.g. 413).
    BodyRefused,
    /// The app failed after output started; the connection was aborted.
    Aborted,
}

/// Why delivering a response stopped.
pub(super) enum Failure {
    /// The application raised.
    App(PyErr),
    /// The client went away.
    Client(WriteError),
}

/// Hands status and headers to the backend if that has not happened yet.
fn ensure_started(state: &mut ExchangeState) -> PyResult<()> {
    if state.response.headers_sent {
        return Ok(());
    }
    if state.response.body_refused {
        return Err(PyOSError::new_err(
            "Apache already answered this request (its body was refused); no response can follow",
        ));
    }
    let Some((code, line)) = state.response.status.clone() else {
        return Err(PyRuntimeError::new_err(
            "response has no status: the application did not call start_response()",
        ));
    };
    let backend = state
        .backend
        .as_mut()
        .ok_or_else(|| PyOSError::new_err(WriteError::Closed.to_string()))?;
    backend.start_response(code, &line, &state.response.headers);
    state.response.headers_sent = true;
    Ok(())
}

/// Sends body bytes under the exchange's lock, with the GIL released when the write may block.
fn write_locked(
    py: Python<'_>,
    state: &mut ExchangeState,
    data: &[u8],
    flush: bool,
) -> Result<(), Failure> {
    if data.is_empty() && !flush {
        return Ok(());
    }
    ensure_started(state).map_err(Failure::App)?;
    let mut data = data;
    if let Some(limit) = state.response.content_length {
        // Bytes beyond the declared Content-Length would corrupt the
        // connection for the next response: drop them, as mod_wsgi does.
        let room = limit.saturating_sub(state.response.bytes_sent);
        if (data.len() as u64) > room {
            data = &data[..room as usize];
        }
    }
    let backend = state
        .backend
        .as_mut()
        .ok_or(Failure::Client(WriteError::Closed))?;
    if backend.is_head() {
        return Ok(());
    }
    let backend: &mut dyn super::Backend = backend.as_mut();
    let timed = state.track.published.then(std::time::Instant::now);
    if backend.write_is_quick(data.len(), flush) {
        backend.write_body(data, flush)
    } else {
        py.detach(|| backend.write_body(data, flush))
    }
    .map_err(Failure::Client)?;
    state.response.bytes_sent += data.len() as u64;
    state.track.output_writes += 1;
    if let Some(t) = timed {
        state.track.output_time += t.elapsed();
    }
    Ok(())
}

/// Sends body bytes for the `write()` callable (and the iteration below).
pub(crate) fn send_body(
    py: Python<'_>,
    exchange: &Exchange,
    data: &[u8],
    flush: bool,
) -> PyResult<()> {
    let mut state = exchange.lock(py);
    write_locked(py, &mut state, data, flush).map_err(|f| match f {
        Failure::App(e) => e,
        Failure::Client(e) => PyOSError::new_err(format!("failed to write response data: {e}")),
    })
}

/// Logs a failure and says how the request ends.
pub(super) fn fail(
    py: Python<'_>,
    exchange: &Exchange,
    context: &str,
    failure: Failure,
) -> Outcome {
    match failure {
        Failure::Client(e) => {
            exchange.log(
                py,
                LogLevel::Info,
                &format!("WSGIRS376: {context} Client closed the connection: {e}"),
            );
            Outcome::Done
        }
        Failure::App(e) => {
            log_exception(py, exchange, &format!("WSGIRS370: {context}"), &e);
            super::events::request_exception(py, exchange, &e);
            let mut state = exchange.lock(py);
            if state.response.body_refused {
                Outcome::BodyRefused
            } else if state.response.headers_sent {
                if let Some(b) = state.backend.as_mut() {
                    b.abort();
                }
                Outcome::Aborted
            } else {
                Outcome::Failed
            }
        }
    }
}

/// After a clean iteration: headers for empty bodies, and a short body
/// against the declared Content-Length must not look complete.
pub(super) fn finish(py: Python<'_>, exchange: &Exchange) -> Outcome {
    let mut state = exchange.lock(py);
    if let Err(e) = ensure_started(&mut state) {
        drop(state);
        log_exception(
            py,
            exchange,
            "WSGIRS375: WSGI application returned no response",
            &e,
        );
        return Outcome::Failed;
    }
    let short = match state.response.content_length {
        Some(cl) => {
            state.backend.as_ref().is_some_and(|b| !b.is_head()) && state.response.bytes_sent < cl
        }
        None => false,
    };
    if short {
        let msg = format!(
            "WSGIRS377: Truncated response: the application declared Content-Length {} but produced {} bytes",
            state.response.content_length.unwrap_or(0),
            state.response.bytes_sent
        );
        if let Some(b) = state.backend.as_mut() {
            b.log(LogLevel::Error, &msg);
            b.abort();
        }
        return Outcome::Aborted;
    }
    Outcome::Done
}

/// Sends what the application returned, item by item (or as a file).
pub(super) fn deliver(
    py: Python<'_>,
    exchange: &Exchange,
    result: &Bound<'_, PyAny>,
) -> Result<(), Failure> {
    if let Ok(wrapper) = result.cast::<FileWrapper>() {
        if try_send_file(py, exchange, &wrapper.borrow())? {
            return Ok(());
        }
    }
    // Lists and tuples are complete already: no point flushing between items.
    let buffered = result.is_instance_of::<PyList>() || result.is_instance_of::<PyTuple>();
    let iter = result.try_iter().map_err(Failure::App)?;
    for item in iter {
        let item = item.map_err(Failure::App)?;
        let bytes = item.cast::<PyBytes>().map_err(|_| {
            Failure::App(PyTypeError::new_err(format!(
                "sequence of byte string values expected, value of type {} found",
                type_name(&item)
            )))
        })?;
        let mut state = exchange.lock(py);
        write_locked(py, &mut state, bytes.as_bytes(), !buffered)?;
    }
    Ok(())
}

/// Serves a file_wrapper over a regular file as a file; false when the
/// wrapped object is not one (then it is iterated like any iterable).
fn try_send_file(
    py: Python<'_>,
    exchange: &Exchange,
    wrapper: &FileWrapper,
) -> Result<bool, Failure> {
    let filelike = wrapper.filelike.bind(py);
    let Some(fd) = filelike
        .call_method0("fileno")
        .ok()
        .and_then(|f| f.extract::<i32>().ok())
    else {
        return Ok(false);
    };
    // `filelike`, held here with the GIL, keeps the descriptor open.
    let Some(size) = crate::sys::fd::regular_file_size(fd) else {
        return Ok(false);
    };
    // Where the file object stands (its own buffering included); one that
    // cannot tell is read like any iterable, as mod_wsgi does, rather than
    // sent from a guessed position.
    let Some(offset) = filelike
        .call_method0("tell")
        .ok()
        .and_then(|t| t.extract::<u64>().ok())
    else {
        return Ok(false);
    };
    let mut state = exchange.lock(py);
    if state.response.bytes_sent != 0 {
        // Output came through write() first: how much of the file a
        // declared length leaves room for is not worth guessing (mod_wsgi
        // does not either); the file is iterated like any iterable.
        return Ok(false);
    }
    let remaining = size.saturating_sub(offset);
    // mod_wsgi's rule: a declared Content-Length says how much of the file
    // to send; without one, the response declares what remains from the
    // file's position, so it goes out with a length rather than chunked.
    let len = match state.response.content_length {
        Some(cl) => cl.min(remaining),
        None if !state.response.headers_sent => {
            state
                .response
                .headers
                .push(("Content-Length".to_owned(), remaining.to_string()));
            state.response.content_length = Some(remaining);
            remaining
        }
        None => remaining,
    };
    ensure_started(&mut state).map_err(Failure::App)?;
    let state = &mut *state;
    let Some(backend) = state.backend.as_mut() else {
        return Err(Failure::Client(WriteError::Closed));
    };
    if backend.is_head() || len == 0 {
        return Ok(true);
    }
    // The backend owns the copy, so the app closing its file cannot pull it
    // out from under sendfile.
    let Some(dup) = crate::sys::fd::duplicate(fd) else {
        return Ok(false);
    };
    let backend: &mut dyn super::Backend = backend.as_mut();
    let timed = state.track.published.then(std::time::Instant::now);
    match py.detach(|| backend.send_file(dup, offset, len)) {
        Ok(()) => {
            state.response.bytes_sent += len;
            state.track.output_writes += 1;
            if let Some(t) = timed {
                state.track.output_time += t.elapsed();
            }
            Ok(true)
        }
        // A descriptor handed back unused is closed as it drops.
        Err((_, e)) => Err(Failure::Client(e)),
    }
}
