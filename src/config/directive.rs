//! The directives this module understands, declared once: the table in
//! [`directives!`] below is the single source of each directive's name,
//! argument shape, the contexts Apache allows it in and its usage text. The
//! httpd layer builds Apache's `command_rec` table from it
//! (`src/httpd/commands.rs`), the handlers dispatch on [`Directive`], and the
//! README's configuration reference is checked against it by a unit test.
//!
//! To add a directive: add one line to the table, handle it in
//! `ServerConfig::apply` or `DirConfig::apply` (per [`Directive::scope`]),
//! document it in the README's reference table, and add it to the list the
//! all-directives integration test walks (`tests/integration/contexts.rs`).

use std::ffi::CStr;

/// Which Apache configuration record a directive is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The per-server record (main server or one virtual host).
    Server,
    /// The per-directory record. Apache also keeps one of these for
    /// directives written at server or virtual-host level, outside any
    /// `<Directory>` or `<Location>`.
    Dir,
}

/// How Apache hands a directive's arguments over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Args {
    /// Split into words with Apache's quoting rules (`TAKE_ARGV`).
    Words,
    /// The rest of the line as written (`RAW_ARGS`): section containers
    /// (`<Name ...>`), whose handler reads the lines up to the closing tag.
    Raw,
}

/// Where Apache allows a directive: the `req_override` bits of its
/// `command_rec`. The values are httpd's (`http_config.h`); a unit test in
/// the httpd layer checks them against the headers.
pub mod context {
    /// `.htaccess` with `AllowOverride FileInfo` (and everywhere in the
    /// main configuration files).
    pub const OR_FILEINFO: u32 = 4;
    /// `.htaccess` with `AllowOverride AuthConfig` (and everywhere in the
    /// main configuration files).
    pub const OR_AUTHCFG: u32 = 8;
    /// `<Directory>`, `<Location>`, `<Files>` and their `Match` forms.
    pub const ACCESS_CONF: u32 = 64;
    /// Server config and `<VirtualHost>`, outside directory sections.
    pub const RSRC_CONF: u32 = 128;
    /// The `.htaccess` override classes.
    pub const OR_ANY: u32 = OR_FILEINFO | OR_AUTHCFG;
}

use context::{ACCESS_CONF, OR_AUTHCFG, OR_FILEINFO, RSRC_CONF};

/// Whether mod_wsgi refuses a directive inside `<VirtualHost>`
/// (`ap_check_cmd_context(cmd, GLOBAL_ONLY)`): it configures something every
/// virtual host shares, such as the one Python runtime of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Allowed wherever the context bits allow it.
    Any,
    /// Main server configuration only.
    GlobalOnly,
}

/// One row of the directive table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The directive the row describes.
    pub directive: Directive,
    /// As spelt in mod_wsgi's documentation (Apache matches it ignoring
    /// case). A C string because httpd reads it straight from the table.
    pub name: &'static CStr,
    /// How Apache hands its arguments over.
    pub args: Args,
    /// `req_override` bits, see [`context`].
    pub context: u32,
    /// Whether it is refused inside `<VirtualHost>`.
    pub reach: Reach,
    /// Syntax summary: `httpd -L` prints it.
    pub usage: &'static CStr,
}

/// Declares the table: the `Directive` enum and `SPECS`, one row per directive.
macro_rules! directives {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $id:literal, $name:literal, $args:ident, $context:expr, $reach:ident,
            $usage:literal;
    )*) => {
        /// One mod_wsgi directive. The numeric id is its row in the table
        /// plus one, so a zeroed value never passes for a directive.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum Directive {
            $($(#[$doc])* $variant = $id,)*
        }

        /// The table, in id order.
        pub const SPECS: &[Spec] = &[
            $(Spec {
                directive: Directive::$variant,
                name: $name,
                args: Args::$args,
                context: $context,
                reach: Reach::$reach,
                usage: $usage,
            },)*
        ];
    };
}

