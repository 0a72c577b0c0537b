//! The `mod_wsgi` Python module that applications can import, as they can
//! under mod_wsgi: version and process facts, plus `ApacheLogHandler`, a
//! `logging` handler that keeps Python's levels in the Apache error log
//! (warning -> `[wsgi_rs:warn]`) instead of logging everything as an error.

use pyo3::prelude::*;
use pyo3::types::PyModule;

use super::PythonSettings;
use crate::wsgi::{
    current_application_group, log_for_current_request, version_tuple, FileWrapper, LogLevel,
};

const HANDLER_SOURCE: &std::ffi::CStr = c"
import logging as _logging

def __getattr__(name):
    # Module attributes that depend on the request being served.
    if name == 'application_group':
        return _application_group()
    raise AttributeError('module mod_wsgi has no attribute %r' % name)

class ApacheLogHandler(_logging.Handler):
    '''Writes records to the Apache error log at the level of the record.'''

    def emit(self, record):
        try:
            _log(record.levelno, self.format(record))
        except Exception:
            self.handleError(record)
";

#[pyfunction]
#[pyo3(name = "_application_group")]
fn application_group() -> String {
    current_application_group()
}

#[pyfunction]
#[pyo3(name = "_log")]
fn log_record(py: Python<'_>, level: i64, message: &str) {
    let level = LogLevel::from_python(level);
    for line in message.lines() {
        log_for_current_request(py, level, line);
    }
}

pub(crate) fn install(py: Python<'_>, settings: &PythonSettings) -> PyResult<()> {
    let m = PyModule::new(py, "mod_wsgi")?;
    m.add("version", version_tuple(py)?)?;
    m.add("server", "mod_wsgi_rs")?;
    m.add("process_group", settings.process_group.as_str())?;
    m.add("maximum_processes", settings.maximum_processes)?;
    m.add("threads_per_process", settings.threads_per_process)?;
    m.add_class::<FileWrapper>()?;
    m.add_function(wrap_pyfunction!(log_record, &m)?)?;
    m.add_function(wrap_pyfunction!(application_group, &m)?)?;
    py.run(HANDLER_SOURCE, Some(&m.dict()), None)?;
    py.import("sys")?
        .getattr("modules")?
        .set_item("mod_wsgi", m)?;
    Ok(())
}
