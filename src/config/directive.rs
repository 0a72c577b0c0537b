//! The directives this module understands: their mod_wsgi spelling, the
//! stable numeric ids the C command table passes back, and where Apache
//! stores each one.

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

/// One mod_wsgi directive.
///
/// The numeric ids are part of the interface with the C command table and
/// never change; new directives get new numbers:
///
/// | id | directive              | scope  | global only |
/// |----|------------------------|--------|-------------|
/// |  1 | `WSGIScriptAlias`      | Server |             |
/// |  2 | `WSGIScriptAliasMatch` | Server |             |
/// |  3 | `WSGICallableObject`   | Dir    |             |
/// |  4 | `WSGIPassAuthorization`| Dir    |             |
/// |  5 | `WSGIScriptReloading`  | Dir    |             |
/// |  6 | `WSGIApplicationGroup` | Dir    |             |
/// |  7 | `WSGIPythonHome`       | Server | yes         |
/// |  8 | `WSGIPythonPath`       | Server | yes         |
/// |  9 | `WSGIImportScript`     | Server |             |
/// | 10 | `WSGIChunkedRequest`   | Dir    |             |
/// | 11 | `WSGIMapHEADToGET`     | Dir    |             |
/// | 12 | `WSGIRestrictStdout`   | Server | yes         |
/// | 13 | `WSGIRestrictStdin`    | Server | yes         |
/// | 14 | `WSGIDaemonProcess`    | Server |             |
/// | 15 | `WSGIProcessGroup`     | Dir    |             |
/// | 16 | `WSGIRestrictEmbedded` | Server | yes         |
/// | 17 | `WSGISocketPrefix`     | Server | yes         |
///
/// Ids start at 1 so that a zeroed or NULL `cmd->info` never passes for a
/// real directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Directive {
    ScriptAlias = 1,
    ScriptAliasMatch = 2,
    CallableObject = 3,
    PassAuthorization = 4,
    ScriptReloading = 5,
    ApplicationGroup = 6,
    PythonHome = 7,
    PythonPath = 8,
    ImportScript = 9,
    ChunkedRequest = 10,
    MapHeadToGet = 11,
    RestrictStdout = 12,
    RestrictStdin = 13,
    DaemonProcess = 14,
    ProcessGroup = 15,
    RestrictEmbedded = 16,
    SocketPrefix = 17,
}

impl Directive {
    /// Every directive, in id order, for building the command table.
    pub const ALL: [Directive; 17] = [
        Directive::ScriptAlias,
        Directive::ScriptAliasMatch,
        Directive::CallableObject,
        Directive::PassAuthorization,
        Directive::ScriptReloading,
        Directive::ApplicationGroup,
        Directive::PythonHome,
        Directive::PythonPath,
        Directive::ImportScript,
        Directive::ChunkedRequest,
        Directive::MapHeadToGet,
        Directive::RestrictStdout,
        Directive::RestrictStdin,
        Directive::DaemonProcess,
        Directive::ProcessGroup,
        Directive::RestrictEmbedded,
        Directive::SocketPrefix,
    ];

