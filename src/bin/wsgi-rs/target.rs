//! What `serve` was asked to serve, and the small generated WSGI script
//! ("shim") that loads it: a `module:callable`, a PasteDeploy `.ini`, or a
//! `.wsgi` file wrapped so the reload monitor can run next to it.

use std::path::{Path, PathBuf};

use crate::failure::{Failure, Outcome};

/// The three kinds of TARGET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A WSGI script file, served as it is.
    Script(PathBuf),
    /// `package.module:callable`, imported from `directory` (where wsgi-rs
    /// was started) or the Python path.
    Callable {
        /// The module to import.
        module: String,
        /// The callable in it.
        callable: String,
        /// Where the module is found.
        directory: PathBuf,
    },
    /// A PasteDeploy configuration file.
    PasteIni(PathBuf),
}

/// Whether `word` is a Python identifier.
fn is_identifier(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// `text` as an existing file, relative to `cwd`.
fn existing_file(text: &str, cwd: &Path, what: &str, remedy: &str) -> Outcome<PathBuf> {
    let path = cwd.join(text);
    if !path.is_file() {
        return Err(Failure::new(
            format!("the {what} {} does not exist", path.display()),
            remedy,
        ));
    }
    Ok(std::path::absolute(&path).unwrap_or(path))
}

impl Target {
    /// Reads TARGET as given on the command line; relative paths and the
    /// module's import directory are taken from `cwd`.
    pub fn parse(text: &str, cwd: &Path) -> Outcome<Target> {
        if text.ends_with(".ini") {
            return existing_file(
                text,
                cwd,
                "PasteDeploy file",
                "check the path of the .ini file",
            )
            .map(Target::PasteIni);
        }
        if text.ends_with(".wsgi") || text.ends_with(".py") || cwd.join(text).is_file() {
            return existing_file(text, cwd, "WSGI script", "check the path of the script")
                .map(Target::Script);
        }
        if let Some((module, callable)) = text.split_once(':') {
            if module.split('.').all(is_identifier) && is_identifier(callable) {
                return Ok(Target::Callable {
                    module: module.to_owned(),
                    callable: callable.to_owned(),
                    directory: cwd.to_path_buf(),
                });
            }
        }
        Err(Failure::new(
            format!("TARGET '{text}' is neither an existing file nor a module:callable"),
            "give a WSGI script (app.wsgi), a package.module:application, or a PasteDeploy .ini",
        ))
    }

    /// The directory the application lives in: where its daemon processes
    /// start and what Apache's user must be able to read.
    pub fn directory(&self) -> PathBuf {
        match self {
            Target::Script(path) | Target::PasteIni(path) => path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/")),
            Target::Callable { directory, .. } => directory.clone(),
        }
    }

    /// What will be served, for the start-up line.
    pub fn describe(&self) -> String {
        match self {
            Target::Script(path) | Target::PasteIni(path) => path.display().to_string(),
            Target::Callable {
                module, callable, ..
            } => format!("{module}:{callable}"),
        }
    }
}

/// A Python string literal for any text.
pub fn python_literal(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    for c in text.chars() {
        match c {
            '\\' => literal.push_str("\\\\"),
            '"' => literal.push_str("\\\""),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                literal.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => literal.push(c),
        }
    }
    literal.push('"');
    literal
}

/// Puts the application's directory first on sys.path, as `python -m` would.
fn directory_on_sys_path(directory: &Path) -> String {
    let directory = python_literal(&directory.to_string_lossy());
    format!(
        "import sys\n\
         \n\
         if {directory} not in sys.path:\n    sys.path.insert(0, {directory})\n"
    )
}

/// Runs a WSGI script as mod_wsgi does (a fresh module named after nothing
/// importable, `__file__` set), but registered in sys.modules so the reload
/// monitor sees its file, and without writing bytecode next to it.
const SCRIPT_LOADER: &str = r#"import sys
import types


def _wsgi_rs_run_script(path):
    module = types.ModuleType("_wsgi_rs_script")
    module.__file__ = path
    sys.modules[module.__name__] = module
    with open(path, "rb") as source:
        code = compile(source.read(), path, "exec")
    exec(code, module.__dict__)
    return module
"#;

/// The reload monitor of `--reload-on-changes`. Apache's module reloads a
/// script whose modification time changed; this thread extends that to
/// every module the application imported by touching the script when any
/// of their files changes. In a daemon process the module then restarts
/// the process, which imports everything afresh. In an embedded
/// interpreter only the script runs again, so the changed modules are
/// dropped from sys.modules first and that run imports them anew.
const RELOAD_MONITOR: &str = r#"

def _wsgi_rs_monitor_changes(script):
    import os
    import threading
    import time

    name = "wsgi-rs-reload-monitor"
    # This script runs again after every reload, but one monitor per
    # process is enough: it keeps the modification times it has seen.
    if any(thread.name == name for thread in threading.enumerate()):
        return

    def module_files():
        files = {}
        for module_name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            # The script itself is left out: touching it is how a reload is
            # asked for, so watching it would make every monitor in every
            # process answer every other one.
            if isinstance(path, str) and path != script:
                files.setdefault(path, []).append(module_name)
        return files

    def modified(path):
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return None

    def watch(seen):
        while True:
            changed = []
            for path, names in module_files().items():
                mtime = modified(path)
                if seen.setdefault(path, mtime) != mtime:
                    seen[path] = mtime
                    changed.extend(names)
            if changed:
                for module_name in changed:
                    sys.modules.pop(module_name, None)
                try:
                    os.utime(script)
                    print("wsgi-rs: reloading, changed: %s" % ", ".join(sorted(changed)),
                          file=sys.stderr)
                except OSError as error:
                    print("wsgi-rs: cannot reload: %s" % error, file=sys.stderr)
            time.sleep(1.0)

    # The first modification times are taken now, before this script
    # returns: an edit made right after the application was imported must
    # count as a change. Modules imported later are timed when first seen.
    seen = {path: modified(path) for path in module_files()}
    threading.Thread(target=watch, args=(seen,), name=name, daemon=True).start()


_wsgi_rs_monitor_changes(__file__)
"#;

/// The generated WSGI script for a target, or `None` when the target's own
/// script can be served directly (a `.wsgi` file without reloading).
pub fn shim_source(target: &Target, reload_on_changes: bool) -> Option<String> {
    let header = format!(
        "# Generated by wsgi-rs for {}: written again at every start, so edit\n\
         # the application, not this file.\n",
        target.describe()
    );
    let body = match target {
        Target::Script(_) if !reload_on_changes => return None,
        Target::Script(path) => format!(
            "{SCRIPT_LOADER}\n\napplication = _wsgi_rs_run_script({}).application\n",
            python_literal(&path.to_string_lossy())
        ),
        Target::Callable {
            module,
            callable,
            directory,
        } => format!(
            "{}\nfrom {module} import {callable} as application\n",
            directory_on_sys_path(directory)
        ),
        // The .ini's directory goes on sys.path so `call:module:factory`
        // entries can name modules that sit next to it.
        Target::PasteIni(path) => format!(
            "{}\nfrom paste.deploy import loadapp\n\napplication = loadapp({})\n",
            directory_on_sys_path(&target.directory()),
            python_literal(&format!("config:{}", path.to_string_lossy()))
        ),
    };
    let monitor = if reload_on_changes {
        RELOAD_MONITOR
    } else {
        ""
    };
    Some(format!("{header}{body}{monitor}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wsgi-rs-target-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn parses_each_kind_of_target() {
        let dir = scratch_dir();
        std::fs::write(dir.join("app.wsgi"), "").unwrap();
        std::fs::write(dir.join("site.ini"), "").unwrap();
        assert_eq!(
            Target::parse("app.wsgi", &dir).unwrap(),
            Target::Script(dir.join("app.wsgi"))
        );
        assert_eq!(
            Target::parse("site.ini", &dir).unwrap(),
            Target::PasteIni(dir.join("site.ini"))
        );
        assert_eq!(
            Target::parse("pkg.web:app", &dir).unwrap(),
            Target::Callable {
                module: "pkg.web".into(),
                callable: "app".into(),
                directory: dir.clone(),
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_missing_files_and_malformed_names() {
        let dir = Path::new("/nonexistent-wsgi-rs");
        let missing = Target::parse("app.wsgi", dir).unwrap_err().to_string();
        assert!(missing.contains("WSGI script /nonexistent-wsgi-rs/app.wsgi does not exist"));
        let ini = Target::parse("x.ini", dir).unwrap_err().to_string();
        assert!(ini.contains("PasteDeploy file"));
        for bad in ["app", "pkg.:app", "pkg:1app", "pkg:a.b", ":app"] {
            let err = Target::parse(bad, dir).unwrap_err().to_string();
            assert!(err.contains("neither an existing file"), "{bad}: {err}");
        }
    }

    #[test]
    fn python_literals_escape_what_python_needs() {
        assert_eq!(
            python_literal("/a \"b\"\\c\n"),
            "\"/a \\\"b\\\"\\\\c\\x0a\""
        );
        assert_eq!(python_literal("/é"), "\"/é\"");
    }

    #[test]
    fn script_without_reloading_needs_no_shim() {
        let target = Target::Script("/srv/app.wsgi".into());
        assert_eq!(shim_source(&target, false), None);
        let shim = shim_source(&target, true).unwrap();
        assert!(shim.contains("application = _wsgi_rs_run_script(\"/srv/app.wsgi\").application"));
        assert!(shim.contains("_wsgi_rs_monitor_changes(__file__)"));
    }

    #[test]
    fn callable_and_ini_shims_import_their_application() {
        let callable = Target::Callable {
            module: "pkg.web".into(),
            callable: "app".into(),
            directory: "/srv/site".into(),
        };
        let shim = shim_source(&callable, false).unwrap();
        assert!(shim.contains("sys.path.insert(0, \"/srv/site\")"));
        assert!(shim.contains("from pkg.web import app as application"));
        assert!(!shim.contains("monitor"));

        let ini = shim_source(&Target::PasteIni("/srv/site/prod.ini".into()), false).unwrap();
        assert!(ini.contains("application = loadapp(\"config:/srv/site/prod.ini\")"));
        assert!(ini.contains("sys.path.insert(0, \"/srv/site\")"));
    }
}