directives! {
    ScriptAlias = 1, c"WSGIScriptAlias", Words, RSRC_CONF, Any,
        c"URL-path file-path|directory-path [process-group=name] [application-group=name] \
          [callable-object=name] [pass-authorization=On|Off]";
    ScriptAliasMatch = 2, c"WSGIScriptAliasMatch", Words, RSRC_CONF, Any,
        c"regex file-path|directory-path [process-group=name] [application-group=name] \
          [callable-object=name] [pass-authorization=On|Off]";
    CallableObject = 3, c"WSGICallableObject", Words, OR_FILEINFO, Any,
        c"name of the WSGI application object in the script, or %{ENV:variable}";
    PassAuthorization = 4, c"WSGIPassAuthorization", Words, OR_FILEINFO, Any,
        c"On|Off: pass the Authorization header to the application";
    ScriptReloading = 5, c"WSGIScriptReloading", Words, OR_FILEINFO, Any,
        c"On|Off: reload a script when its file changes";
    /// Not in `.htaccess`: choosing an interpreter is the server
    /// administrator's decision (mod_wsgi: `ACCESS_CONF|RSRC_CONF`).
    ApplicationGroup = 6, c"WSGIApplicationGroup", Words, ACCESS_CONF | RSRC_CONF, Any,
        c"%{GLOBAL}|%{SERVER}|%{RESOURCE}|%{HOST}|%{ENV:variable}|name";
    PythonHome = 7, c"WSGIPythonHome", Words, RSRC_CONF, GlobalOnly,
        c"absolute path of the Python prefix (a virtual environment)";
    PythonPath = 8, c"WSGIPythonPath", Words, RSRC_CONF, GlobalOnly,
        c"directory[:directory...]: added to sys.path";
    ImportScript = 9, c"WSGIImportScript", Words, RSRC_CONF, Any,
        c"file-path process-group=name application-group=name: load a script at start-up";
    ChunkedRequest = 10, c"WSGIChunkedRequest", Words, OR_FILEINFO, Any,
        c"On|Off: accept chunked request bodies";
    MapHeadToGet = 11, c"WSGIMapHEADToGET", Words, OR_FILEINFO, Any,
        c"On|Off|Auto: present HEAD requests to the application as GET";
    RestrictStdout = 12, c"WSGIRestrictStdout", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: refuse writes to sys.stdout";
    RestrictStdin = 13, c"WSGIRestrictStdin", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: refuse reads from sys.stdin";
    DaemonProcess = 14, c"WSGIDaemonProcess", Words, RSRC_CONF, Any,
        c"name [option=value ...]: a group of daemon processes";
    ProcessGroup = 15, c"WSGIProcessGroup", Words, ACCESS_CONF | RSRC_CONF, Any,
        c"%{GLOBAL}|%{ENV:variable}|name: the process group that runs the application";
    RestrictEmbedded = 16, c"WSGIRestrictEmbedded", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: refuse to run applications in Apache's child processes";
    SocketPrefix = 17, c"WSGISocketPrefix", Words, RSRC_CONF, GlobalOnly,
        c"path prefix of the daemon process sockets";
    /// The access control scripts: directory sections and `.htaccess`
    /// (AuthConfig) only, as in mod_wsgi.
    AuthUserScript = 18, c"WSGIAuthUserScript", Words, OR_AUTHCFG, Any,
        c"file-path [application-group=name]: the `wsgi` authentication provider's script";
    AuthGroupScript = 19, c"WSGIAuthGroupScript", Words, OR_AUTHCFG, Any,
        c"file-path [application-group=name]: the script `Require wsgi-group` asks";
    AccessScript = 20, c"WSGIAccessScript", Words, OR_AUTHCFG, Any,
        c"file-path [application-group=name]: the host access script";
    GroupAuthoritative = 21, c"WSGIGroupAuthoritative", Words, OR_AUTHCFG, Any,
        c"On|Off: kept for Apache 2.2 configurations, no effect under 2.4";
    TrustedProxyHeaders = 22, c"WSGITrustedProxyHeaders", Words, OR_FILEINFO, Any,
        c"header [header ...]: forwarding headers a trusted proxy may set";
    TrustedProxies = 23, c"WSGITrustedProxies", Words, OR_FILEINFO, Any,
        c"address|network [address|network ...]: the peers trusted as proxies";
    /// mod_wsgi: `ACCESS_CONF|RSRC_CONF` (its 6.0 page says `.htaccess`
    /// too, its command table does not).
    DispatchScript = 24, c"WSGIDispatchScript", Words, ACCESS_CONF | RSRC_CONF, Any,
        c"file-path [application-group=name]: a script choosing process group, \
          application group and callable per request";
    HandlerScript = 25, c"WSGIHandlerScript", Words, ACCESS_CONF | RSRC_CONF, Any,
        c"name file-path [process-group=name] [application-group=name] \
          [pass-authorization=On|Off]: a handler whose script's handle_request serves requests";
    RestrictProcess = 26, c"WSGIRestrictProcess", Words, ACCESS_CONF | RSRC_CONF, Any,
        c"group [group ...]: the process groups this context may select (%{GLOBAL}: embedded)";
    RestrictSignal = 27, c"WSGIRestrictSignal", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: ignore signal.signal() calls from applications";
    ErrorOverride = 28, c"WSGIErrorOverride", Words, OR_FILEINFO, Any,
        c"On|Off: Apache's error documents replace a daemon application's error responses";
    EnableSendfile = 29, c"WSGIEnableSendfile", Words, OR_FILEINFO, Any,
        c"On|Off: send wsgi.file_wrapper files with sendfile()";
    IgnoreActivity = 30, c"WSGIIgnoreActivity", Words, OR_FILEINFO, Any,
        c"On|Off: requests here do not count as activity for inactivity-timeout";
    SocketRotation = 31, c"WSGISocketRotation", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: new daemon socket names on each restart";
    ServerMetrics = 32, c"WSGIServerMetrics", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: collect the metrics SetHandler wsgi-rs-metrics serves";
    // Interpreter options: one Python runtime per process, so main server only.
    PythonOptimize = 33, c"WSGIPythonOptimize", Words, RSRC_CONF, GlobalOnly,
        c"0|1|2: Python's -O level";
    PythonWarnings = 34, c"WSGIPythonWarnings", Words, RSRC_CONF, GlobalOnly,
        c"action:message:category:module:lineno: one warnings filter (python -W)";
    PythonHashSeed = 35, c"WSGIPythonHashSeed", Words, RSRC_CONF, GlobalOnly,
        c"random|0..4294967295: Python's hash seed (PYTHONHASHSEED)";
    DontWriteBytecode = 36, c"WSGIDontWriteBytecode", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: do not write .pyc files (python -B)";
    PythonEggs = 37, c"WSGIPythonEggs", Words, RSRC_CONF, GlobalOnly,
        c"directory: PYTHON_EGG_CACHE of embedded mode";
    DestroyInterpreter = 38, c"WSGIDestroyInterpreter", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: run Python's exit handlers when a process shuts down";
    PassApacheRequest = 39, c"WSGIPassApacheRequest", Words, ACCESS_CONF | RSRC_CONF, Any,
        c"On|Off: put the request_rec in environ['apache.request_rec'] (embedded mode)";
    VerboseDebugging = 40, c"WSGIVerboseDebugging", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: extra debugging messages";
    SwitchInterval = 41, c"WSGISwitchInterval", Words, RSRC_CONF, GlobalOnly,
        c"seconds: sys.setswitchinterval() of embedded mode";
    // Kept for compatibility: syntax checked, a start-up notice where they
    // do nothing here (config/compat.rs).
    AcceptMutex = 42, c"WSGIAcceptMutex", Words, RSRC_CONF, GlobalOnly,
        c"default|flock|fcntl|sysvsem|posixsem|pthread: daemon accept mutex";
    LazyInitialization = 43, c"WSGILazyInitialization", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: start Python in the children rather than the parent";
    CaseSensitivity = 44, c"WSGICaseSensitivity", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: whether the file system is case sensitive";
    ApplicationWrapper = 45, c"WSGIApplicationWrapper", Words, RSRC_CONF, GlobalOnly,
        c"module:callable: wrapper around every application (not supported)";
    NewRelicConfigFile = 46, c"WSGINewRelicConfigFile", Words, RSRC_CONF, GlobalOnly,
        c"file: New Relic agent configuration (removed in mod_wsgi 6)";
    NewRelicEnvironment = 47, c"WSGINewRelicEnvironment", Words, RSRC_CONF, GlobalOnly,
        c"name: New Relic agent environment (removed in mod_wsgi 6)";
    PerInterpreterGil = 48, c"WSGIPerInterpreterGIL", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: a GIL per sub-interpreter (Python 3.12+)";
    FreeThreading = 49, c"WSGIFreeThreading", Words, RSRC_CONF, GlobalOnly,
        c"On|Off: run free-threaded Python with the GIL disabled (3.13t+)";
    InterpreterOptions = 50, c"<WSGIInterpreterOptions", Raw, RSRC_CONF, GlobalOnly,
        c"[process-group=name] [application-group=name]>: options for some interpreters";
    TelemetryService = 51, c"WSGITelemetryService", Words, RSRC_CONF, GlobalOnly,
        c"unix:/path [interval=seconds]: push metrics to a local service";
    TelemetryOptions = 52, c"WSGITelemetryOptions", Words, RSRC_CONF, GlobalOnly,
        c"[+|-]CaptureUserAgent | None | All: metrics capture options";
    SlowRequests = 53, c"WSGISlowRequests", Words, RSRC_CONF, GlobalOnly,
        c"seconds: report requests running longer than this";
}

