//! `wsgi-rs install`: puts the module into Apache's module directory and
//! writes the files that load and configure it, in Debian's layout
//! (`mods-available/wsgi_rs.load` + `.conf`, for `a2enmod wsgi_rs`) or
//! RHEL's (`conf.modules.d/10-wsgi_rs.conf`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::apache::{self, INSTALLED_MODULE_NAME};
use crate::cli::InstallArgs;
use crate::failure::{Failure, Outcome};

/// The repository's Debian snippets, shipped inside the binary so an
/// installed wsgi-rs needs no source tree.
const DEBIAN_LOAD: &str = include_str!("../../../apache-conf/wsgi_rs.load");
/// The module's `.conf` for Debian's `mods-available`.
const DEBIAN_CONF: &str = include_str!("../../../apache-conf/wsgi_rs.conf");
/// The module path written in the snippets, replaced by the real one.
const SNIPPET_MODULE_PATH: &str = "/usr/lib/apache2/modules/mod_wsgi_rs.so";

/// The `wsgi_rs.load` text for a module installed at `module`.
pub fn load_snippet(module: &Path) -> String {
    DEBIAN_LOAD.replace(SNIPPET_MODULE_PATH, &module.to_string_lossy())
}

/// RHEL keeps one file per module in conf.modules.d, loading and
/// configuring it at once; a2enmod's advice does not apply there.
pub fn rhel_snippet(module: &Path) -> String {
    let load_lines: String = load_snippet(module)
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    format!(
        "# Loads mod_wsgi_rs (written by wsgi-rs install). Remove mod_wsgi's\n\
         # 10-wsgi*.conf first: both modules define the same directives.\n\
         {load_lines}\n{DEBIAN_CONF}"
    )
}

/// `path` moved under `destdir`, as packaging's DESTDIR does.
fn staged(destdir: Option<&Path>, path: &Path) -> PathBuf {
    match destdir {
        Some(destdir) => destdir.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    }
}

/// The failure for a file we could not write.
fn cannot_write(path: &Path, error: std::io::Error) -> Failure {
    let remedy = if error.kind() == std::io::ErrorKind::PermissionDenied {
        "run it as root (sudo wsgi-rs install), or use --destdir to install elsewhere"
    } else {
        "check that the directory exists and is writable"
    };
    Failure::new(format!("cannot write {}: {error}", path.display()), remedy)
}

/// Replaces `destination` by renaming a complete copy over it. A running
/// Apache has the old module mapped; writing into that file in place would
/// crash it, while a rename leaves the old file alive until the graceful
/// restart lets go of it.
fn replace_file(destination: &Path, contents: &[u8], mode: u32) -> Outcome<()> {
    let partial = destination.with_file_name(format!(
        ".{}.wsgi-rs-{}",
        destination
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = std::fs::write(&partial, contents)
        .and_then(|()| std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(mode)))
        .and_then(|()| std::fs::rename(&partial, destination));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        cannot_write(destination, e)
    })
}

/// Writes a configuration file unless one with other contents is there:
/// that one may hold the administrator's edits.
fn write_config(path: &Path, contents: &str) -> Outcome<()> {
    match std::fs::read_to_string(path) {
        Ok(existing) if existing == contents => Ok(()),
        Ok(_) => {
            log::info!(
                "kept {} (it differs from the shipped one and may hold your changes)",
                path.display()
            );
            Ok(())
        }
        Err(_) => {
            replace_file(path, contents.as_bytes(), 0o644)?;
            log::info!("wrote {}", path.display());
            Ok(())
        }
    }
}

