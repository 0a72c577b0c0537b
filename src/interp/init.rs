//! Interpreter start-up: `PyConfig` with the configured home, no signal
//! handlers (they belong to Apache), then our streams and the `mod_wsgi`
//! module, then `python-path` entries through `site.addsitedir` so `.pth`
//! files work as they do in mod_wsgi.

use std::ffi::{CStr, CString};
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

/// Process-wide interpreter settings (`WSGIPythonHome`, `WSGIPythonPath`, …).
#[derive(Clone, Debug, Default)]
pub struct PythonSettings {
    pub home: Option<String>,
    pub path: Vec<String>,
    pub restrict_stdout: bool,
    pub restrict_stdin: bool,
    /// `WSGIRestrictSignal`: applications' `signal.signal()` is ignored.
    pub restrict_signal: bool,
    /// "" in embedded mode; the daemon group name in a daemon process.
    pub process_group: String,
    pub maximum_processes: i64,
    pub threads_per_process: i64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum InterpError {
    #[error("Python initialisation failed: {0}")]
    Init(String),
    #[error("Python set-up failed: {0}")]
    Setup(String),
}

static STATE: OnceLock<Result<(), InterpError>> = OnceLock::new();
/// The settings Python was started with: sub-interpreters get the same.
static SETTINGS: OnceLock<PythonSettings> = OnceLock::new();
/// The process environment when Python started: each sub-interpreter's
/// `os.environ` starts from it (see `groups.rs`).
static START_ENVIRON: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();

pub fn is_initialized() -> bool {
    matches!(STATE.get(), Some(Ok(())))
}

/// Initialises Python once per process; later calls return the first result.
pub fn initialize(settings: &PythonSettings) -> Result<(), InterpError> {
    STATE
        .get_or_init(|| {
            let _ = SETTINGS.set(settings.clone());
            let _ = START_ENVIRON.set(
                std::env::vars_os()
                    .map(|(k, v)| (k.into_encoded_bytes(), v.into_encoded_bytes()))
                    .collect(),
            );
            initialize_once(settings)
        })
        .clone()
}

/// The process environment as it was when Python started.
pub(super) fn start_environ() -> &'static [(Vec<u8>, Vec<u8>)] {
    START_ENVIRON.get().map_or(&[], Vec::as_slice)
}

/// The settings of this process's interpreters.
pub(super) fn settings() -> PythonSettings {
    SETTINGS.get().cloned().unwrap_or_default()
}

fn initialize_once(settings: &PythonSettings) -> Result<(), InterpError> {
    // SAFETY: called once per process (OnceLock), before any other thread
    // can use Python; the PyConfig is initialised by PyConfig_InitPythonConfig
    // before use and cleared afterwards; the strings passed are NUL-terminated
    // and outlive the calls.
    unsafe {
        if ffi::Py_IsInitialized() != 0 {
            return Err(InterpError::Init("already initialised".into()));
        }
        let mut config: ffi::PyConfig = std::mem::zeroed();
        ffi::PyConfig_InitPythonConfig(&mut config);
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        if let Some(home) = &settings.home {
            // A virtualenv has no standard library of its own: Python finds
            // the base installation through the venv's pyvenv.cfg, which it
            // reads next to the interpreter it believes it is. A real prefix
            // is given as the home, as WSGIPythonHome always meant.
            let (field, value) = match venv_interpreter(home) {
                Some(python) => (&raw mut config.program_name, python),
                None => (&raw mut config.home, home.clone()),
            };
            let c = CString::new(value)
                .map_err(|_| InterpError::Init("python home contains a NUL byte".into()))?;
            let status = ffi::PyConfig_SetBytesString(&mut config, field, c.as_ptr());
            if ffi::PyStatus_Exception(status) != 0 {
                ffi::PyConfig_Clear(&mut config);
                return Err(InterpError::Init(status_message(&status)));
            }
        }
        let status = ffi::Py_InitializeFromConfig(&config);
        ffi::PyConfig_Clear(&mut config);
        if ffi::PyStatus_Exception(status) != 0 {
            return Err(InterpError::Init(status_message(&status)));
        }
    }
    // This thread holds the GIL right after initialisation.
    let setup = Python::attach(|py| setup(py, settings));
    // SAFETY: the GIL is held by this thread (initialisation took it); this
    // releases it and keeps the main thread state, which is never freed.
    unsafe {
        ffi::PyEval_SaveThread();
    }
    setup.map_err(InterpError::Setup)
}

/// The interpreter inside a virtualenv at `home`, if `home` is one.
fn venv_interpreter(home: &str) -> Option<String> {
    let home = std::path::Path::new(home);
    if !home.join("pyvenv.cfg").is_file() {
        return None;
    }
    ["python3", "python"]
        .iter()
        .map(|name| home.join("bin").join(name))
        .find(|p| p.exists())
        .map(|p| p.display().to_string())
}

fn status_message(status: &ffi::PyStatus) -> String {
    if status.err_msg.is_null() {
        return "unknown error".into();
    }
    // SAFETY: err_msg is a static NUL-terminated string set by CPython.
    unsafe { CStr::from_ptr(status.err_msg) }
        .to_string_lossy()
        .into_owned()
}

/// Prepares the current interpreter (the main one, or a new sub-interpreter):
/// `sys.argv`, the `mod_wsgi` module, the standard streams, `python-path`.
pub(super) fn setup(py: Python<'_>, settings: &PythonSettings) -> Result<(), String> {
    let run = || -> PyResult<()> {
        let sys = py.import("sys")?;
        sys.setattr("argv", vec!["mod_wsgi"])?;
        super::module::install(py, settings)?;
        crate::wsgi::install_stdio(py, settings.restrict_stdout, settings.restrict_stdin)?;
        if settings.restrict_signal {
            super::signals::restrict(py)?;
        }
        if !settings.path.is_empty() {
            let site = py.import("site")?;
            for dir in &settings.path {
                site.call_method1("addsitedir", (dir,))?;
            }
        }
        Ok(())
    };
    run().map_err(|e| {
        let lines = crate::wsgi::format_exception(py, &e);
        lines.join("\n")
    })
}
