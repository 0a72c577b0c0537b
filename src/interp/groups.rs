//! Application groups as CPython sub-interpreters, the way mod_wsgi isolates
//! them: every group other than `%{GLOBAL}` (the empty name) gets its own
//! interpreter, with its own `sys.modules`, `sys.path`, `os.environ` and
//! module globals; `%{GLOBAL}` is the main interpreter, where extension
//! modules that refuse sub-interpreters still work.
//!
//! pyo3 has no safe API for sub-interpreters, so this is the raw layer.
//! The interpreters share the one GIL of Python 3.11. A thread enters a
//! group by taking the GIL with its own thread state of the group's
//! interpreter (`PyEval_RestoreThread`): Python 3.11 asks a
//! GIL holder to let go only when the waiting thread's state belongs to the
//! holder's interpreter, so a thread that waited as the main interpreter
//! would never get a CPU-bound request of the group to yield (measured:
//! 1.3 s waits behind a busy loop instead of the 5 ms switch interval).
//! pyo3 must then count the thread as attached, or nested attaches would
//! take the GIL a second time and dropped objects would be queued for
//! another interpreter; only its own trampolines do that without
//! `PyGILState_Ensure` (which knows the main interpreter only), so the
//! group's code runs inside a call of a small `#[pyfunction]` (`enter`)
//! made through the C API. Calls that nest inside an entered interpreter
//! swap thread states under the GIL they hold instead (`PyThreadState_Swap`),
//! restoring the outer one on the way out. `py.detach` inside a group
//! saves and restores the group's thread state, as it should.
//!
//! Each thread keeps one thread state per interpreter for its whole life, as
//! it keeps its main one (`thread.rs`): `threading.local` survives between
//! requests and no state is created per request.
//!
//! What pyo3 caches process-wide (the `#[pyclass]` type objects, `intern!`
//! strings, the version tuples of the environ) is created by whichever
//! interpreter asks first and then used by all. Under one shared GIL that is
//! sound: reference counts are only touched under the GIL, the allocator is
//! process-wide, and the cached values are immutable (strings, tuples) or
//! type objects that keep no per-interpreter state and are made immutable
//! (`immutable_type`), so no group can set an attribute on one for the
//! others to see. What holds an
//! interpreter's own objects is kept per interpreter: the environ template
//! (its `wsgi.errors` stream), the loaded scripts (keyed by group). pyo3's only interpreter check is for `#[pymodule]`
//! initialisation, which this crate does not use: the `mod_wsgi` module and
//! the standard streams are built afresh in every interpreter.
//!
//! Each new interpreter's `os.environ` starts from the environment the
//! process had when Python started, not from what other groups have set
//! since (`fresh_environ`).
//!
//! Interpreters are never ended: they live as long as the process, like the
//! main one, which is never finalised either.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;

use super::InterpError;

/// A sub-interpreter: its `PyInterpreterState` and its `enter` function
/// object, by address (both live as long as the process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Interp {
    /// The interpreter's state, by address.
    state: usize,
    /// The thread state used to enter it, by address.
    enter: usize,
}

/// A group's interpreter once made, or why it could not be. Its lock is held
/// while the interpreter is made (which runs Python and may wait for the
/// GIL); the table of slots is only ever locked for a lookup, so a group
/// being made never holds up requests of the others.
type Slot = Arc<Mutex<Option<Result<Interp, InterpError>>>>;

/// Every group's slot.
static GROUPS: Mutex<Vec<(String, Slot)>> = Mutex::new(Vec::new());

/// The slot of `group`, added if new.
fn slot(group: &str) -> Slot {
    let mut groups = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, slot)) = groups.iter().find(|(name, _)| name == group) {
        return slot.clone();
    }
    let slot = Slot::default();
    groups.push((group.to_owned(), slot.clone()));
    slot
}

/// Group code waiting to run inside `enter`, as a pointer to the caller's
/// closure (erased to `'static`: it is only used during the call).
type Task = dyn for<'py> FnMut(Python<'py>);

thread_local! {
    /// This thread's own thread state in each sub-interpreter it entered.
    static STATES: RefCell<HashMap<usize, usize>> = RefCell::new(HashMap::new());
    static TASK: Cell<Option<*mut Task>> = const { Cell::new(None) };
}

