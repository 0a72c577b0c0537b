//! Finding Apache and the module: the httpd binary, `apxs`, Apache's module
//! directory, the WSGI module file and the name it registers; and running
//! `httpd -t` with its syntax errors turned into `file:line: message`.

use std::env;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::failure::{Failure, Outcome};

/// Where distributions put the httpd binary, most common first.
const HTTPD_CANDIDATES: [&str; 3] = [
    "/usr/sbin/apache2",
    "/usr/sbin/httpd",
    "/usr/local/apache2/bin/httpd",
];

/// Module directories of common layouts, for machines without `apxs`.
const MODULE_DIR_CANDIDATES: [&str; 4] = [
    "/usr/lib/apache2/modules",
    "/usr/lib64/httpd/modules",
    "/usr/lib/httpd/modules",
    "/usr/local/apache2/modules",
];

/// The file name `install` gives the module, and the name looked for next
/// to this program and in Apache's module directory.
pub const INSTALLED_MODULE_NAME: &str = "mod_wsgi_rs.so";

/// What `cargo build` calls the module.
const BUILT_MODULE_NAME: &str = "libmod_wsgi_rs.so";

/// Whether `path` is a file someone may execute.
fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `name` found on `$PATH`.
fn search_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable_file(candidate))
}

/// An environment variable that is set and not empty.
fn nonempty_env(name: &str) -> Option<OsString> {
    env::var_os(name).filter(|value| !value.is_empty())
}

/// The httpd binary: `$APACHE2` when set, else the first one installed.
pub fn find_httpd() -> Outcome<PathBuf> {
    if let Some(chosen) = nonempty_env("APACHE2") {
        let chosen = PathBuf::from(chosen);
        let resolved = if chosen.components().count() > 1 {
            Some(chosen.clone()).filter(|p| is_executable_file(p))
        } else {
            search_path(&chosen.to_string_lossy())
        };
        return resolved.ok_or_else(|| {
            Failure::new(
                format!(
                    "APACHE2 is set to {}, which is not an executable Apache httpd",
                    chosen.display()
                ),
                "point APACHE2 at apache2 or httpd, or unset it to use the installed one",
            )
        });
    }
    HTTPD_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| is_executable_file(p))
        .or_else(|| search_path("apache2"))
        .or_else(|| search_path("httpd"))
        .ok_or_else(|| {
            Failure::new(
                "Apache httpd is not installed (no apache2 or httpd was found)",
                "install it (Debian/Ubuntu: apt-get install apache2; RHEL/Fedora: dnf install httpd) \
                 or set APACHE2 to its path",
            )
        })
}

/// One `apxs -q` value, or `None` when apxs is missing or fails.
pub fn apxs_query(variable: &str) -> Option<String> {
    let candidates: Vec<OsString> = nonempty_env("APXS")
        .into_iter()
        .chain(["apxs", "apxs2"].map(OsString::from))
        .collect();
    candidates.iter().find_map(|apxs| {
        let output = Command::new(apxs).args(["-q", variable]).output().ok()?;
        let value = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        (output.status.success() && !value.is_empty()).then_some(value)
    })
}

