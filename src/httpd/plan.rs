//! The process plan: what `post_config` resolved from the whole parsed
//! configuration (Python settings, scripts to preload, MPM facts). It is
//! immutable once published; children inherit it across fork.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

use std::time::Duration;

use crate::daemon::DaemonLaunch;
use crate::interp::{PythonSettings, ScriptCache, ScriptKey};

/// One `WSGIDaemonProcess` group, resolved.
#[derive(Debug, Clone)]
pub struct DaemonGroup {
    /// What each of its processes is started with (the listener fd is
    /// filled in once the socket exists).
    pub launch: DaemonLaunch,
    pub socket_path: PathBuf,
    /// The server_rec (by address) whose configuration defined the group:
    /// requests of that virtual host, or of any host when it is the main
    /// server, may use it.
    pub owner: usize,
    /// That server's `ServerName`: virtual hosts of the same name (one site
    /// on several ports) may use the group too, as in mod_wsgi.
    pub owner_name: String,
    pub connect_timeout: Duration,
}

#[derive(Debug, Default)]
pub struct ProcessPlan {
    pub python: PythonSettings,
    /// Scripts loaded when a child starts (`WSGIImportScript`, and
    /// `WSGIScriptAlias` naming both groups).
    pub preloads: Vec<ScriptKey>,
    pub multithread: bool,
    pub multiprocess: bool,
    pub daemon_groups: Vec<DaemonGroup>,
    /// Address of the main server_rec.
    pub main_server: usize,
    /// `WSGIRestrictEmbedded On`.
    pub restrict_embedded: bool,
    /// `WSGIServerMetrics On`: embedded code may read Apache's scoreboard
    /// (for `mod_wsgi.server_metrics()`).
    pub server_metrics: bool,
}

impl ProcessPlan {
    /// The daemon group `name` as seen from the server at `server`;
    /// `server_name` (asked only for a group of another virtual host) is
    /// that server's `ServerName`.
    pub fn daemon_group(
        &self,
        name: &str,
        server: usize,
        server_name: impl Fn() -> String,
    ) -> Option<&DaemonGroup> {
        self.daemon_groups.iter().find(|g| {
            g.launch.spec.name == name
                && (g.owner == server
                    || g.owner == self.main_server
                    || g.owner_name == server_name())
        })
    }
}

static PLAN: RwLock<Option<Arc<ProcessPlan>>> = RwLock::new(None);

pub fn publish(plan: ProcessPlan) -> Arc<ProcessPlan> {
    let plan = Arc::new(plan);
    *PLAN.write().unwrap_or_else(|p| p.into_inner()) = Some(plan.clone());
    plan
}

/// The plan of the current configuration generation.
pub fn current() -> Arc<ProcessPlan> {
    PLAN.read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default()
}

/// This process's loaded WSGI scripts.
pub fn scripts() -> &'static ScriptCache {
    static SCRIPTS: OnceLock<ScriptCache> = OnceLock::new();
    SCRIPTS.get_or_init(ScriptCache::new)
}

pub fn script_key(group: String, path: &str) -> ScriptKey {
    ScriptKey {
        group,
        path: PathBuf::from(path),
    }
}