/// Runs the task `with_group` left for this thread, with the `Python` token
/// of pyo3's trampoline, which counts the thread as attached.
#[pyfunction]
fn enter(py: Python<'_>) {
    if let Some(task) = TASK.with(|t| t.take()) {
        // SAFETY: `run_entered` set the pointer to a closure that outlives
        // this call (it waits for the call to return) and clears it above,
        // so it is used once.
        unsafe { (*task)(py) }
    }
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
/// returns the thread to the interpreter it was in. Every way into Python
/// goes through here or `with_python` (which count the nesting); called
/// from inside a bare `Python::attach`, it would take the GIL it holds.
pub fn with_group<R>(
    group: &str,
    f: impl for<'py> FnOnce(Python<'py>) -> R,
) -> Result<R, InterpError> {
    if group.is_empty() || super::thread::is_inside() {
        return swapped(group, f);
    }
    // The thread's main state comes first: the first thread state made on
    // a thread becomes the one PyGILState_Ensure (and so pyo3) uses.
    assert!(super::is_initialized(), "Python is not initialised");
    super::thread::pin_thread_state();
    // Busy only while the interpreter is being made: then wait as below.
    let known = slot(group).try_lock().ok().and_then(|made| made.clone());
    let interp = match known {
        Some(made) => made?,
        None => super::thread::with_python(|py| interpreter(py, group))?,
    };
    run_entered(interp, f)
}

/// `with_group` from a thread that already holds the GIL (or for the main
/// interpreter): attach through pyo3 and swap in the wanted thread state.
fn swapped<R>(group: &str, f: impl for<'py> FnOnce(Python<'py>) -> R) -> Result<R, InterpError> {
    super::thread::with_python(|py| {
        let state = if group.is_empty() {
            // SAFETY: attached; this thread's main state was its first one
            // (`pin_thread_state`, or Python's start on the thread that
            // started it), so it is the one the GILState API knows.
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

/// Takes the GIL as this thread's state of `interp` and runs `f` inside a
/// call of the interpreter's `enter` function. A panic in `f` is caught
/// inside the call and resumed once the GIL is released again.
fn run_entered<R>(
    interp: Interp,
    f: impl for<'py> FnOnce(Python<'py>) -> R,
) -> Result<R, InterpError> {
    let state = thread_state(interp);
    let mut f = Some(f);
    let mut out: Option<std::thread::Result<R>> = None;
    let mut task = |py: Python<'_>| {
        if let Some(f) = f.take() {
            out = Some(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                || f(py),
            )));
        }
    };
    let task: &mut (dyn for<'py> FnMut(Python<'py>) + '_) = &mut task;
    // SAFETY: only the lifetime is erased; `enter` uses the pointer during
    // the call below, while `task` is alive, and it is cleared after.
    let task: *mut Task = unsafe { std::mem::transmute(task) };
    super::thread::entered(|| {
        let previous = TASK.with(|t| t.replace(Some(task)));
        // SAFETY: this thread holds no GIL (is_inside was false) and `state`
        // is its own thread state of a live interpreter: RestoreThread takes
        // the GIL as that state. `enter` is that interpreter's function
        // object, which is never freed; calling it with the GIL held is what
        // the C API asks. SaveThread releases the GIL again, keeping the
        // state for the next request.
        unsafe {
            ffi::PyEval_RestoreThread(state);
            let result = ffi::PyObject_CallNoArgs(interp.enter as *mut ffi::PyObject);
            if result.is_null() {
                ffi::PyErr_Clear();
            } else {
                ffi::Py_DECREF(result);
            }
            ffi::PyEval_SaveThread();
        }
        TASK.with(|t| t.set(previous));
    });
    match out {
        Some(Ok(value)) => Ok(value),
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        None => Err(InterpError::Setup(
            "the application group's interpreter could not be entered".into(),
        )),
    }
}

/// Runs `f` in every interpreter that exists, the main one first, with the
/// group's name ("" for the main one): for work such as `atexit` callbacks.
pub fn for_each_group(mut f: impl for<'py> FnMut(Python<'py>, &str)) {
    let slots: Vec<(String, Slot)> = GROUPS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let groups = slots.into_iter().filter_map(|(name, slot)| {
        let made = slot.lock().unwrap_or_else(|p| p.into_inner());
        matches!(*made, Some(Ok(_))).then_some(name)
    });
    let _ = with_group("", |py| f(py, ""));
    for group in groups {
        let _ = with_group(&group, |py| f(py, &group));
    }
}

/// The interpreter of `group`, created if needed. Making it runs Python code
/// that may release the GIL, so other threads wanting the same group wait
/// for its slot without holding the GIL (`lock_py_attached`).
fn interpreter(py: Python<'_>, group: &str) -> Result<Interp, InterpError> {
    let slot = slot(group);
    let mut made = slot.lock_py_attached(py).unwrap_or_else(|p| p.into_inner());
    if let Some(made) = &*made {
        return made.clone();
    }
    let result = create(py, group);
    if let Err(e) = &result {
        log::error!("WSGIRS352: Cannot create the Python sub-interpreter of application group '{group}': {e}");
    }
    *made = Some(result.clone());
    result
}