/// `wsgi-rs install`.
pub fn run(args: &InstallArgs) -> Outcome<ExitCode> {
    let module = apache::resolve_module(args.module.as_deref())?;
    let libexecdir = match &args.libexecdir {
        Some(dir) => dir.clone(),
        None => apache::apxs_query("LIBEXECDIR").map(PathBuf::from).ok_or_else(|| {
            Failure::new(
                "Apache's module directory is unknown: apxs is not installed",
                "pass --libexecdir (Debian: /usr/lib/apache2/modules, RHEL: /usr/lib64/httpd/modules) \
                 or install apache2-dev / httpd-devel",
            )
        })?,
    };
    if !libexecdir.is_absolute() {
        return Err(Failure::new(
            format!(
                "--libexecdir {} is not an absolute path",
                libexecdir.display()
            ),
            "give the absolute path Apache loads modules from",
        ));
    }
    let destdir = args.destdir.as_deref();
    let installed_module = libexecdir.join(INSTALLED_MODULE_NAME);
    let staged_module = staged(destdir, &installed_module);
    if let Some(parent) = staged_module.parent() {
        if destdir.is_some() {
            std::fs::create_dir_all(parent).map_err(|e| cannot_write(parent, e))?;
        }
    }
    let bytes = std::fs::read(&module).map_err(|e| {
        Failure::new(
            format!("cannot read {}: {e}", module.display()),
            "pass a readable module with --module",
        )
    })?;
    let upgrading = staged_module.exists();
    replace_file(&staged_module, &bytes, 0o644)?;
    log::info!("installed {}", staged_module.display());

    let debian = staged(destdir, Path::new("/etc/apache2/mods-available"));
    let rhel = staged(destdir, Path::new("/etc/httpd/conf.modules.d"));
    if debian.is_dir() {
        // The .load file only names the module: always bring it up to date.
        let load = debian.join("wsgi_rs.load");
        replace_file(&load, load_snippet(&installed_module).as_bytes(), 0o644)?;
        log::info!("wrote {}", load.display());
        write_config(&debian.join("wsgi_rs.conf"), DEBIAN_CONF)?;
        if !upgrading {
            println!("Enable it with: a2enmod wsgi_rs && apachectl -k graceful");
        }
    } else if rhel.is_dir() {
        write_config(
            &rhel.join("10-wsgi_rs.conf"),
            &rhel_snippet(&installed_module),
        )?;
        if !upgrading {
            println!("Load it with: apachectl -k graceful");
        }
    } else {
        println!(
            "No Debian or RHEL Apache layout found; add this line to your Apache configuration:\n{}",
            apache::load_module_line(&installed_module)
        );
    }
    if upgrading {
        // The module is linked with -z nodelete (it cannot be unloaded), so
        // a graceful restart, which reopens modules by the same path, finds
        // the old copy still loaded and keeps it.
        println!(
            "Upgraded: a graceful restart keeps the old module loaded; restart Apache fully \
             to load the new one (systemctl restart apache2, or apachectl -k stop, then apachectl -k start)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_name_the_installed_module() {
        let module = Path::new("/usr/lib64/httpd/modules/mod_wsgi_rs.so");
        let load = load_snippet(module);
        assert!(
            load.contains("LoadModule wsgi_rs_module /usr/lib64/httpd/modules/mod_wsgi_rs.so\n")
        );
        assert!(!load.contains("/usr/lib/apache2/modules"));
        let rhel = rhel_snippet(module);
        assert!(
            rhel.contains("\nLoadModule wsgi_rs_module /usr/lib64/httpd/modules/mod_wsgi_rs.so\n")
        );
        assert!(rhel.ends_with(DEBIAN_CONF));
        assert!(!rhel.contains("a2enmod"));
    }

    /// a2enmod reads `# Conflicts:` in the comment lines before the first
    /// directive, and refuses to enable a module while one named there is.
    #[test]
    fn load_snippet_conflicts_with_mod_wsgi_for_a2enmod() {
        let header: Vec<&str> = DEBIAN_LOAD
            .lines()
            .take_while(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
            .collect();
        let conflicts: Vec<&str> = header
            .iter()
            .filter_map(|line| line.strip_prefix("# Conflicts:"))
            .flat_map(str::split_whitespace)
            .collect();
        assert_eq!(conflicts, ["wsgi"], "{DEBIAN_LOAD}");
    }

    #[test]
    fn destdir_prefixes_absolute_paths() {
        assert_eq!(
            staged(Some(Path::new("/tmp/stage")), Path::new("/usr/lib/x.so")),
            PathBuf::from("/tmp/stage/usr/lib/x.so")
        );
        assert_eq!(
            staged(None, Path::new("/usr/lib/x.so")),
            PathBuf::from("/usr/lib/x.so")
        );
    }
}
