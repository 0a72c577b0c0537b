//! Application groups as CPython sub-interpreters, the way mod_wsgi isolates
//! them: every group other than `%{GLOBAL}` (the empty name) gets its own
//! interpreter, with its own `sys.modules`, `sys.path`, `os.environ` and
//! module globals; `%{GLOBAL}` is the main interpreter, where extension
//! modules that refuse sub-interpreters still work.
//!
//! pyo3 has no safe API for sub-interpreters, so this is the raw layer.
//! The interpreters share the one GIL of Python 3.11. A thread enters a
//! group by first attaching to the main interpreter through pyo3 (so pyo3
//! counts the thread as attached and every nested `Python::attach`, drop
//! and `py.detach` behaves), then swapping in its own thread state of the
//! group's interpreter with `PyThreadState_Swap`; leaving swaps the main
//! thread state back before pyo3 releases it. `py.detach` inside a group
//! saves and restores the group's thread state, as it should.
//!
//! Each thread keeps one thread state per interpreter for its whole life, as
//! it keeps its main one (`thread.rs`): `threading.local` survives between
//! requests and no state is created per request.
//!
//! What pyo3 caches process-wide (the `#[pyclass]` type objects, `intern!`
//! strings, the `PyOnceLock` values of the environ) is created by whichever
//! interpreter asks first and then used by all. Under one shared GIL that is
//! sound: reference counts are only touched under the GIL, the allocator is
//! process-wide, and the cached values are immutable (strings, tuples, a
//! template dict that is only ever copied) or type objects that keep no
//! per-interpreter state. pyo3's only interpreter check is for `#[pymodule]`
//! initialisation, which this crate does not use: the `mod_wsgi` module and
//! the standard streams are built afresh in every interpreter.
//!
//! Each new interpreter's `os.environ` starts from the environment the
//! process had when Python started, not from what other groups have set
//! since (`fresh_environ`).
//!
//! Interpreters are never ended: they live as long as the process, like the
//! main one, which is never finalised either.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;

use super::InterpError;

/// A sub-interpreter, by the address of its `PyInterpreterState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Interp(usize);

/// The sub-interpreter of each group created so far, or why it could not be.
static GROUPS: Mutex<Vec<(String, Result<Interp, InterpError>)>> = Mutex::new(Vec::new());

thread_local! {
    /// This thread's own thread state in each sub-interpreter it entered.
    static STATES: RefCell<HashMap<usize, usize>> = RefCell::new(HashMap::new());
}

/// Swaps the thread state it saved back in when dropped, a panic included:
/// pyo3 must release the thread state it acquired.
struct SwapBack(*mut ffi::PyThreadState);

impl Drop for SwapBack {
    fn drop(&mut self) {
        // SAFETY: the GIL is held (we are inside the attach that swapped) and
        // the saved state is the one that was current before the swap.
        unsafe {
            ffi::PyThreadState_Swap(self.0);
        }
    }
}

/// Runs `f` in the interpreter of `group` ("" is the main interpreter),
/// creating the group's interpreter on first use. Calls may nest: each
/// returns the thread to the interpreter it was in.
pub fn with_group<R>(
    group: &str,
    f: impl for<'py> FnOnce(Python<'py>) -> R,
) -> Result<R, InterpError> {
    super::thread::with_python(|py| {
        let state = if group.is_empty() {
            // SAFETY: attached; this thread's main state was made by
            // PyGILState_Ensure (thread.rs), so the GILState API knows it.
            unsafe { ffi::PyGILState_GetThisThreadState() }
        } else {
            thread_state(interpreter(py, group)?)
        };
        // SAFETY: attached, so this only reads the current thread state.
        if state == unsafe { ffi::PyThreadState_Get() } {
            return Ok(f(py));
        }
        // SAFETY: the GIL is held by this thread (with_python attached it);
        // `state` is this thread's own state of a live interpreter, and
        // SwapBack restores the previous one before pyo3 releases it.
        let _back = SwapBack(unsafe { ffi::PyThreadState_Swap(state) });
        Ok(f(py))
    })
}

/// Runs `f` in every interpreter that exists, the main one first, with the
/// group's name ("" for the main one): for work such as `atexit` callbacks.
pub fn for_each_group(mut f: impl for<'py> FnMut(Python<'py>, &str)) {
    let groups: Vec<String> = {
        let groups = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
        groups
            .iter()
            .filter(|(_, made)| made.is_ok())
            .map(|(name, _)| name.clone())
            .collect()
    };
    let _ = with_group("", |py| f(py, ""));
    for group in groups {
        let _ = with_group(&group, |py| f(py, &group));
    }
}

