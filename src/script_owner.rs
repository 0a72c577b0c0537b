//! `script-user=` and `script-group=` of `WSGIDaemonProcess`: an Apache
//! child refuses (403) to forward a request to the group when its WSGI
//! script file, or the directory holding it, is not owned by the user (or
//! group) the option names, or may be written by others, as mod_wsgi does:
//! whoever can change the script or replace it in its directory would run
//! code as the daemon's user.
//!
//! The rule, pure: the plan resolves the option to an id at start-up; the
//! handler gives the file's owner and permissions from the stat Apache
//! made when it mapped the URL to the file (`r->finfo`), and the directory
//! takes one stat here. Nothing is looked up by name per request.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Who must own the WSGI script file (and its directory) of a request
/// delegated to a group, as `script-user=` or `script-group=` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptOwner {
    /// By user (`script-user=`) or by group (`script-group=`).
    pub by: OwnerKind,
    /// The uid or gid the value resolved to at start-up.
    pub id: u32,
    /// The value as configured (a name or `#id`), for the log.
    pub value: String,
}

/// Which of a file's owners [`ScriptOwner`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    /// The file's user (`script-user=`).
    User,
    /// The file's group (`script-group=`).
    Group,
}

impl OwnerKind {
    /// The option that asks for it.
    pub fn option(self) -> &'static str {
        match self {
            OwnerKind::User => "script-user",
            OwnerKind::Group => "script-group",
        }
    }

    /// What the id is called: `uid` or `gid`.
    pub fn id_name(self) -> &'static str {
        match self {
            OwnerKind::User => "uid",
            OwnerKind::Group => "gid",
        }
    }
}

/// Who owns a file and who else may write it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FileOwner {
    /// The owning user.
    pub uid: u32,
    /// The owning group.
    pub gid: u32,
    /// Its group may write it.
    pub group_writable: bool,
    /// Anyone may write it.
    pub world_writable: bool,
}

/// Why a request is refused; each variant logs under its own id.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The stat of the file did not give its owner and permissions, or
    /// the directory could not be stat()ed (the reason).
    Unknown(String),
    /// The file is owned by another user or group (that id).
    FileOwner(u32),
    /// Others than the owner may write the file (`group` or `world`).
    FileWritable(&'static str),
    /// The directory is owned by another user or group (that id).
    DirOwner(u32),
    /// Others than the owner may write the directory.
    DirWritable(&'static str),
}

/// Who else may write a file the owner check accepts: for `script-user=`
/// neither the group nor anyone; for `script-group=` nobody outside the
/// group (the group is trusted).
fn writable_by_others(by: OwnerKind, file: &FileOwner) -> Option<&'static str> {
    if file.world_writable {
        Some("world")
    } else if by == OwnerKind::User && file.group_writable {
        Some("group")
    } else {
        None
    }
}

/// The owner id the option is about.
fn owner_id(by: OwnerKind, file: &FileOwner) -> u32 {
    match by {
        OwnerKind::User => file.uid,
        OwnerKind::Group => file.gid,
    }
}

/// The verdict for a script `file` in a directory `dir` (its stat, or why
/// it failed): None to serve.
fn judge(
    owner: &ScriptOwner,
    file: Option<FileOwner>,
    dir: impl FnOnce() -> Result<FileOwner, String>,
) -> Option<Refusal> {
    let Some(file) = file else {
        return Some(Refusal::Unknown(
            "its owner and permissions are not known".to_owned(),
        ));
    };
    let id = owner_id(owner.by, &file);
    if id != owner.id {
        return Some(Refusal::FileOwner(id));
    }
    if let Some(who) = writable_by_others(owner.by, &file) {
        return Some(Refusal::FileWritable(who));
    }
    let dir = match dir() {
        Ok(dir) => dir,
        Err(e) => return Some(Refusal::Unknown(e)),
    };
    let id = owner_id(owner.by, &dir);
    if id != owner.id {
        return Some(Refusal::DirOwner(id));
    }
    writable_by_others(owner.by, &dir).map(Refusal::DirWritable)
}

/// The owner and permissions of the directory holding `path` (one stat).
fn parent_of(path: &str) -> Result<FileOwner, String> {
    let dir = Path::new(path).parent().unwrap_or(Path::new("/"));
    let meta = std::fs::metadata(dir)
        .map_err(|e| format!("its directory '{}' cannot be stat()ed: {e}", dir.display()))?;
    Ok(FileOwner {
        uid: meta.uid(),
        gid: meta.gid(),
        group_writable: meta.mode() & 0o020 != 0,
        world_writable: meta.mode() & 0o002 != 0,
    })
}

