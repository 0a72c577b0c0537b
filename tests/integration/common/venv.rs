//! The virtualenv with real frameworks (Flask, Falcon, Django, Pyramid,
//! PasteDeploy) that `frameworks.rs` and `seeds.rs` run their apps in.
//!
//! `scripts/test-venv.sh` builds it and `WSGI_TEST_VENV` names it
//! (`scripts/test.sh` does both). Apache's children run as www-data, which
//! cannot read a venv inside a repository under /root, say; so the first
//! test that needs it copies it once (`cp -a`, about half a second) to
//! `$TMPDIR/mod_wsgi_rs-it/venv-<key>`, world-readable, and every test uses
//! that copy. The key is a hash of the stamp `test-venv.sh` writes (the
//! requirements and the Python version), so later runs, and other checkouts
//! on the machine, reuse the copy until the requirements change. Copies
//! unused for a day are removed.
//! A venv can be copied this way because the module only needs its
//! `pyvenv.cfg` and `lib/` (its `bin/` scripts, which name the original
//! path, are never run).

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// What `scripts/test-venv.sh` installs; its stamp starts with this text.
const REQUIREMENTS: &str = include_str!("../../requirements-frameworks.txt");
const STAMP: &str = ".wsgi-test-venv-stamp";
/// Written into a copy once it is complete.
const COPIED: &str = ".copied-for-tests";

/// The readable copy of the test venv, made on first use. Panics with what
/// to run when the venv is missing or stale.
pub fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(prepare)
}

fn prepare() -> PathBuf {
    let source = match std::env::var_os("WSGI_TEST_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!(
            "WSGI_TEST_VENV is not set. The framework and deployment-sample tests run their \
             apps in the virtualenv that scripts/test-venv.sh builds: run `bash scripts/test.sh`, \
             or `bash scripts/test-venv.sh` and then \
             `WSGI_TEST_VENV=$PWD/target/test-venv cargo test`."
        ),
    };
    let stamp = fs::read_to_string(source.join(STAMP)).unwrap_or_else(|e| {
        panic!(
            "WSGI_TEST_VENV={}: no {STAMP} ({e}), so not a complete test venv: \
             run `bash scripts/test-venv.sh` (with the same WSGI_TEST_VENV)",
            source.display()
        )
    });
    assert!(
        stamp.starts_with(REQUIREMENTS),
        "WSGI_TEST_VENV={} was built for other requirements than \
         tests/requirements-frameworks.txt: rerun `bash scripts/test-venv.sh`",
        source.display()
    );

    let mut h = DefaultHasher::new();
    stamp.hash(&mut h);
    let base = std::env::temp_dir().join("mod_wsgi_rs-it");
    fs::create_dir_all(&base).unwrap_or_else(|e| panic!("mkdir {}: {e}", base.display()));
    fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
    let name = format!("venv-{:016x}", h.finish());
    let copy = base.join(&name);
    if let Ok(marker) = fs::File::options().write(true).open(copy.join(COPIED)) {
        // Recently used: keeps it from being cleaned up as stale.
        let _ = marker.set_modified(SystemTime::now());
        return copy;
    }

    // Copy under a private name, then rename: a concurrent test run either
    // sees no copy or a complete one.
    let partial = base.join(format!("{name}.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    run(Command::new("cp").arg("-a").arg(&source).arg(&partial));
    run(Command::new("chmod").args(["-R", "a+rX"]).arg(&partial));
    fs::write(partial.join(COPIED), source.display().to_string()).unwrap();
    if fs::rename(&partial, &copy).is_err() {
        // Another run finished its copy first; use that one.
        let _ = fs::remove_dir_all(&partial);
        assert!(
            copy.join(COPIED).exists(),
            "cannot move the venv copy to {}",
            copy.display()
        );
    }
    // Copies for other requirements that nothing used for a day, and copies
    // left half-made a day ago, are of no further use. (Not any other copy:
    // a concurrent run on another branch may be using it right now.)
    let day = Duration::from_secs(24 * 3600);
    for entry in fs::read_dir(&base).unwrap().flatten() {
        let n = entry.file_name().to_string_lossy().into_owned();
        let stale = fs::metadata(entry.path().join(COPIED))
            .or_else(|_| entry.metadata())
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > day));
        if n.starts_with("venv-") && n != name && stale {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    copy
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}
