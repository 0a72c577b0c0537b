//! `ConfigError`, the one error type of every directive parser.
//!
//! Each message starts with the directive name and quotes the offending
//! value before giving the reason, because Apache prints it as is after its
//! own "Syntax error on line N of FILE:" prefix.

use thiserror::Error;

/// A directive Apache must refuse, with what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Too few or too many arguments. `given` lists them, each quoted, or
    /// says "none".
    #[error("{directive}: wrong number of arguments ({given}): {expected}")]
    ArgumentCount {
        /// The directive.
        directive: &'static str,
        /// The arguments given.
        given: String,
        /// What it takes.
        expected: &'static str,
    },

    /// A value the directive does not accept.
    #[error("{directive}: invalid value '{value}': {reason}")]
    InvalidValue {
        /// The directive.
        directive: &'static str,
        /// The value.
        value: String,
        /// Why it is refused.
        reason: String,
    },

    /// `option` is the whole `name=value` word as written.
    #[error("{directive}: unknown option '{option}' (expected {expected})")]
    UnknownOption {
        /// The directive.
        directive: &'static str,
        /// The option.
        option: String,
        /// The options it knows.
        expected: String,
    },

    /// An option given twice.
    #[error("{directive}: duplicate option '{option}': {name}= was already given")]
    DuplicateOption {
        /// The directive.
        directive: &'static str,
        /// The option.
        option: String,
        /// The directive's first argument.
        name: &'static str,
    },

    /// `value` is the first positional argument (the script or group the
    /// option was needed for).
    #[error("{directive}: incomplete definition for '{value}': option {option}= is required")]
    MissingOption {
        /// The directive.
        directive: &'static str,
        /// The value.
        value: String,
        /// The option.
        option: &'static str,
    },

    /// A `WSGIScriptAliasMatch` pattern that does not compile.
    #[error("{directive}: invalid regular expression '{pattern}': {reason}")]
    InvalidRegex {
        /// The directive.
        directive: &'static str,
        /// The pattern.
        pattern: String,
        /// The regex crate's message.
        reason: String,
    },

    #[error(
        "{directive}: duplicate name '{name}': a daemon process group of that \
         name is already defined (names must be unique across the whole server)"
    )]
    /// A daemon group name used twice.
    DuplicateDaemonName {
        /// The directive.
        directive: &'static str,
        /// The name.
        name: String,
    },

    /// The caller handed a directive to the wrong kind of configuration
    /// record; this is a bug in the command table, not in the user's file.
    #[error("{directive}: not accepted by the {config} configuration (it is stored in the {belongs} one)")]
    WrongConfig {
        /// The directive.
        directive: &'static str,
        /// The record it was handed to.
        config: &'static str,
        /// The record it belongs in.
        belongs: &'static str,
    },
}

impl ConfigError {
    /// An invalid value of directive `d`, with the reason.
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
