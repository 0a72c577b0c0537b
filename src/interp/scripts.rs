//! The WSGI script cache: each (application group, script file) is loaded
//! once as its own module (`_mod_wsgi_<hash>` in `sys.modules`, as mod_wsgi
//! names them) and re-imported when the file's mtime changes, if script
//! reloading is on ("touch the .wsgi file to reload").

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyBytes, PyModule};

/// Which loaded copy of a script: scripts are per application group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScriptKey {
    /// The application group.
    pub group: String,
    /// The script file.
    pub path: PathBuf,
}

impl ScriptKey {
    /// The module's name in `sys.modules`.
    fn module_name(&self) -> String {
        let mut h = DefaultHasher::new();
        self.group.hash(&mut h);
        self.path.hash(&mut h);
        format!("_mod_wsgi_{:016x}", h.finish())
    }
}

/// Why an application could not be had from a script.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The script raised (or could not be read) while it was imported.
    #[error("Target WSGI script '{path}' cannot be loaded as Python module.")]
    Load {
        /// The script file.
        path: String,
        /// What it raised.
        err: PyErr,
    },
    /// The script has no callable of that name.
    #[error("Target WSGI script '{path}' does not contain WSGI application '{callable}'.")]
    MissingCallable {
        /// The script file.
        path: String,
        /// The name looked for.
        callable: String,
    },
    /// An ASGI application outside a daemon process (embedded mode has no
    /// event loop to run it).
    #[error(
        "WSGIRS501: Target script '{0}' holds an ASGI application, which runs in daemon mode \
         only: add process-group=NAME (a WSGIDaemonProcess group) to its WSGIScriptAlias, \
         or set WSGIProcessGroup"
    )]
    AsgiNeedsDaemon(String),
}

impl ScriptError {
    /// The error as the first line of a script error (its traceback
    /// follows), with its id.
    pub fn logged(&self) -> String {
        let id = match self {
            ScriptError::Load { .. } => "WSGIRS371",
            ScriptError::MissingCallable { .. } => "WSGIRS372",
            // Its text starts with its id.
            ScriptError::AsgiNeedsDaemon(_) => return self.to_string(),
        };
        format!("{id}: {self}")
    }

    /// The Python exception behind the failure, for its traceback.
    pub fn python_error(&self) -> Option<&PyErr> {
        match self {
            ScriptError::Load { err, .. } => Some(err),
            ScriptError::MissingCallable { .. } | ScriptError::AsgiNeedsDaemon(_) => None,
        }
    }
}

impl crate::wsgi::LoadError for ScriptError {
    fn python_error(&self) -> Option<&PyErr> {
        ScriptError::python_error(self)
    }

    fn logged(&self) -> String {
        ScriptError::logged(self)
    }
}

/// A loaded script.
struct LoadedScript {
    /// Its module.
    module: Py<PyModule>,
    /// The file's mtime when it was loaded.
    mtime: Option<i64>,
    /// What [`ScriptCache::classify`] found for the object a callable name
    /// stood for (name, object, verdict).
    verdicts: Vec<(String, Py<PyAny>, bool)>,
}

/// One script's entry, locked while it loads.
type Slot = Arc<Mutex<Option<LoadedScript>>>;

/// Loaded scripts of this process.
#[derive(Default)]
pub struct ScriptCache {
    /// Every script, by key.
    scripts: Mutex<HashMap<ScriptKey, Slot>>,
}

/// The file's modification time in microseconds (Apache's unit).
fn file_mtime(path: &std::path::Path) -> Option<i64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let d = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(d.as_micros() as i64)
}

