//! Interpreter start-up: `PyConfig` with the configured home, no signal
//! handlers (they belong to Apache), the interpreter options
//! (`-O`, `-W`, `-B`, hash seed), then our streams and the `mod_wsgi`
//! module, then `python-path` entries through `site.addsitedir` so `.pth`
//! files work as they do in mod_wsgi.

use std::ffi::{CStr, CString};
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

/// Process-wide interpreter settings (`WSGIPythonHome`, `WSGIPythonPath`, …).
#[derive(Clone, Debug, Default)]
pub struct PythonSettings {
    /// `WSGIPythonHome` / `python-home=`.
    pub home: Option<String>,
    /// `sys.path` entries to add.
    pub path: Vec<String>,
    /// `WSGIRestrictStdout`.
    pub restrict_stdout: bool,
    /// `WSGIRestrictStdin`.
    pub restrict_stdin: bool,
    /// `WSGIRestrictSignal`: applications' `signal.signal()` is ignored.
    pub restrict_signal: bool,
    /// "" in embedded mode; the daemon group name in a daemon process.
    pub process_group: String,
    /// `mod_wsgi.maximum_processes`.
    pub maximum_processes: i64,
    /// `mod_wsgi.threads_per_process`.
    pub threads_per_process: i64,
    /// `WSGIPythonOptimize`: Python's `-O` level, 0 to 2.
    pub optimize: Option<u8>,
    /// `WSGIPythonWarnings`: `-W` filters, in order.
    pub warnings: Vec<String>,
    /// `WSGIPythonHashSeed`: `None` for random (Python's default).
    pub hash_seed: Option<u32>,
    /// `WSGIDontWriteBytecode On`: Python's `-B`.
    pub dont_write_bytecode: bool,
    /// `PYTHON_EGG_CACHE`: `WSGIPythonEggs` in embedded mode,
    /// `python-eggs=` in a daemon process.
    pub eggs: Option<String>,
    /// `sys.setswitchinterval()`: `WSGISwitchInterval` in embedded mode,
    /// `switch-interval=` in a daemon process.
    pub switch_interval: Option<f64>,
    /// `WSGIDestroyInterpreter Off`: a process shuts down without running
    /// Python's exit (`atexit`) handlers.
    pub skip_destroy: bool,
}

/// Why Python could not be started.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InterpError {
    /// The interpreter did not initialise.
    #[error("Python initialisation failed: {0}")]
    Init(String),
    /// Installing our modules and settings failed.
    #[error("Python set-up failed: {0}")]
    Setup(String),
}

impl InterpError {
    /// The error as a log line of its own, with its id.
    pub fn logged(&self) -> String {
        let id = match self {
            InterpError::Init(_) => "WSGIRS390",
            InterpError::Setup(_) => "WSGIRS391",
        };
        format!("{id}: {self}")
    }
}

/// The outcome of initialising Python in this process.
static STATE: OnceLock<Result<(), InterpError>> = OnceLock::new();
/// The settings Python was started with: sub-interpreters get the same.
static SETTINGS: OnceLock<PythonSettings> = OnceLock::new();
/// The process environment when Python started: each sub-interpreter's
/// `os.environ` starts from it (see `groups.rs`).
static START_ENVIRON: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();

/// Whether Python runs in this process.
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

/// Starts the interpreter with `settings`.
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
        if let Some(level) = settings.optimize {
            config.optimization_level = level.into();
        }
        if let Some(seed) = settings.hash_seed {
            config.use_hash_seed = 1;
            config.hash_seed = seed.into();
        }
        if settings.dont_write_bytecode {
            config.write_bytecode = 0;
        }
        for filter in &settings.warnings {
            if let Err(e) = append_wide(&mut config.warnoptions, filter) {
                ffi::PyConfig_Clear(&mut config);
                return Err(e);
            }
        }
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
    let setup = Python::attach(|py| {
        setup(py, settings)?;
        set_switch_interval(py, settings)
    });
    // SAFETY: the GIL is held by this thread (initialisation took it); this
    // releases it and keeps the main thread state, which is never freed.
    unsafe {
        ffi::PyEval_SaveThread();
    }
    setup.map_err(InterpError::Setup)
}

/// Appends `item` to one of PyConfig's wide-string lists.
///
/// # Safety
/// `list` must belong to a PyConfig initialised by `PyConfig_Init*`.
unsafe fn append_wide(list: *mut ffi::PyWideStringList, item: &str) -> Result<(), InterpError> {
    let c = CString::new(item)
        .map_err(|_| InterpError::Init(format!("'{item}' contains a NUL byte")))?;
    // SAFETY: c is NUL-terminated; the decoded copy is freed after the list
    // has copied it.
    unsafe {
        let wide = ffi::Py_DecodeLocale(c.as_ptr(), std::ptr::null_mut());
        if wide.is_null() {
            return Err(InterpError::Init(format!("cannot decode '{item}'")));
        }
        let status = ffi::PyWideStringList_Append(list, wide);
        ffi::PyMem_RawFree(wide.cast());
        if ffi::PyStatus_Exception(status) != 0 {
            return Err(InterpError::Init(status_message(&status)));
        }
    }
    Ok(())
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

/// The message of a failed `PyStatus`.
fn status_message(status: &ffi::PyStatus) -> String {
    if status.err_msg.is_null() {
        return "unknown error".into();
    }
    // SAFETY: err_msg is a static NUL-terminated string set by CPython.
    unsafe { CStr::from_ptr(status.err_msg) }
        .to_string_lossy()
        .into_owned()
}

/// The GIL's switch interval is the process's (every interpreter shares the
/// GIL), so it is set once, in the main interpreter.
fn set_switch_interval(py: Python<'_>, settings: &PythonSettings) -> Result<(), String> {
    let Some(interval) = settings.switch_interval else {
        return Ok(());
    };
    py.import("sys")
        .and_then(|sys| sys.call_method1("setswitchinterval", (interval,)))
        .map_err(|e| format!("sys.setswitchinterval({interval}) failed: {e}"))?;
    log::info!("WSGIRS351: Python switch interval set to {interval} seconds");
    Ok(())
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
        if let Some(eggs) = &settings.eggs {
            // Through os.environ, so Python's view and the process
            // environment agree (os.environ also calls putenv).
            py.import("os")?
                .getattr("environ")?
                .set_item("PYTHON_EGG_CACHE", eggs)?;
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
