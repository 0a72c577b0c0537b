//! Python as Apache will see it, checked before Apache starts: which
//! interpreter matches the module and the python home, whether their
//! versions agree, and whether the application imports at all (Apache only
//! imports it at the first request, too late to tell the user clearly).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::failure::{Failure, Outcome};

/// How long an application may take to import before the check gives up
/// and lets Apache try anyway.
pub const IMPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `X.Y` of the libpython a module file is linked against, read from
/// its dynamic section's `libpython3.11.so.1.0`-style name.
pub fn libpython_version(module: &Path) -> Option<String> {
    let bytes = std::fs::read(module).ok()?;
    const MARKER: &[u8] = b"libpython";
    let mut start = 0;
    while let Some(offset) = bytes[start..]
        .windows(MARKER.len())
        .position(|w| w == MARKER)
    {
        let after = &bytes[start + offset + MARKER.len()..];
        let version: String = after
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .map(|&b| b as char)
            .collect();
        let rest = &after[version.len()..];
        let version = version.trim_end_matches('.');
        if version.split('.').count() == 2 && (rest.starts_with(b"so") || rest.starts_with(b"m.so"))
        {
            return Some(version.to_owned());
        }
        start += offset + MARKER.len();
    }
    None
}

/// The interpreter of a python home (a virtualenv or a prefix).
pub fn home_interpreter(home: &Path) -> Outcome<PathBuf> {
    ["python3", "python"]
        .iter()
        .map(|name| home.join("bin").join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Failure::new(
                format!("the python home {} has no bin/python3", home.display()),
                "pass --python-home a virtualenv or Python installation prefix",
            )
        })
}

/// The interpreter whose view of the world the module's Python shares: the
/// home's when there is one, else the system's Python of the version the
/// module links (its built-in prefix is the system one).
pub fn interpreter(home: Option<&Path>, module: &Path) -> Outcome<PathBuf> {
    if let Some(home) = home {
        return home_interpreter(home);
    }
    let versioned = libpython_version(module).map(|v| format!("python{v}"));
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(name) = &versioned {
        candidates.push(Path::new("/usr/bin").join(name));
        candidates.push(Path::new("/usr/local/bin").join(name));
    }
    candidates.push("/usr/bin/python3".into());
    Ok(candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(versioned.unwrap_or_else(|| "python3".to_owned()))))
}

/// Output of a finished child, or `None` if it outlived `timeout` (it is
/// killed then).
fn output_within(
    mut command: Command,
    timeout: Duration,
) -> std::io::Result<Option<(bool, String, String)>> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Read both pipes on their own threads so a chatty child cannot block
    // on a full pipe while we wait for it to exit.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(status.map(|s| (s.success(), stdout, stderr)))
}

/// The `X.Y` version of an interpreter.
pub fn interpreter_version(python: &Path) -> Option<String> {
    let mut command = Command::new(python);
    command.args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]);
    let (ok, stdout, _) = output_within(command, Duration::from_secs(10)).ok()??;
    ok.then(|| stdout.trim().to_owned())
}

/// Refuses a python home of another Python version than the module's: the
/// module's libpython cannot use another version's standard library.
pub fn check_versions_agree(python: &Path, home: &Path, module: &Path) -> Outcome<()> {
    let (Some(wanted), Some(found)) = (libpython_version(module), interpreter_version(python))
    else {
        return Ok(());
    };
    if wanted == found {
        return Ok(());
    }
    Err(Failure::new(
        format!(
            "the python home {} is Python {found}, but {} embeds Python {wanted}",
            home.display(),
            module.display()
        ),
        format!("make the virtualenv with python{wanted} -m venv, or build the module against Python {found}"),
    ))
}

/// Loads a WSGI script the way the module will (fresh module, python path
/// through site.addsitedir, no current directory on sys.path) and checks it
/// defines a callable `application`.
const IMPORT_CHECK: &str = r#"
import site
import sys
import types

if sys.path and sys.path[0] == "":
    del sys.path[0]
script, paths = sys.argv[1], sys.argv[2:]
for directory in paths:
    site.addsitedir(directory)
module = types.ModuleType("_wsgi_rs_preflight")
module.__file__ = script
with open(script, "rb") as source:
    code = compile(source.read(), script, "exec")
exec(code, module.__dict__)
application = getattr(module, "application", None)
if not callable(application):
    sys.exit("RuntimeError: %s defines no callable named 'application'" % script)
# What the module's daemon processes also check: ASGI 3 (a coroutine
# function, or an instance whose __call__ is one) or WSGI.
import inspect
call = None if inspect.isclass(application) else getattr(application, "__call__", None)
asgi = inspect.iscoroutinefunction(application) or (
    call is not None and inspect.iscoroutinefunction(call))
print("interface=" + ("asgi" if asgi else "wsgi"))
"#;

/// What the import check found the application to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// A WSGI application (or not known: the import was too slow).
    Wsgi,
    /// An ASGI 3 application: daemon mode only.
    Asgi,
}

/// Imports the application with `python` before Apache does and says
/// whether it is ASGI; an exception becomes a failure carrying its last
/// line. An import slower than [`IMPORT_TIMEOUT`] is only warned about.
pub fn check_import(python: &Path, script: &Path, python_path: &[PathBuf]) -> Outcome<Interface> {
    let mut command = Command::new(python);
    command
        .arg("-c")
        .arg(IMPORT_CHECK)
        .arg(script)
        .args(python_path);
    let result = output_within(command, IMPORT_TIMEOUT).map_err(|e| {
        Failure::new(
            format!(
                "could not run {} to check the application: {e}",
                python.display()
            ),
            "install Python 3 or pass --python-home",
        )
    })?;
    let Some((ok, stdout, stderr)) = result else {
        log::warn!(
            "importing the application took longer than {}s; starting Apache anyway",
            IMPORT_TIMEOUT.as_secs()
        );
        return Ok(Interface::Wsgi);
    };
    if ok && stdout.lines().any(|l| l == "interface=asgi") {
        return Ok(Interface::Asgi);
    }
    // The terminal's Ctrl-C interrupts the check too: that is the user
    // stopping wsgi-rs (the caller sees it), not the application failing.
    if ok || crate::supervise::stop_requested() {
        return Ok(Interface::Wsgi);
    }
    let traceback = stderr.trim_end();
    log::info!(
        "importing the application with {} failed:\n{traceback}",
        python.display()
    );
    let last_line = traceback.lines().last().unwrap_or("(no message)").trim();
    Err(Failure::new(
        format!("the application cannot be imported: {last_line}"),
        "fix the error shown in the traceback above",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_libpython_version_of_a_module_file() {
        let path = std::env::temp_dir().join(format!("wsgi-rs-libpython-{}", std::process::id()));
        std::fs::write(
            &path,
            b"\x7fELF junk libpython\0 libpython3.12.so.1.0\0more",
        )
        .unwrap();
        assert_eq!(libpython_version(&path).as_deref(), Some("3.12"));
        std::fs::write(&path, b"no python here").unwrap();
        assert_eq!(libpython_version(&path), None);
        std::fs::remove_file(&path).unwrap();
    }
}
