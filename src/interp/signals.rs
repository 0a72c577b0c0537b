//! `WSGIRestrictSignal On` (the default): `signal.signal()` is replaced by a
//! callable that ignores the registration and logs a warning with the
//! caller's stack, as mod_wsgi does, so an application cannot take over the
//! signals Apache (or our daemon supervisor) relies on. In a process the
//! application forked itself the real function is used.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::wsgi::{log_for_current_request, LogLevel};

/// What `signal.signal` becomes under `WSGIRestrictSignal`.
#[pyclass(module = "mod_wsgi", name = "SignalIntercept", immutable_type)]
struct SignalIntercept {
    /// The original `signal.signal`.
    wrapped: Py<PyAny>,
    /// The process that installed the interceptor.
    pid: u32,
}

#[pymethods]
impl SignalIntercept {
    /// Logs and ignores a handler registration, as mod_wsgi does.
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if std::process::id() != self.pid {
            return self.wrapped.bind(py).call(args, kwargs);
        }
        let (signum, handler): (i64, Bound<'py, PyAny>) = args.extract()?;
        let log = |line: &str| log_for_current_request(py, LogLevel::Warn, line);
        log(&format!(
            "Callback registration for signal {signum} ignored (WSGIRestrictSignal On)."
        ));
        let stack: Vec<String> = py
            .import("traceback")?
            .call_method0("format_stack")?
            .extract()?;
        for line in stack.iter().flat_map(|s| s.trim_end().lines()) {
            log(line);
        }
        Ok(handler)
    }
}

/// Replaces `signal.signal` in this interpreter.
pub(super) fn restrict(py: Python<'_>) -> PyResult<()> {
    let signal = py.import("signal")?;
    let wrapped = signal.getattr("signal")?.unbind();
    let intercept = SignalIntercept {
        wrapped,
        pid: std::process::id(),
    };
    signal.setattr("signal", Bound::new(py, intercept)?)
}