/// The log line of a refusal of `path` by `group`'s `owner` rule.
fn describe(refusal: &Refusal, path: &str, group: &str, owner: &ScriptOwner) -> String {
    let kind = owner.by.id_name();
    let rule = format!(
        "{}={} of daemon process group '{group}' requires {kind} {}",
        owner.by.option(),
        owner.value,
        owner.id
    );
    match refusal {
        Refusal::Unknown(why) => {
            format!("WSGIRS600: WSGI script file '{path}' refused (403): {why}, and {rule}")
        }
        Refusal::FileOwner(id) => format!(
            "WSGIRS601: WSGI script file '{path}' refused (403): owned by {kind} {id}, but {rule}"
        ),
        Refusal::FileWritable(who) => format!(
            "WSGIRS602: WSGI script file '{path}' refused (403): writable by {who}; {rule} and \
             that nobody else may write it"
        ),
        Refusal::DirOwner(id) => format!(
            "WSGIRS603: WSGI script file '{path}' refused (403): its directory is owned by \
             {kind} {id}, but {rule}"
        ),
        Refusal::DirWritable(who) => format!(
            "WSGIRS604: WSGI script file '{path}' refused (403): its directory is writable by \
             {who}; {rule} and that nobody else may write it"
        ),
    }
}

/// The log line refusing the request for the script at `path` (a 403),
/// or None to serve it: `file` is the script's owner as Apache's stat of
/// it gave (None when it did not), `group` the daemon group's name.
pub fn refusal(
    owner: &ScriptOwner,
    file: Option<FileOwner>,
    path: &str,
    group: &str,
) -> Option<String> {
    let refusal = judge(owner, file, || parent_of(path))?;
    Some(describe(&refusal, path, group, owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(by: OwnerKind, id: u32) -> ScriptOwner {
        ScriptOwner {
            by,
            id,
            value: format!("#{id}"),
        }
    }

    fn file(uid: u32, gid: u32) -> FileOwner {
        FileOwner {
            uid,
            gid,
            group_writable: false,
            world_writable: false,
        }
    }

    fn no_dir() -> Result<FileOwner, String> {
        panic!("the directory is stat()ed only when the file passes")
    }

    #[test]
    fn the_owner_passes_with_its_directory() {
        let user = owner(OwnerKind::User, 1000);
        assert_eq!(
            judge(&user, Some(file(1000, 5)), || Ok(file(1000, 7))),
            None
        );
        let group = owner(OwnerKind::Group, 33);
        let mut writable = file(1, 33);
        writable.group_writable = true;
        assert_eq!(judge(&group, Some(writable), || Ok(writable)), None);
    }

    #[test]
    fn another_owner_is_refused_without_a_stat() {
        let user = owner(OwnerKind::User, 1000);
        assert_eq!(
            judge(&user, Some(file(0, 1000)), no_dir),
            Some(Refusal::FileOwner(0))
        );
        let group = owner(OwnerKind::Group, 33);
        assert_eq!(
            judge(&group, Some(file(33, 0)), no_dir),
            Some(Refusal::FileOwner(0))
        );
        assert!(matches!(
            judge(&user, None, no_dir),
            Some(Refusal::Unknown(_))
        ));
    }

    #[test]
    fn others_may_not_write_the_file_or_its_directory() {
        let user = owner(OwnerKind::User, 1000);
        let mut f = file(1000, 5);
        f.group_writable = true;
        assert_eq!(
            judge(&user, Some(f), no_dir),
            Some(Refusal::FileWritable("group"))
        );
        let group = owner(OwnerKind::Group, 5);
        f.world_writable = true;
        assert_eq!(
            judge(&group, Some(f), no_dir),
            Some(Refusal::FileWritable("world"))
        );
        let mut d = file(1000, 5);
        d.group_writable = true;
        assert_eq!(
            judge(&user, Some(file(1000, 5)), || Ok(d)),
            Some(Refusal::DirWritable("group"))
        );
        assert_eq!(
            judge(&user, Some(file(1000, 5)), || Ok(file(0, 5))),
            Some(Refusal::DirOwner(0))
        );
        assert!(matches!(
            judge(&user, Some(file(1000, 5)), || Err("gone".into())),
            Some(Refusal::Unknown(_))
        ));
    }

    #[test]
    fn the_log_line_names_path_owner_and_expected_owner() {
        let line = describe(
            &Refusal::FileOwner(0),
            "/srv/app.wsgi",
            "site",
            &ScriptOwner {
                by: OwnerKind::User,
                id: 65534,
                value: "nobody".into(),
            },
        );
        assert_eq!(
            line,
            "WSGIRS601: WSGI script file '/srv/app.wsgi' refused (403): owned by uid 0, but \
             script-user=nobody of daemon process group 'site' requires uid 65534"
        );
    }
}