/// The interpreter of `group`, created if needed. Creation runs Python code
/// that may release the GIL, so other threads wait for the table without
/// holding it (`lock_py_attached`).
fn interpreter(py: Python<'_>, group: &str) -> Result<Interp, InterpError> {
    let mut groups = GROUPS
        .lock_py_attached(py)
        .unwrap_or_else(|p| p.into_inner());
    if let Some((_, made)) = groups.iter().find(|(name, _)| name == group) {
        return made.clone();
    }
    let made = create(py, group);
    if let Err(e) = &made {
        log::error!("Cannot create the Python sub-interpreter of application group '{group}': {e}");
    }
    groups.push((group.to_owned(), made.clone()));
    made
}

fn create(py: Python<'_>, group: &str) -> Result<Interp, InterpError> {
    // SAFETY: the GIL is held with this thread's main thread state current.
    // Py_NewInterpreter makes the new interpreter's first thread state
    // current (and on failure restores the previous one); SwapBack puts the
    // main state back however this function leaves.
    let (interp, state) = unsafe {
        let main = ffi::PyThreadState_Get();
        let state = ffi::Py_NewInterpreter();
        if state.is_null() {
            return Err(InterpError::Init(format!(
                "Py_NewInterpreter failed for application group '{group}'"
            )));
        }
        let _back = SwapBack(main);
        let settings = super::init::settings();
        let setup = fresh_environ(py).and_then(|()| super::init::setup(py, &settings));
        let interp = ffi::PyThreadState_GetInterpreter(state);
        setup.map_err(InterpError::Setup)?;
        (interp, state)
    };
    // The state that created the interpreter is this thread's state in it.
    STATES.with(|s| s.borrow_mut().insert(interp as usize, state as usize));
    log::info!("Created Python sub-interpreter for application group '{group}'");
    Ok(Interp(interp as usize))
}

/// Gives the new interpreter's `os.environ` the process environment as it
/// was when Python started. `os` copies the C environment when an
/// interpreter imports it, and every `os.environ` assignment also calls
/// `putenv`; so, as under mod_wsgi, an interpreter created after a group
/// ran `os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...)` would start
/// with that group's value, and which site got whose settings would depend
/// on which one had the first request. The mapping's own dict is refilled,
/// so the C environment is left as it is.
fn fresh_environ(py: Python<'_>) -> Result<(), String> {
    let run = || -> PyResult<()> {
        let data = py.import("os")?.getattr("environ")?.getattr("_data")?;
        data.call_method0("clear")?;
        for (key, value) in super::init::start_environ() {
            data.set_item(
                pyo3::types::PyBytes::new(py, key),
                pyo3::types::PyBytes::new(py, value),
            )?;
        }
        Ok(())
    };
    run().map_err(|e| format!("cannot set up os.environ: {e}"))
}

/// This thread's thread state in `interp`, made on first use.
fn thread_state(interp: Interp) -> *mut ffi::PyThreadState {
    STATES.with(|s| {
        *s.borrow_mut().entry(interp.0).or_insert_with(|| {
            // SAFETY: the GIL is held (callers are attached) and the
            // interpreter lives as long as the process. A thread state made
            // here is used only by this thread.
            unsafe { ffi::PyThreadState_New(interp.0 as *mut ffi::PyInterpreterState) as usize }
        })
    }) as *mut ffi::PyThreadState
}