/// Apache's own module directory (where mod_mpm_event.so and friends are).
pub fn modules_dir() -> Outcome<PathBuf> {
    apxs_query("LIBEXECDIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_dir())
        .or_else(|| {
            MODULE_DIR_CANDIDATES
                .iter()
                .map(PathBuf::from)
                .find(|dir| dir.is_dir())
        })
        .ok_or_else(|| {
            Failure::new(
                "Apache's module directory was not found (apxs is missing and none of the usual \
                 directories exist)",
                "install the Apache development files (apache2-dev or httpd-devel) so apxs can tell",
            )
        })
}

/// The module to load: `--module` when given, else the one beside this
/// program (where `cargo build` leaves it), else the installed one.
pub fn resolve_module(given: Option<&Path>) -> Outcome<PathBuf> {
    if let Some(given) = given {
        let path = std::path::absolute(given).unwrap_or_else(|_| given.to_path_buf());
        if !path.is_file() {
            return Err(Failure::new(
                format!("the module {} does not exist", path.display()),
                "pass the path of mod_wsgi_rs.so with --module \
                 (cargo build --release leaves it at target/release/libmod_wsgi_rs.so)",
            ));
        }
        return Ok(path);
    }
    let mut looked = Vec::new();
    if let Some(dir) = env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        for name in [BUILT_MODULE_NAME, INSTALLED_MODULE_NAME] {
            looked.push(dir.join(name));
        }
    }
    // A packaged module (libapache2-mod-wsgi-rs) is found without apxs,
    // which only the development package installs.
    if let Ok(dir) = modules_dir() {
        looked.push(dir.join(INSTALLED_MODULE_NAME));
    }
    let found = looked.iter().find(|p| p.is_file()).cloned();
    found.ok_or_else(|| {
        let places: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
        Failure::new(
            format!(
                "the mod_wsgi_rs module was not found (looked for {})",
                places.join(", ")
            ),
            "build it with cargo build --release, install it with wsgi-rs install, \
             or pass --module PATH",
        )
    })
}

/// The name the module file registers with `LoadModule`. Debian's and
/// mod_wsgi-express's mod_wsgi builds (`mod_wsgi.so`, `mod_wsgi-py311…so`,
/// RHEL's `mod_wsgi_python3.so`) register `wsgi_module`; ours registers
/// `wsgi_rs_module`.
pub fn module_symbol(module: &Path) -> &'static str {
    let name = module
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains("wsgi_rs") && name.starts_with("mod_wsgi") {
        "wsgi_module"
    } else {
        "wsgi_rs_module"
    }
}

/// The `LoadModule` line for a module file.
pub fn load_module_line(module: &Path) -> String {
    format!(
        "LoadModule {} {}",
        module_symbol(module),
        conf_quote(&module.to_string_lossy())
    )
}

/// A value as one quoted word of an Apache configuration line.
pub fn conf_quote(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\\\""))
}

/// One error reported by `httpd -t`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `file:line` when Apache said where.
    pub location: Option<String>,
    /// What Apache said.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// What `httpd -t` concluded.
#[derive(Debug)]
pub struct ConfigTest {
    /// Apache accepted the configuration.
    pub ok: bool,
    /// The errors it reported.
    pub errors: Vec<ConfigError>,
    /// Other lines Apache printed (warnings), as they were.
    pub notes: Vec<String>,
}

/// Splits "… Syntax error on line N of FILE: rest" into `FILE:N` and
/// `rest` (empty when the message is on the next line).
fn parse_syntax_error(line: &str) -> Option<(String, String)> {
    const MARKER: &str = "Syntax error on line ";
    let after = &line[line.find(MARKER)? + MARKER.len()..];
    let (number, after) = after.split_once(" of ")?;
    number.parse::<u32>().ok()?;
    let (file, rest) = match after.split_once(": ") {
        Some((file, rest)) => (file, rest.trim()),
        None => (after.strip_suffix(':').unwrap_or(after), ""),
    };
    Some((format!("{file}:{number}"), rest.to_owned()))
}

/// Reads `httpd -t` output: syntax errors (one line, or a header line and
/// the message on the next) become located errors.
pub fn parse_config_test(output: &str, succeeded: bool) -> ConfigTest {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut lines = output.lines().filter(|l| !l.trim().is_empty()).peekable();
    let mut syntax_ok = false;
    while let Some(line) = lines.next() {
        if line.trim() == "Syntax OK" {
            syntax_ok = true;
        } else if let Some((location, rest)) = parse_syntax_error(line) {
            let message = if rest.is_empty() {
                lines.next().unwrap_or("").trim().to_owned()
            } else {
                rest
            };
            errors.push(ConfigError {
                location: Some(location),
                message,
            });
        } else {
            notes.push(line.to_owned());
        }
    }
    let ok = succeeded && syntax_ok && errors.is_empty();
    if !ok && errors.is_empty() {
        // A failure Apache did not locate (no MPM, a bad -C directive):
        // its last line is the cause.
        if let Some(last) = notes.pop() {
            errors.push(ConfigError {
                location: None,
                message: last,
            });
        }
    }
    ConfigTest { ok, errors, notes }
}

