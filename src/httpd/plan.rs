//! The published plan: the [`ProcessPlan`] post_config resolved for the
//! current configuration generation (see `crate::plan`), and this process's
//! loaded WSGI scripts.

use std::sync::{Arc, OnceLock, RwLock};

use crate::interp::ScriptCache;
pub use crate::plan::{script_key, DaemonGroup, ProcessPlan};

/// The plan of the current configuration generation.
static PLAN: RwLock<Option<Arc<ProcessPlan>>> = RwLock::new(None);

/// Makes `plan` current.
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