/// Creates the sub-interpreter of `group`.
fn create(py: Python<'_>, group: &str) -> Result<Interp, InterpError> {
    // SAFETY: the GIL is held, with this thread's main state current or,
    // when the call nests inside another group (`swapped`), this thread's
    // state of that group. Py_NewInterpreter makes the new interpreter's
    // first thread state current (and on failure restores the previous
    // one); SwapBack puts the previous state back however this function
    // leaves, a panic in the setup included.
    let (interp, state) = unsafe {
        let previous = ffi::PyThreadState_Get();
        let state = ffi::Py_NewInterpreter();
        if state.is_null() {
            return Err(InterpError::Init(format!(
                "Py_NewInterpreter failed for application group '{group}'"
            )));
        }
        let _back = SwapBack(previous);
        let settings = super::init::settings();
        let setup = fresh_environ(py).and_then(|()| super::init::setup(py, &settings));
        setup.map_err(InterpError::Setup)?;
        let enter = wrap_pyfunction!(enter, py)
            .map_err(|e| InterpError::Setup(e.to_string()))?
            .into_ptr();
        let interp = ffi::PyThreadState_GetInterpreter(state);
        (
            Interp {
                state: interp as usize,
                enter: enter as usize,
            },
            state,
        )
    };
    // The state that created the interpreter is this thread's state in it.
    STATES.with(|s| s.borrow_mut().insert(interp.state, state as usize));
    log::info!("WSGIRS353: Created Python sub-interpreter for application group '{group}'");
    Ok(interp)
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
        *s.borrow_mut().entry(interp.state).or_insert_with(|| {
            // SAFETY: the interpreter lives as long as the process;
            // PyThreadState_New needs no GIL in 3.11 (it takes the runtime's
            // own lock). A thread state made here is used only by this
            // thread.
            unsafe { ffi::PyThreadState_New(interp.state as *mut ffi::PyInterpreterState) as usize }
        })
    }) as *mut ffi::PyThreadState
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wsgi::in_sub_interpreter;
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

    /// A group first used from inside another is made there, and the
    /// caller is back in its own group afterwards; other threads then
    /// enter the new group on their own thread states.
    #[test]
    fn a_group_made_inside_another_returns_to_it() {
        start();
        let outer = eval("unit-outer", "import sys\nresult = id(sys.modules)");
        let (inner, back) = with_group("unit-outer", |_| {
            let inner = eval("unit-made-inside", "import sys\nresult = id(sys.modules)");
            (
                inner,
                eval("unit-outer", "import sys\nresult = id(sys.modules)"),
            )
        })
        .unwrap();
        assert_ne!(inner, outer);
        assert_eq!(back, outer);
        let elsewhere =
            std::thread::spawn(|| eval("unit-made-inside", "import sys\nresult = id(sys.modules)"));
        assert_eq!(elsewhere.join().unwrap(), inner);
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

    /// A thread that never lets go of the GIL on its own (a CPU-bound loop)
    /// must still yield to another thread of its group at the switch
    /// interval: the loop only ends when the other thread got in.
    #[test]
    fn a_busy_group_yields_the_gil_to_its_other_threads() {
        start();
        eval(
            "unit-busy",
            "import sys, types\nsys.modules['unit_flag'] = types.SimpleNamespace(up=False, done=False)",
        );
        let busy = std::thread::spawn(|| {
            eval(
                "unit-busy",
                "import sys, time\nflag = sys.modules['unit_flag']\nflag.up = True\n\
                 end = time.monotonic() + 60\n\
                 while not flag.done and time.monotonic() < end:\n    pass\n\
                 result = flag.done",
            )
        });
        // Wait (outside Python) until the loop runs, then get in beside it.
        while eval(
            "unit-busy",
            "import sys\nresult = sys.modules['unit_flag'].up",
        ) != "True"
        {
            std::thread::yield_now();
        }
        eval(
            "unit-busy",
            "import sys\nsys.modules['unit_flag'].done = True",
        );
        assert_eq!(busy.join().unwrap(), "True");
    }

    #[test]
    fn a_panic_in_a_group_reaches_the_caller_and_leaves_it_usable() {
        start();
        let caught = std::panic::catch_unwind(|| {
            let _ = with_group("unit-panic", |_| panic!("boom"));
        });
        assert!(caught.is_err());
        assert_eq!(eval("unit-panic", "result = 'alive'"), "alive");
        assert_eq!(eval("", "result = 'main'"), "main");
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
