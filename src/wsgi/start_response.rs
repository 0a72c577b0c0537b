//! `start_response` and the `write()` callable it returns. Status and headers
//! are validated here, before anything reaches the server: a value that could
//! split a header or smuggle one in is refused with an exception, so it is
//! never sent.

use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::describe::type_name;
use super::gateway::Exchange;
use super::response::send_body;

/// The `start_response` callable of a request.
#[pyclass(module = "mod_wsgi", immutable_type)]
pub struct StartResponse {
    /// The request.
    exchange: Arc<Exchange>,
}

impl StartResponse {
    /// `start_response` for the request in `exchange`.
    pub fn new(exchange: Arc<Exchange>) -> Self {
        StartResponse { exchange }
    }
}

/// The `write()` callable (PEP 3333's legacy imperative output).
#[pyclass(module = "mod_wsgi", immutable_type)]
pub struct Write {
    /// The request.
    exchange: Arc<Exchange>,
}

#[pymethods]
impl Write {
    /// `write(data)`: sends the bytes at once.
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "write() argument must be a byte string, not {}",
                type_name(data)
            ))
        })?;
        send_body(py, &self.exchange, bytes.as_bytes(), true)
    }
}

/// Whether `c` may appear in a header name.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Printable latin-1 plus horizontal tab: what may appear in a field value.
fn is_value_char(c: char) -> bool {
    (c as u32) < 256 && (c == '\t' || (c >= ' ' && c != '\x7f'))
}

/// Validates a status line: three digits, a space, printable text.
fn parse_status(status: &Bound<'_, PyAny>) -> PyResult<(u16, String)> {
    let s = status.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected str object for status, value of type {} found",
            type_name(status)
        ))
    })?;
    let s = s.to_str()?;
    let bytes = s.as_bytes();
    let valid_code = bytes.len() >= 3 && bytes[..3].iter().all(u8::is_ascii_digit);
    if !valid_code || (bytes.len() > 3 && bytes[3] != b' ') || !s.chars().all(is_value_char) {
        return Err(PyValueError::new_err(format!("invalid status line {s:?}")));
    }
    let code: u16 = s[..3].parse().expect("three digits");
    if code < 100 {
        return Err(PyValueError::new_err(format!(
            "invalid status code in {s:?}"
        )));
    }
    Ok((code, s.to_owned()))
}

/// Validates the headers: a list of `(str, str)` with a token name and a clean value.
fn parse_headers(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let list = headers.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!(
            "response headers must be a list, not {}",
            type_name(headers)
        ))
    })?;
    let mut out = Vec::with_capacity(list.len());
    for item in list.iter() {
        let pair = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(format!(
                "response header must be a (name, value) tuple, not {}",
                type_name(&item)
            ))
        })?;
        if pair.len() != 2 {
            return Err(PyValueError::new_err(
                "response header tuple must have exactly two items",
            ));
        }
        let (name, value) = (pair.get_item(0)?, pair.get_item(1)?);
        let name = name
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("response header name must be a str"))?
            .to_str()?
            .to_owned();
        let value = value
            .cast::<PyString>()
            .map_err(|_| {
                PyTypeError::new_err(format!("value of response header {name:?} must be a str"))
            })?
            .to_str()?
            .to_owned();
        if name.is_empty() || !name.chars().all(is_token_char) {
            return Err(PyValueError::new_err(format!(
                "invalid response header name {name:?}"
            )));
        }
        if !value.chars().all(is_value_char) {
            return Err(PyValueError::new_err(format!(
                "response header {name:?} has a value with a control or non-latin-1 character: {value:?}"
            )));
        }
        out.push((name, value));
    }
    Ok(out)
}

#[pymethods]
impl StartResponse {
    /// `start_response(status, headers, exc_info=None)`.
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__(
        &self,
        py: Python<'_>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Write> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        let (headers_sent, started) = {
            let state = self.exchange.lock(py);
            (state.response.headers_sent, state.response.status.is_some())
        };
        {
            if let Some(exc_info) = exc_info {
                if headers_sent {
                    // Too late to change the response: re-raise the app's error.
                    let value = exc_info.get_item(1)?;
                    return Err(PyErr::from_value(value));
                }
            } else if started {
                return Err(PyRuntimeError::new_err(
                    "start_response() called again without exc_info",
                ));
            }
        }
        let status_arg = status;
        let status = parse_status(status)?;
        let parsed = parse_headers(headers)?;
        let mut content_length = None;
        for (name, value) in &parsed {
            if name.eq_ignore_ascii_case("content-length") {
                let n = value.trim().parse::<u64>().map_err(|_| {
                    PyValueError::new_err(format!("invalid Content-Length {value:?}"))
                })?;
                content_length = Some(n);
            }
        }
        {
            let mut state = self.exchange.lock(py);
            state.response.status = Some(status);
            state.response.headers = parsed;
            state.response.content_length = content_length;
        }
        super::events::response_started(py, &self.exchange, status_arg, headers, exc_info);
        Ok(Write {
            exchange: self.exchange.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_chars() {
        assert!(is_value_char('a'));
        assert!(is_value_char('\t'));
        assert!(is_value_char('é'));
        assert!(!is_value_char('\r'));
        assert!(!is_value_char('\n'));
        assert!(!is_value_char('\0'));
        assert!(!is_value_char('\x7f'));
        assert!(!is_value_char('€'));
    }

    #[test]
    fn token_chars() {
        assert!("X-Custom_1".chars().all(is_token_char));
        assert!(!"Bad Name".chars().all(is_token_char));
        assert!(!"Bad:Name".chars().all(is_token_char));
    }
}
