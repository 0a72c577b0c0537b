//! Python as Apache will see it: which Python version the module embeds,
//! the interpreter of a python home, and whether their versions agree.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::failure::{Failure, Outcome};

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