/// Whether the code running now is in a sub-interpreter.
pub fn in_sub_interpreter() -> bool {
    // SAFETY: only called while attached; both calls just read the runtime.
    unsafe { ffi::PyInterpreterState_Get() != ffi::PyInterpreterState_Main() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyo3::types::PyDict;

    fn start() {
        super::super::initialize(&super::super::PythonSettings::default()).expect("Python");
    }

    /// Runs `code` in `group` and returns its global `result` as a string.
    fn eval(group: &str, code: &str) -> String {
        with_group(group, |py| {
            let globals = PyDict::new(py);
            let code = std::ffi::CString::new(code).unwrap();
            py.run(&code, Some(&globals), None).unwrap();
            globals
                .get_item("result")
                .unwrap()
                .map(|r| r.to_string())
                .unwrap_or_default()
        })
        .expect("group")
    }

    #[test]
    fn groups_have_their_own_modules_path_and_environ() {
        start();
        let set = |value: &str| {
            format!(
                "import sys, os, types\n\
                 sys.modules.setdefault('unit_marker', types.ModuleType('m')).value = '{value}'\n\
                 sys.path.append('/unit-{value}')\n\
                 os.environ['UNIT_GROUP'] = '{value}'\n"
            )
        };
        let get = "import sys, os\n\
                   result = '%s %s %s' % (sys.modules['unit_marker'].value, \
                   [p for p in sys.path if p.startswith('/unit-')], os.environ['UNIT_GROUP'])";
        eval("unit-a", &set("a"));
        eval("", &set("main"));
        eval("unit-b", &set("b"));
        assert_eq!(eval("unit-a", get), "a ['/unit-a'] a");
        assert_eq!(eval("unit-b", get), "b ['/unit-b'] b");
        assert_eq!(eval("", get), "main ['/unit-main'] main");
    }

    #[test]
    fn a_new_group_starts_from_the_environment_python_started_with() {
        start();
        eval(
            "unit-env-first",
            "import os\nos.environ.setdefault('UNIT_SETTINGS', 'first')",
        );
        // The first group's setdefault reached the C environment...
        assert_eq!(
            std::env::var("UNIT_SETTINGS").as_deref(),
            Ok("first"),
            "os.environ no longer calls putenv?"
        );
        // ...but a group created afterwards gets its own default.
        let second = "import os\nresult = os.environ.setdefault('UNIT_SETTINGS', 'second')";
        assert_eq!(eval("unit-env-second", second), "second");
        assert_eq!(
            eval(
                "unit-env-first",
                "import os\nresult = os.environ['UNIT_SETTINGS']"
            ),
            "first"
        );
    }

    #[test]
    fn nested_calls_return_to_the_outer_interpreter() {
        start();
        let main = eval("", "import sys\nresult = id(sys.modules)");
        let a = eval("unit-nest", "import sys\nresult = id(sys.modules)");
        assert_ne!(main, a);
        let seen = with_group("unit-nest", |_| {
            let inner = eval("", "import sys\nresult = id(sys.modules)");
            let back = eval("unit-nest", "import sys\nresult = id(sys.modules)");
            let after = with_group("unit-nest", |py| {
                py.import("sys")
                    .unwrap()
                    .getattr("modules")
                    .unwrap()
                    .as_ptr() as usize
            })
            .unwrap();
            (inner, back, after.to_string())
        })
        .unwrap();
        assert_eq!(seen.0, main, "inner %{{GLOBAL}} call ran elsewhere");
        assert_eq!(seen.1, a);
        assert_eq!(seen.2, a);
        assert!(!with_group("", |_| in_sub_interpreter()).unwrap());
    }

    #[test]
    fn each_thread_keeps_its_state_in_a_group() {
        start();
        eval(
            "unit-threads",
            "import threading\nlocal = threading.local()\nimport sys\nsys.modules['unit_local'] = local",
        );
        let per_thread = |tag: &'static str| {
            std::thread::spawn(move || {
                let mark = format!(
                    "import sys\nl = sys.modules['unit_local']\n\
                     l.tag = getattr(l, 'tag', '{tag}')\nresult = l.tag"
                );
                let first = eval("unit-threads", &mark);
                // A detach inside the group comes back to the group.
                let after = with_group("unit-threads", |py| {
                    py.detach(|| ());
                    in_sub_interpreter()
                })
                .unwrap();
                let again = eval("unit-threads", &mark);
                (first, after, again)
            })
        };
        let (x, y) = (per_thread("x"), per_thread("y"));
        let (x, y) = (x.join().unwrap(), y.join().unwrap());
        assert_eq!(x, ("x".to_string(), true, "x".to_string()));
        assert_eq!(y, ("y".to_string(), true, "y".to_string()));
    }

    #[test]
    fn every_interpreter_is_visited() {
        start();
        eval("unit-each", "result = 1");
        let mut seen = Vec::new();
        for_each_group(|_, group| seen.push(group.to_owned()));
        assert_eq!(seen.first().map(String::as_str), Some(""));
        assert!(seen.iter().any(|g| g == "unit-each"), "{seen:?}");
    }
}