impl ScriptCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry of `key`, made empty the first time.
    fn slot(&self, py: Python<'_>, key: &ScriptKey) -> Slot {
        let mut map = self
            .scripts
            .lock_py_attached(py)
            .unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = map.get(key) {
            return slot.clone();
        }
        map.entry(key.clone()).or_default().clone()
    }

    /// Returns the script's module, loading it or reloading it when its
    /// mtime changed (and `reloading` is on). `mtime` may be supplied by a
    /// caller that already stat'ed the file (Apache's directory walk did).
    pub fn module<'py>(
        &self,
        py: Python<'py>,
        key: &ScriptKey,
        mtime: Option<i64>,
        reloading: bool,
    ) -> Result<Bound<'py, PyModule>, ScriptError> {
        let slot = self.slot(py, key);
        let mut loaded = slot.lock_py_attached(py).unwrap_or_else(|p| p.into_inner());
        let stale = match &*loaded {
            None => true,
            Some(script) if reloading => {
                let now = mtime.or_else(|| file_mtime(&key.path));
                now != script.mtime
            }
            Some(_) => false,
        };
        if stale {
            let mtime = mtime.or_else(|| file_mtime(&key.path));
            *loaded = None;
            let module = load(py, key).map_err(|err| ScriptError::Load {
                path: key.path.display().to_string(),
                err,
            })?;
            *loaded = Some(LoadedScript {
                module: module.clone().unbind(),
                mtime,
                verdicts: Vec::new(),
            });
        }
        Ok(loaded
            .as_ref()
            .expect("loaded above")
            .module
            .bind(py)
            .clone())
    }

    /// True when the script was loaded and its file has changed since (or
    /// vanished): daemon mode then replaces the whole process. `mtime` is
    /// the file's modification time when the caller knows it (Apache
    /// stat()ed the script for this request); else it is looked up.
    pub fn is_stale(&self, py: Python<'_>, key: &ScriptKey, mtime: Option<i64>) -> bool {
        let slot = self.slot(py, key);
        let loaded = slot.lock_py_attached(py).unwrap_or_else(|p| p.into_inner());
        match &*loaded {
            Some(script) => mtime.or_else(|| file_mtime(&key.path)) != script.mtime,
            None => false,
        }
    }

    /// `classify(app)` for `app`, the object the script's `callable` names,
    /// worked out once per loaded copy of the script: a reload, or the
    /// script binding the name to another object, asks again. For questions
    /// about an application asked on every request whose answer depends on
    /// the object only (is it an ASGI application?), which cost Python
    /// attribute lookups (and the exceptions of the misses) each time.
    pub fn classify<'py>(
        &self,
        py: Python<'py>,
        key: &ScriptKey,
        callable: &str,
        app: &Bound<'py, PyAny>,
        classify: impl FnOnce(&Bound<'py, PyAny>) -> bool,
    ) -> bool {
        let slot = self.slot(py, key);
        let known = {
            let loaded = slot.lock_py_attached(py).unwrap_or_else(|p| p.into_inner());
            loaded.as_ref().and_then(|script| {
                script
                    .verdicts
                    .iter()
                    .find(|(name, object, _)| name == callable && object.as_ptr() == app.as_ptr())
                    .map(|(_, _, verdict)| *verdict)
            })
        };
        if let Some(verdict) = known {
            return verdict;
        }
        // Outside the lock: classifying runs Python code.
        let verdict = classify(app);
        let mut loaded = slot.lock_py_attached(py).unwrap_or_else(|p| p.into_inner());
        if let Some(script) = loaded.as_mut() {
            script.verdicts.retain(|(name, _, _)| name != callable);
            script
                .verdicts
                .push((callable.to_owned(), app.clone().unbind(), verdict));
        }
        verdict
    }

    /// The WSGI application object named `callable` in the script.
    pub fn application<'py>(
        &self,
        py: Python<'py>,
        key: &ScriptKey,
        callable: &str,
        mtime: Option<i64>,
        reloading: bool,
    ) -> Result<Bound<'py, PyAny>, ScriptError> {
        let module = self.module(py, key, mtime, reloading)?;
        match module.getattr_opt(callable) {
            Ok(Some(app)) => Ok(app),
            Ok(None) => Err(ScriptError::MissingCallable {
                path: key.path.display().to_string(),
                callable: callable.to_owned(),
            }),
            Err(err) => Err(ScriptError::Load {
                path: key.path.display().to_string(),
                err,
            }),
        }
    }
}

/// Compiles and runs the script file as a new module.
fn load<'py>(py: Python<'py>, key: &ScriptKey) -> PyResult<Bound<'py, PyModule>> {
    let path = key.path.display().to_string();
    let source = std::fs::read(&key.path)
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("cannot read '{path}': {e}")))?;
    let name = key.module_name();
    let builtins = py.import("builtins")?;
    let code = builtins.call_method1(
        "compile",
        (PyBytes::new(py, &source), path.as_str(), "exec", 0, true),
    )?;
    let modules = py.import("sys")?.getattr("modules")?;
    // A reload replaces the module object, so state of the old copy is gone,
    // as with mod_wsgi's embedded-mode reloading.
    let _ = modules.del_item(&name);
    let module = PyModule::new(py, &name)?;
    module.setattr("__file__", path.as_str())?;
    modules.set_item(&name, &module)?;
    if let Err(e) = builtins.call_method1("exec", (code, module.dict())) {
        let _ = modules.del_item(&name);
        return Err(e);
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::interp::{self, PythonSettings};

    /// A verdict is worked out once per object the callable names, and
    /// again when the script rebinds the name or is reloaded.
    #[test]
    fn a_verdict_is_kept_until_the_object_or_the_script_changes() {
        interp::initialize(&PythonSettings::default()).expect("Python starts");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.wsgi");
        std::fs::write(&path, "def application(environ, start_response): pass\n").unwrap();
        let key = ScriptKey {
            group: String::new(),
            path,
        };
        let cache = ScriptCache::new();
        interp::with_python(|py| {
            let asked = Cell::new(0);
            let verdict = |mtime: i64| {
                let app = cache
                    .application(py, &key, "application", Some(mtime), true)
                    .unwrap();
                cache.classify(py, &key, "application", &app, |_| {
                    asked.set(asked.get() + 1);
                    true
                })
            };
            assert!(verdict(1) && verdict(1) && verdict(1));
            assert_eq!(asked.get(), 1, "asked once for one object");
            let module = cache.module(py, &key, Some(1), true).unwrap();
            let other = py.eval(c"lambda environ, start_response: None", None, None);
            module.setattr("application", other.unwrap()).unwrap();
            assert!(verdict(1) && verdict(1));
            assert_eq!(asked.get(), 2, "asked again for the rebound name");
            assert!(verdict(2) && verdict(2));
            assert_eq!(asked.get(), 3, "asked again after the reload");
        });
    }
}
