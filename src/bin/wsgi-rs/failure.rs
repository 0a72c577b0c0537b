//! The one kind of error the launcher reports: what went wrong and what to
//! do about it, shown to the user as a single line.

use std::fmt;

/// A failure the user can act on: what went wrong and what to do.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    cause: String,
    /// What to do about it.
    remedy: String,
}

impl Failure {
    /// A failure with its cause and remedy.
    pub fn new(cause: impl Into<String>, remedy: impl Into<String>) -> Self {
        Failure {
            cause: cause.into(),
            remedy: remedy.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.cause, self.remedy)
    }
}

/// A result whose error the user can act on.
pub type Outcome<T> = Result<T, Failure>;