/// Runs `httpd -t -f CONFIG` with `-C` directives placed before the file.
/// `envvars` is a Debian-style file of variables the configuration
/// refers to, sourced first as apachectl does.
pub fn test_config(
    httpd: &Path,
    config: &Path,
    early_directives: &[String],
    envvars: Option<&Path>,
) -> Outcome<ConfigTest> {
    let mut args: Vec<OsString> = Vec::new();
    for directive in early_directives {
        args.push("-C".into());
        args.push(directive.into());
    }
    args.push("-t".into());
    args.push("-f".into());
    args.push(config.into());
    let output = match envvars {
        Some(envvars) => Command::new("sh")
            .arg("-c")
            .arg(". \"$0\" && exec \"$@\"")
            .arg(envvars)
            .arg(httpd)
            .args(&args)
            .output(),
        None => Command::new(httpd).args(&args).output(),
    }
    .map_err(|e| {
        Failure::new(
            format!("could not run {}: {e}", httpd.display()),
            "check that Apache httpd is installed and executable",
        )
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    Ok(parse_config_test(&text, output.status.success()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_with_the_message_on_the_next_line() {
        let out = "AH00526: Syntax error on line 12 of /srv/site.conf:\n\
                   WSGIScriptAlias: unknown option 'proces-group=foo'\n";
        let test = parse_config_test(out, false);
        assert!(!test.ok);
        assert_eq!(
            test.errors,
            [ConfigError {
                location: Some("/srv/site.conf:12".into()),
                message: "WSGIScriptAlias: unknown option 'proces-group=foo'".into(),
            }]
        );
        assert_eq!(
            test.errors[0].to_string(),
            "/srv/site.conf:12: WSGIScriptAlias: unknown option 'proces-group=foo'"
        );
    }

    #[test]
    fn syntax_error_on_one_line() {
        let out = "apache2: Syntax error on line 3 of /x/httpd.conf: Cannot load /y.so into server: /y.so: cannot open shared object file\n";
        let test = parse_config_test(out, false);
        assert_eq!(test.errors[0].location.as_deref(), Some("/x/httpd.conf:3"));
        assert!(test.errors[0].message.starts_with("Cannot load /y.so"));
    }

    #[test]
    fn success_keeps_warnings_as_notes() {
        let out = "AH00558: apache2: Could not reliably determine the server's fully qualified domain name\nSyntax OK\n";
        let test = parse_config_test(out, true);
        assert!(test.ok);
        assert!(test.errors.is_empty());
        assert_eq!(test.notes.len(), 1);
    }

    #[test]
    fn unlocated_failure_uses_the_last_line() {
        let test = parse_config_test(
            "AH00534: apache2: Configuration error: No MPM loaded.\n",
            false,
        );
        assert!(!test.ok);
        assert_eq!(test.errors[0].location, None);
        assert!(test.errors[0].message.contains("No MPM loaded"));
    }

    #[test]
    fn module_symbol_follows_the_file_name() {
        assert_eq!(
            module_symbol(Path::new("/usr/lib/apache2/modules/mod_wsgi.so")),
            "wsgi_module"
        );
        assert_eq!(
            module_symbol(Path::new(
                "/x/mod_wsgi-py311.cpython-311-x86_64-linux-gnu.so"
            )),
            "wsgi_module"
        );
        assert_eq!(
            module_symbol(Path::new("/x/mod_wsgi_rs.so")),
            "wsgi_rs_module"
        );
        assert_eq!(
            module_symbol(Path::new("/x/libmod_wsgi_rs.so")),
            "wsgi_rs_module"
        );
    }

    #[test]
    fn quoting_escapes_double_quotes() {
        assert_eq!(conf_quote("/a b/c\"d"), "\"/a b/c\\\"d\"");
    }
}
