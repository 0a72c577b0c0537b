//! Build script: locates httpd and APR headers through `apxs`, generates the
//! allowlisted FFI bindings with bindgen and compiles the C shim that holds what
//! bindgen cannot express (hook registration,
//! log macros and bucket-brigade macros).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/httpd/shim.c");
    println!("cargo:rerun-if-changed=src/httpd/shim.h");
    println!("cargo:rerun-if-env-changed=APXS");

    let apxs = find_apxs();
    let include_dir = apxs_query(&apxs, "INCLUDEDIR");
    let apr_include_dir = apr_include_dir(&apxs);
    let cppflags: Vec<String> = apxs_query(&apxs, "EXTRA_CPPFLAGS")
        .split_whitespace()
        .map(str::to_owned)
        .collect();

    let mut clang_args = vec![format!("-I{include_dir}"), format!("-I{apr_include_dir}")];
    clang_args.extend(cppflags.iter().cloned());

    let bindings = bindgen::Builder::default()
        .header("src/httpd/shim.h")
        .clang_args(&clang_args)
        .allowlist_function("wsgi_rs_.*")
        .allowlist_function(
            "ap_(add_common_vars|add_cgi_vars|allow_options|get_server_port|mpm_query|\
             get_limit_req_body|set_content_type|check_cmd_context|set_content_length|\
             get_server_name|server_root_relative|get_remote_host|state_query|close_listeners|\
             runtime_dir_relative|add_version_component|run_generate_log_id|exists_config_define|\
             find_linked_module)",
        )
        .allowlist_function(
            "apr_(table_get|table_set|table_setn|table_add|table_unset|table_elts|pstrdup|\
             pstrmemdup|palloc|pool_cleanup_register|pool_cleanup_null|pool_userdata_get|\
             pool_userdata_set|strerror|proc_other_child_register|proc_other_child_unregister|\
             pool_create_ex|pool_destroy)",
        )
        .allowlist_type("authn_status|authz_status|module_struct|command_rec|apr_proc_t|process_rec|unixd_config_rec|request_rec|server_rec|conn_rec|cmd_parms|apr_table_entry_t|apr_filetype_e")
        .constified_enum_module("apr_filetype_e|authn_status|authz_status")
        .allowlist_var(
            "OK|DECLINED|DONE|HTTP_.*|OPT_EXECCGI|AP_MPMQ_.*|APLOG_.*|APR_SUCCESS|APR_EOF|MODULE_MAGIC_.*|OR_FILEINFO|OR_AUTHCFG|ACCESS_CONF|RSRC_CONF|AP_SQ_.*|APR_OC_REASON_.*|ap_unixd_config|\
             AP_FILTER_ERROR|M_GET|M_POST",
        )
        .layout_tests(false)
        .derive_default(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "bindgen could not parse the httpd headers ({e}). libclang is needed: \
                 apt-get install libclang-dev"
            )
        });
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    bindings
        .write_to_file(out.join("httpd_bindings.rs"))
        .expect("write bindings");

    let mut shim = cc::Build::new();
    shim.file("src/httpd/shim.c")
        .include(&include_dir)
        .include(&apr_include_dir)
        .warnings(true)
        .flag_if_supported("-Wno-unused-parameter");
    for flag in &cppflags {
        shim.flag(flag);
    }
    shim.compile("wsgi_rs_shim");

    // httpd dlclose()s and re-dlopen()s every module on each restart. Rust
    // runtime state (thread-local destructors, pyo3's statics) and libpython do
    // not survive being unmapped, so the library stays mapped for the life of
    // the process.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}

/// The `apxs` to ask for httpd's build settings: `$APXS`, else the first on the usual paths.
fn find_apxs() -> String {
    if let Ok(path) = env::var("APXS") {
        return path;
    }
    for candidate in ["apxs", "apxs2", "/usr/bin/apxs", "/usr/sbin/apxs"] {
        if Command::new(candidate)
            .args(["-q", "INCLUDEDIR"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
        {
            return candidate.to_owned();
        }
    }
    panic!(
        "apxs not found: the httpd development files are needed to build mod_wsgi_rs. \
         On Debian/Ubuntu: apt-get install apache2-dev (RHEL/Fedora: dnf install httpd-devel), \
         or point APXS at your apxs."
    );
}

/// One build variable from `apxs -q`.
fn apxs_query(apxs: &str, var: &str) -> String {
    let out = Command::new(apxs)
        .args(["-q", var])
        .output()
        .unwrap_or_else(|e| panic!("running `{apxs} -q {var}` failed: {e}"));
    if !out.status.success() {
        panic!(
            "`{apxs} -q {var}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// APR's include directory, which Debian keeps apart from httpd's.
fn apr_include_dir(apxs: &str) -> String {
    let dir = apxs_query(apxs, "APR_INCLUDEDIR");
    if !dir.is_empty() {
        return dir;
    }
    let apr_config = apxs_query(apxs, "APR_CONFIG");
    let out = Command::new(&apr_config)
        .arg("--includedir")
        .output()
        .unwrap_or_else(|e| panic!("running `{apr_config} --includedir` failed: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
