//! Who Apache's children run as when `wsgi-rs serve` is started by root
//! (`--user`/`--group`, else Debian's or RHEL's account), and a warning for
//! what that account will not be able to read.

use std::path::Path;

use crate::accounts::{self, Account};
use crate::cli::ServeArgs;
use crate::failure::{Failure, Outcome};
use crate::httpd_conf::RunAs;

/// Accounts Apache's children run as when wsgi-rs is started by root and
/// no --user is given: Debian's, then RHEL's.
const DEFAULT_USERS: [&str; 2] = ["www-data", "apache"];

/// The account Apache's children switch to, when started as root.
pub(super) struct Identity {
    /// Names for the configuration.
    pub(super) run_as: RunAs,
    /// The user.
    pub(super) account: Account,
    /// The group.
    pub(super) gid: u32,
}

/// Who the children run as when we are root.
pub(super) fn identity(args: &ServeArgs) -> Outcome<Option<Identity>> {
    if !accounts::running_as_root() {
        if args.user.is_some() || args.group.is_some() {
            return Err(Failure::new(
                "--user and --group only apply when wsgi-rs runs as root",
                "leave them out: without root, Apache and the application run as you",
            ));
        }
        return Ok(None);
    }
    let account = match &args.user {
        Some(name) => accounts::lookup_user(name).ok_or_else(|| {
            Failure::new(
                format!("the user '{name}' does not exist"),
                "pass --user an existing account",
            )
        })?,
        None => DEFAULT_USERS
            .iter()
            .find_map(|name| accounts::lookup_user(name))
            .ok_or_else(|| {
                Failure::new(
                    "started as root, but neither www-data nor apache exists to run Apache's children",
                    "pass --user an unprivileged account",
                )
            })?,
    };
    if account.uid == 0 {
        return Err(Failure::new(
            "Apache will not run its children as root",
            "pass --user an unprivileged account",
        ));
    }
    let (group, gid) = match &args.group {
        Some(name) => {
            let gid = accounts::lookup_group(name).ok_or_else(|| {
                Failure::new(
                    format!("the group '{name}' does not exist"),
                    "pass --group an existing group",
                )
            })?;
            (name.clone(), gid)
        }
        None => (
            accounts::group_name(account.gid).unwrap_or_else(|| format!("#{}", account.gid)),
            account.gid,
        ),
    };
    Ok(Some(Identity {
        run_as: RunAs {
            user: account.name.clone(),
            group,
        },
        account,
        gid,
    }))
}

/// Warns about what Apache's user will not be able to read: the request
/// would fail later with a bare "Permission denied" in the log.
pub(super) fn warn_unreadable(identity: &Identity, needed: &[(&Path, &str)]) {
    for (path, what) in needed {
        if let Some(blocked) = accounts::unreadable_part(path, identity.account.uid, identity.gid) {
            log::warn!(
                "Apache runs the application as {}, which cannot read {} (needed for {what}); \
                 make it readable (chmod o+rX) or pass --user",
                identity.run_as.user,
                blocked.display()
            );
        }
    }
}
