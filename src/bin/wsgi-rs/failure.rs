//! The one kind of error the launcher reports: what went wrong and what to
//! do about it, shown to the user as a single line.

use std::fmt;

#[derive(Debug)]
pub struct Failure {
    cause: String,
    remedy: String,
}

impl Failure {
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

pub type Outcome<T> = Result<T, Failure>;
