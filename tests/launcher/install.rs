//! `wsgi-rs install` (Debian and RHEL layouts) and `wsgi-rs module-config`.

use crate::harness::*;

#[test]
fn install_writes_debian_and_rhel_layouts() {
    let module = built_module();
    let module_bytes = std::fs::read(&module).unwrap();
    let shipped_load = include_str!("../../apache-conf/wsgi_rs.load");
    let shipped_conf = include_str!("../../apache-conf/wsgi_rs.conf");

    let debian = Scratch::new();
    std::fs::create_dir_all(debian.path().join("etc/apache2/mods-available")).unwrap();
    let installed = run({
        let mut c = wsgi_rs(debian.path());
        c.arg("install")
            .arg("--destdir")
            .arg(debian.path())
            .arg("--module")
            .arg(&module);
        c
    });
    assert!(installed.status.success(), "{}", installed.stderr);
    // apxs names the module directory when --libexecdir is not given.
    let copied = debian.path().join("usr/lib/apache2/modules/mod_wsgi_rs.so");
    assert_eq!(std::fs::read(&copied).unwrap(), module_bytes);
    let mods = debian.path().join("etc/apache2/mods-available");
    assert_eq!(
        std::fs::read_to_string(mods.join("wsgi_rs.load")).unwrap(),
        shipped_load
    );
    assert_eq!(
        std::fs::read_to_string(mods.join("wsgi_rs.conf")).unwrap(),
        shipped_conf
    );
    assert!(installed.stdout.contains("a2enmod wsgi_rs"));

    // A second install (an upgrade) keeps an edited configuration.
    std::fs::write(mods.join("wsgi_rs.conf"), "# mine\n").unwrap();
    let again = run({
        let mut c = wsgi_rs(debian.path());
        c.arg("install")
            .arg("--destdir")
            .arg(debian.path())
            .arg("--module")
            .arg(&module);
        c
    });
    assert!(again.status.success(), "{}", again.stderr);
    assert!(
        again.stdout.contains("restart Apache fully"),
        "{}",
        again.stdout
    );
    assert_eq!(
        std::fs::read_to_string(mods.join("wsgi_rs.conf")).unwrap(),
        "# mine\n"
    );

    let rhel = Scratch::new();
    std::fs::create_dir_all(rhel.path().join("etc/httpd/conf.modules.d")).unwrap();
    let installed = run({
        let mut c = wsgi_rs(rhel.path());
        c.arg("install")
            .arg("--destdir")
            .arg(rhel.path())
            .args(["--libexecdir", "/usr/lib64/httpd/modules"])
            .arg("--module")
            .arg(&module);
        c
    });
    assert!(installed.status.success(), "{}", installed.stderr);
    assert!(rhel
        .path()
        .join("usr/lib64/httpd/modules/mod_wsgi_rs.so")
        .is_file());
    let snippet =
        std::fs::read_to_string(rhel.path().join("etc/httpd/conf.modules.d/10-wsgi_rs.conf"))
            .unwrap();
    assert!(
        snippet.contains("\nLoadModule wsgi_rs_module /usr/lib64/httpd/modules/mod_wsgi_rs.so\n")
    );
    assert!(snippet.ends_with(shipped_conf));
}

#[test]
fn module_config_prints_the_lines_for_the_active_virtualenv() {
    let scratch = Scratch::new();
    let venv = make_venv(&scratch);
    let module = built_module();
    let load_line = format!("LoadModule wsgi_rs_module \"{}\"", module.display());
    let home_line = format!("WSGIPythonHome \"{}\"", venv.display());

    let from_env = run({
        let mut c = wsgi_rs(scratch.path());
        c.arg("module-config")
            .args(with_module(&[]))
            .env("VIRTUAL_ENV", &venv);
        c
    });
    assert!(from_env.status.success(), "{}", from_env.stderr);
    assert_eq!(from_env.stdout, format!("{load_line}\n{home_line}\n"));

    // No VIRTUAL_ENV, but the python3 found first on PATH is a virtualenv's.
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let from_path = run({
        let mut c = wsgi_rs(scratch.path());
        c.arg("module-config")
            .args(with_module(&[]))
            .env("PATH", path);
        c
    });
    assert!(from_path.status.success(), "{}", from_path.stderr);
    assert_eq!(from_path.stdout, format!("{load_line}\n{home_line}\n"));

    let system = run({
        let mut c = wsgi_rs(scratch.path());
        c.arg("module-config")
            .args(with_module(&[]))
            .env("PATH", "/usr/bin:/bin");
        c
    });
    assert!(system.status.success(), "{}", system.stderr);
    assert_eq!(system.stdout, format!("{load_line}\n"));
}
