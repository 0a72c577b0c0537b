//! The process plan: what `post_config` resolved from the whole parsed
//! configuration (Python settings, scripts to preload, MPM facts). It is
//! immutable once published; children inherit it across fork.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

use crate::interp::{PythonSettings, ScriptCache, ScriptKey};

#[derive(Debug, Default)]
pub struct ProcessPlan {
    pub python: PythonSettings,
    /// Scripts loaded when a child starts (`WSGIImportScript`, and
    /// `WSGIScriptAlias` naming both groups).
    pub preloads: Vec<ScriptKey>,
    pub multithread: bool,
    pub multiprocess: bool,
}

static PLAN: RwLock<Option<Arc<ProcessPlan>>> = RwLock::new(None);

pub fn publish(plan: ProcessPlan) {
    *PLAN.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(plan));
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