    /// The directive as spelt in mod_wsgi's documentation.
    pub fn name(&self) -> &'static str {
        match self {
            Directive::ScriptAlias => "WSGIScriptAlias",
            Directive::ScriptAliasMatch => "WSGIScriptAliasMatch",
            Directive::CallableObject => "WSGICallableObject",
            Directive::PassAuthorization => "WSGIPassAuthorization",
            Directive::ScriptReloading => "WSGIScriptReloading",
            Directive::ApplicationGroup => "WSGIApplicationGroup",
            Directive::PythonHome => "WSGIPythonHome",
            Directive::PythonPath => "WSGIPythonPath",
            Directive::ImportScript => "WSGIImportScript",
            Directive::ChunkedRequest => "WSGIChunkedRequest",
            Directive::MapHeadToGet => "WSGIMapHEADToGET",
            Directive::RestrictStdout => "WSGIRestrictStdout",
            Directive::RestrictStdin => "WSGIRestrictStdin",
            Directive::DaemonProcess => "WSGIDaemonProcess",
            Directive::ProcessGroup => "WSGIProcessGroup",
            Directive::RestrictEmbedded => "WSGIRestrictEmbedded",
            Directive::SocketPrefix => "WSGISocketPrefix",
        }
    }

    pub fn id(&self) -> u32 {
        *self as u32
    }

    pub fn from_id(id: u32) -> Option<Directive> {
        Directive::ALL.into_iter().find(|d| d.id() == id)
    }

    /// Looks a directive up by name, ignoring case as Apache does.
    pub fn from_name(name: &str) -> Option<Directive> {
        Directive::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(name))
    }

    pub fn scope(&self) -> Scope {
        match self {
            Directive::CallableObject
            | Directive::PassAuthorization
            | Directive::ScriptReloading
            | Directive::ApplicationGroup
            | Directive::ChunkedRequest
            | Directive::MapHeadToGet
            | Directive::ProcessGroup => Scope::Dir,
            Directive::ScriptAlias
            | Directive::ScriptAliasMatch
            | Directive::PythonHome
            | Directive::PythonPath
            | Directive::ImportScript
            | Directive::RestrictStdout
            | Directive::RestrictStdin
            | Directive::DaemonProcess
            | Directive::RestrictEmbedded
            | Directive::SocketPrefix => Scope::Server,
        }
    }

    /// True for directives mod_wsgi refuses inside `<VirtualHost>`: they
    /// configure the one Python runtime or the one daemon socket directory
    /// that every virtual host shares. The caller enforces this with
    /// `ap_check_cmd_context(cmd, GLOBAL_ONLY)`.
    pub fn global_only(&self) -> bool {
        matches!(
            self,
            Directive::PythonHome
                | Directive::PythonPath
                | Directive::RestrictStdout
                | Directive::RestrictStdin
                | Directive::RestrictEmbedded
                | Directive::SocketPrefix
        )
    }

    /// True for the directives mod_wsgi registers with `OR_FILEINFO`, the
    /// only ones that may appear in `.htaccess` files. All others are
    /// `RSRC_CONF` (plus `ACCESS_CONF` for the Dir-scoped group directives).
    pub fn allowed_in_htaccess(&self) -> bool {
        matches!(
            self,
            Directive::CallableObject
                | Directive::PassAuthorization
                | Directive::ScriptReloading
                | Directive::ChunkedRequest
                | Directive::MapHeadToGet
        )
    }

    /// Syntax summary, suitable as the command table's help text.
    pub fn usage(&self) -> &'static str {
        match self {
            Directive::ScriptAlias => {
                "URL-path file-path|directory-path [process-group=name] \
                 [application-group=name] [callable-object=name] \
                 [pass-authorization=On|Off]"
            }
            Directive::ScriptAliasMatch => {
                "regex file-path|directory-path [process-group=name] \
                 [application-group=name] [callable-object=name] \
                 [pass-authorization=On|Off]"
            }
            Directive::CallableObject => "name of the WSGI application object in the script",
            Directive::PassAuthorization => "On|Off",
            Directive::ScriptReloading => "On|Off",
            Directive::ApplicationGroup => {
                "%{GLOBAL}|%{SERVER}|%{RESOURCE}|%{HOST}|%{ENV:variable}|name"
            }
            Directive::PythonHome => "absolute path of the Python prefix",
            Directive::PythonPath => "directory[:directory...]",
            Directive::ImportScript => "file-path process-group=name application-group=name",
            Directive::ChunkedRequest => "On|Off",
            Directive::MapHeadToGet => "On|Off|Auto",
            Directive::RestrictStdout => "On|Off",
            Directive::RestrictStdin => "On|Off",
            Directive::DaemonProcess => "name [option=value ...]",
            Directive::ProcessGroup => "%{GLOBAL}|%{ENV:variable}|name",
            Directive::RestrictEmbedded => "On|Off",
            Directive::SocketPrefix => "path prefix of the daemon sockets",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_round_trip() {
        let ids: Vec<u32> = Directive::ALL.iter().map(Directive::id).collect();
        assert_eq!(ids, (1..=17).collect::<Vec<_>>());
        for d in Directive::ALL {
            assert_eq!(Directive::from_id(d.id()), Some(d));
        }
        assert_eq!(Directive::from_id(0), None);
        assert_eq!(Directive::from_id(18), None);
        assert_eq!(Directive::ScriptAlias.id(), 1);
        assert_eq!(Directive::SocketPrefix.id(), 17);
    }

    #[test]
    fn names_match_mod_wsgi_spelling() {
        assert_eq!(Directive::MapHeadToGet.name(), "WSGIMapHEADToGET");
        assert_eq!(Directive::ScriptAliasMatch.name(), "WSGIScriptAliasMatch");
        for d in Directive::ALL {
            assert!(d.name().starts_with("WSGI"));
            assert_eq!(Directive::from_name(d.name()), Some(d));
            assert_eq!(Directive::from_name(&d.name().to_lowercase()), Some(d));
        }
        assert_eq!(Directive::from_name("WSGINope"), None);
    }

    #[test]
    fn scopes_and_global_only() {
        use Directive::*;
        let dir = [
            CallableObject,
            PassAuthorization,
            ScriptReloading,
            ApplicationGroup,
            ChunkedRequest,
            MapHeadToGet,
            ProcessGroup,
        ];
        for d in Directive::ALL {
            let expected = if dir.contains(&d) {
                Scope::Dir
            } else {
                Scope::Server
            };
            assert_eq!(d.scope(), expected, "{}", d.name());
            if d.global_only() {
                assert_eq!(d.scope(), Scope::Server);
            }
        }
        let global: Vec<_> = Directive::ALL
            .into_iter()
            .filter(Directive::global_only)
            .collect();
        assert_eq!(
            global,
            [
                PythonHome,
                PythonPath,
                RestrictStdout,
                RestrictStdin,
                RestrictEmbedded,
                SocketPrefix
            ]
        );
        assert!(!DaemonProcess.global_only());
        assert!(!ImportScript.global_only());
    }

    #[test]
    fn htaccess_set_is_a_subset_of_dir_scope() {
        for d in Directive::ALL {
            if d.allowed_in_htaccess() {
                assert_eq!(d.scope(), Scope::Dir);
            }
            assert!(!d.usage().is_empty());
        }
        assert!(!Directive::ApplicationGroup.allowed_in_htaccess());
        assert!(!Directive::ProcessGroup.allowed_in_htaccess());
    }
}