impl Directive {
    /// This directive's row of the table.
    pub fn spec(&self) -> &'static Spec {
        &SPECS[*self as usize - 1]
    }

    /// Every directive, in id order.
    pub fn all() -> impl Iterator<Item = Directive> {
        SPECS.iter().map(|s| s.directive)
    }

    /// The directive as spelt in mod_wsgi's documentation; a section
    /// container's name starts with `<`, as Apache registers it.
    pub fn name(&self) -> &'static str {
        // The table's names are ASCII (a unit test checks).
        self.spec().name.to_str().unwrap_or("WSGI?")
    }

    /// The directive's number: its row in the table, from 1.
    #[cfg(test)]
    pub fn id(&self) -> u32 {
        *self as u32
    }

    /// The directive of number `id`.
    #[cfg(test)]
    pub fn from_id(id: u32) -> Option<Directive> {
        let index = (id as usize).checked_sub(1)?;
        SPECS.get(index).map(|s| s.directive)
    }

    /// Looks a directive up by name, ignoring case as Apache does.
    pub fn from_name(name: &str) -> Option<Directive> {
        Directive::all().find(|d| d.name().eq_ignore_ascii_case(name))
    }

    /// Directives Apache allows inside directory sections (or `.htaccess`)
    /// are stored per directory; the others per server.
    pub fn scope(&self) -> Scope {
        if self.spec().context & (ACCESS_CONF | context::OR_ANY) != 0 {
            Scope::Dir
        } else {
            Scope::Server
        }
    }

    /// True for directives mod_wsgi refuses inside `<VirtualHost>`. The
    /// httpd layer enforces it with `ap_check_cmd_context(cmd, GLOBAL_ONLY)`.
    pub fn global_only(&self) -> bool {
        self.spec().reach == Reach::GlobalOnly
    }

    /// True for the directives allowed in `.htaccess` files (with the
    /// matching `AllowOverride` class).
    #[cfg(test)]
    pub fn allowed_in_htaccess(&self) -> bool {
        self.spec().context & context::OR_ANY != 0
    }

    /// Syntax summary.
    #[cfg(test)]
    pub fn usage(&self) -> &'static str {
        self.spec().usage.to_str().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_rows_and_round_trip() {
        for (row, spec) in SPECS.iter().enumerate() {
            assert_eq!(spec.directive.id() as usize, row + 1, "{:?}", spec.name);
            assert_eq!(
                Directive::from_id(spec.directive.id()),
                Some(spec.directive)
            );
            assert_eq!(spec.directive.spec().name, spec.name);
        }
        assert_eq!(Directive::from_id(0), None);
        assert_eq!(Directive::from_id(SPECS.len() as u32 + 1), None);
        assert_eq!(Directive::ScriptAlias.id(), 1);
    }

    #[test]
    fn names_are_unique_ascii_and_match_mod_wsgi_spelling() {
        assert_eq!(Directive::MapHeadToGet.name(), "WSGIMapHEADToGET");
        assert_eq!(Directive::ScriptAliasMatch.name(), "WSGIScriptAliasMatch");
        for d in Directive::all() {
            let raw = d.spec().name.to_str().expect("ASCII name");
            assert!(raw.is_ascii());
            let bare = raw.trim_start_matches('<');
            assert!(bare.starts_with("WSGI"), "{raw}");
            assert_eq!(Directive::from_name(d.name()), Some(d));
            assert_eq!(Directive::from_name(&d.name().to_lowercase()), Some(d));
            assert!(!d.usage().is_empty(), "{raw}");
            assert!(d.spec().context != 0, "{raw}");
        }
        assert_eq!(Directive::from_name("WSGINope"), None);
    }

    #[test]
    fn contexts_follow_mod_wsgi() {
        use Directive::*;
        for d in [
            CallableObject,
            PassAuthorization,
            ScriptReloading,
            ChunkedRequest,
            MapHeadToGet,
        ] {
            assert_eq!(d.spec().context, OR_FILEINFO, "{}", d.name());
            assert!(d.allowed_in_htaccess());
            assert_eq!(d.scope(), Scope::Dir);
        }
        for d in [
            AuthUserScript,
            AuthGroupScript,
            AccessScript,
            GroupAuthoritative,
        ] {
            assert_eq!(d.spec().context, OR_AUTHCFG, "{}", d.name());
            assert_eq!(d.scope(), Scope::Dir);
        }
        for d in [TrustedProxyHeaders, TrustedProxies] {
            assert_eq!(d.spec().context, OR_FILEINFO, "{}", d.name());
            assert_eq!(d.scope(), Scope::Dir);
        }
        for d in [ApplicationGroup, ProcessGroup] {
            assert_eq!(d.spec().context, ACCESS_CONF | RSRC_CONF, "{}", d.name());
            assert!(!d.allowed_in_htaccess(), "{}", d.name());
            assert_eq!(d.scope(), Scope::Dir);
        }
        for d in [ErrorOverride, EnableSendfile, IgnoreActivity] {
            assert_eq!(d.spec().context, OR_FILEINFO, "{}", d.name());
        }
        for d in [DispatchScript, HandlerScript, RestrictProcess] {
            assert_eq!(d.spec().context, ACCESS_CONF | RSRC_CONF, "{}", d.name());
            assert_eq!(d.scope(), Scope::Dir);
        }
        assert_eq!(ScriptAlias.scope(), Scope::Server);
        assert_eq!(DaemonProcess.scope(), Scope::Server);
    }

    #[test]
    fn global_only_directives_are_per_server() {
        use Directive::*;
        for d in Directive::all() {
            if d.global_only() {
                assert_eq!(d.scope(), Scope::Server, "{}", d.name());
                assert_eq!(d.spec().context, RSRC_CONF, "{}", d.name());
            }
        }
        for d in [
            PythonHome,
            PythonPath,
            RestrictStdout,
            RestrictStdin,
            RestrictEmbedded,
            SocketPrefix,
            RestrictSignal,
            SocketRotation,
            ServerMetrics,
        ] {
            assert!(d.global_only(), "{}", d.name());
        }
        assert!(!DaemonProcess.global_only());
        assert!(!ImportScript.global_only());
    }

    /// The contexts column of the README's configuration reference, as
    /// derived from a directive's row of the table.
    fn readme_contexts(d: Directive) -> String {
        let spec = d.spec();
        // Apache's main configuration allows RSRC_CONF and every override
        // class except AuthConfig (and Limit).
        let mut contexts = Vec::new();
        if spec.context & (RSRC_CONF | OR_FILEINFO) != 0 {
            contexts.push("server");
            if !d.global_only() {
                contexts.push("vhost");
            }
        }
        if spec.context & (ACCESS_CONF | context::OR_ANY) != 0 {
            contexts.push("dir");
        }
        let mut text = contexts.join(", ");
        let classes: Vec<&str> = [(OR_FILEINFO, "FileInfo"), (OR_AUTHCFG, "AuthConfig")]
            .into_iter()
            .filter(|(bit, _)| spec.context & bit != 0)
            .map(|(_, class)| class)
            .collect();
        if !classes.is_empty() {
            text.push_str(&format!(", htaccess ({})", classes.join(", ")));
        }
        text
    }

    /// The README's reference lists exactly the directives of the table,
    /// each with the contexts Apache is told to allow it in.
    #[test]
    fn readme_reference_matches_the_table() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("## Configuration reference")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("README has a configuration reference");
        let mut listed = Vec::new();
        for row in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let (first, contexts) = (cells[0], cells[1]);
            for quoted in first.split('`').skip(1).step_by(2) {
                let name = quoted.split_whitespace().next().unwrap_or("");
                if !name.trim_start_matches('<').starts_with("WSGI") {
                    continue;
                }
                let d = Directive::from_name(name)
                    .unwrap_or_else(|| panic!("README lists {name}, which the table lacks"));
                assert_eq!(contexts, readme_contexts(d), "README contexts of {name}");
                listed.push(d);
            }
        }
        for d in Directive::all() {
            assert!(listed.contains(&d), "README does not list {}", d.name());
        }
    }
}
