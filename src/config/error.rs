//! `ConfigError`, the one error type of every directive parser.
//!
//! Each message starts with the directive name and quotes the offending
//! value before giving the reason, because Apache prints it as is after its
//! own "Syntax error on line N of FILE:" prefix.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Too few or too many arguments. `given` lists them, each quoted, or
    /// says "none".
    #[error("{directive}: wrong number of arguments ({given}): {expected}")]
    ArgumentCount {
        directive: &'static str,
        given: String,
        expected: &'static str,
    },

    #[error("{directive}: invalid value '{value}': {reason}")]
    InvalidValue {
        directive: &'static str,
        value: String,
        reason: String,
    },

    /// `option` is the whole `name=value` word as written.
    #[error("{directive}: unknown option '{option}' (expected {expected})")]
    UnknownOption {
        directive: &'static str,
        option: String,
        expected: String,
    },

    #[error("{directive}: duplicate option '{option}': {name}= was already given")]
    DuplicateOption {
        directive: &'static str,
        option: String,
        name: &'static str,
    },

    /// `value` is the first positional argument (the script or group the
    /// option was needed for).
    #[error("{directive}: incomplete definition for '{value}': option {option}= is required")]
    MissingOption {
        directive: &'static str,
        value: String,
        option: &'static str,
    },

    #[error("{directive}: invalid regular expression '{pattern}': {reason}")]
    InvalidRegex {
        directive: &'static str,
        pattern: String,
        reason: String,
    },

    #[error(
        "{directive}: duplicate name '{name}': a daemon process group of that \
         name is already defined (names must be unique across the whole server)"
    )]
    DuplicateDaemonName {
        directive: &'static str,
        name: String,
    },

    /// The caller handed a directive to the wrong kind of configuration
    /// record; this is a bug in the command table, not in the user's file.
    #[error("{directive}: not accepted by the {config} configuration (it is stored in the {belongs} one)")]
    WrongConfig {
        directive: &'static str,
        config: &'static str,
        belongs: &'static str,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        directive: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::InvalidValue {
            directive,
            value: value.into(),
            reason: reason.into(),
        }
    }
}
