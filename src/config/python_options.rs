//! The interpreter options of the main server: how Python starts in every
//! process (`WSGIPythonOptimize`, `WSGIPythonWarnings`,
//! `WSGIPythonHashSeed`, `WSGIDontWriteBytecode`, `WSGIDestroyInterpreter`)
//! and the embedded-mode ones (`WSGIPythonEggs`, `WSGISwitchInterval`).
//! mod_wsgi allows them only outside `<VirtualHost>`.

use super::args::{exactly_one, exactly_one_non_empty, flag_directive, parse_whole_number};
use super::daemon_options::parse_switch_interval;
use super::directive::Directive;
use super::error::ConfigError;

/// `WSGIPythonHashSeed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashSeed {
    /// Python picks a random seed at start-up (its default).
    Random,
    /// A fixed seed; 0 turns hash randomisation off.
    Fixed(u32),
}

/// Everything `None` or empty means "not set": Python's defaults apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PythonOptions {
    /// `WSGIPythonOptimize`.
    pub optimize: Option<u8>,
    /// In the order written; each is one `-W` filter.
    pub warnings: Vec<String>,
    /// `WSGIPythonHashSeed`.
    pub hash_seed: Option<HashSeed>,
    /// `WSGIDontWriteBytecode`.
    pub dont_write_bytecode: Option<bool>,
    /// Embedded mode's `PYTHON_EGG_CACHE`; daemons use `python-eggs=`.
    pub eggs: Option<String>,
    /// `WSGIDestroyInterpreter`.
    pub destroy_interpreter: Option<bool>,
    /// Embedded mode's switch interval; daemons use `switch-interval=`.
    pub switch_interval: Option<f64>,
}

impl PythonOptions {
    /// Applies one of this record's directives; `Ok(false)` when `d` is not
    /// one of them.
    pub fn apply(&mut self, d: Directive, args: &[&str]) -> Result<bool, ConfigError> {
        let name = d.name();
        match d {
            Directive::PythonOptimize => {
                let value = exactly_one(d, args)?;
                let level = match value {
                    "0" => 0,
                    "1" => 1,
                    "2" => 2,
                    _ => return Err(ConfigError::invalid(name, value, "expected 0, 1 or 2")),
                };
                self.optimize = Some(level);
            }
            Directive::PythonWarnings => {
                let value = exactly_one_non_empty(d, args)?;
                check_warning_filter(value).map_err(|r| ConfigError::invalid(name, value, r))?;
                self.warnings.push(value.to_owned());
            }
            Directive::PythonHashSeed => {
                let value = exactly_one(d, args)?;
                let seed = if value.eq_ignore_ascii_case("random") {
                    HashSeed::Random
                } else {
                    let n = parse_whole_number(value)
                        .map_err(|r| ConfigError::invalid(name, value, r))?;
                    let n = u32::try_from(n).map_err(|_| {
                        ConfigError::invalid(name, value, "must be at most 4294967295")
                    })?;
                    HashSeed::Fixed(n)
                };
                self.hash_seed = Some(seed);
            }
            Directive::DontWriteBytecode => {
                self.dont_write_bytecode = Some(flag_directive(d, args)?);
            }
            Directive::PythonEggs => {
                let value = exactly_one_non_empty(d, args)?;
                self.eggs = Some(value.to_owned());
            }
            Directive::DestroyInterpreter => {
                self.destroy_interpreter = Some(flag_directive(d, args)?);
            }
            Directive::SwitchInterval => {
                let value = exactly_one(d, args)?;
                let seconds = parse_switch_interval(value)
                    .map_err(|r| ConfigError::invalid(name, value, r))?;
                self.switch_interval = Some(seconds);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The shape Python's `-W` accepts: `action[:message[:category[:module[:lineno]]]]`
/// with a known action and a whole-number line. Python itself only warns
/// about a bad filter, which nobody would see in Apache's log at start-up.
fn check_warning_filter(spec: &str) -> Result<(), String> {
    const ACTIONS: [&str; 7] = [
        "default", "error", "ignore", "always", "all", "module", "once",
    ];
    let fields: Vec<&str> = spec.split(':').collect();
    if fields.len() > 5 {
        return Err("too many fields (action:message:category:module:lineno)".into());
    }
    let action = fields[0].trim();
    // Python accepts any unambiguous prefix of an action ("ig" for ignore).
    let lower = action.to_ascii_lowercase();
    let known = action.is_empty() || ACTIONS.iter().any(|a| a.starts_with(&lower));
    if !known {
        return Err(format!(
            "unknown action '{action}' (expected one of {})",
            ACTIONS.join(", ")
        ));
    }
    if let Some(lineno) = fields.get(4).map(|l| l.trim()) {
        if !lineno.is_empty() && parse_whole_number(lineno).is_err() {
            return Err(format!("line number '{lineno}' is not a whole number"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(d: Directive, args: &[&str]) -> PythonOptions {
        let mut o = PythonOptions::default();
        assert!(o.apply(d, args).unwrap());
        o
    }

    fn error(d: Directive, args: &[&str]) -> String {
        PythonOptions::default()
            .apply(d, args)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_each_option() {
        assert_eq!(applied(Directive::PythonOptimize, &["2"]).optimize, Some(2));
        assert_eq!(
            applied(Directive::PythonHashSeed, &["RANDOM"]).hash_seed,
            Some(HashSeed::Random)
        );
        assert_eq!(
            applied(Directive::PythonHashSeed, &["4294967295"]).hash_seed,
            Some(HashSeed::Fixed(u32::MAX))
        );
        assert_eq!(
            applied(Directive::DontWriteBytecode, &["On"]).dont_write_bytecode,
            Some(true)
        );
        assert_eq!(
            applied(Directive::PythonEggs, &["/tmp/eggs"])
                .eggs
                .as_deref(),
            Some("/tmp/eggs")
        );
        assert_eq!(
            applied(Directive::DestroyInterpreter, &["off"]).destroy_interpreter,
            Some(false)
        );
        assert_eq!(
            applied(Directive::SwitchInterval, &["0.002"]).switch_interval,
            Some(0.002)
        );
        let mut o = PythonOptions::default();
        o.apply(Directive::PythonWarnings, &["error"]).unwrap();
        o.apply(
            Directive::PythonWarnings,
            &["ignore::DeprecationWarning:pkg.legacy"],
        )
        .unwrap();
        assert_eq!(
            o.warnings,
            ["error", "ignore::DeprecationWarning:pkg.legacy"]
        );
        assert!(!o.apply(Directive::ScriptAlias, &["/"]).unwrap());
    }

    #[test]
    fn errors_name_directive_and_value() {
        for (d, args, expected) in [
            (
                Directive::PythonOptimize,
                &["3"][..],
                "WSGIPythonOptimize: invalid value '3': expected 0, 1 or 2",
            ),
            (
                Directive::PythonHashSeed,
                &["4294967296"],
                "WSGIPythonHashSeed: invalid value '4294967296': must be at most 4294967295",
            ),
            (
                Directive::PythonHashSeed,
                &["-1"],
                "WSGIPythonHashSeed: invalid value '-1': must not be negative",
            ),
            (
                Directive::PythonWarnings,
                &["explode"],
                "WSGIPythonWarnings: invalid value 'explode': unknown action 'explode' \
                 (expected one of default, error, ignore, always, all, module, once)",
            ),
            (
                Directive::PythonWarnings,
                &["error::Warning:mod:x"],
                "WSGIPythonWarnings: invalid value 'error::Warning:mod:x': line number 'x' \
                 is not a whole number",
            ),
            (
                Directive::SwitchInterval,
                &["0"],
                "WSGISwitchInterval: invalid value '0': expected a positive number of seconds",
            ),
            (
                Directive::DontWriteBytecode,
                &["maybe"],
                "WSGIDontWriteBytecode: invalid value 'maybe': expected On or Off",
            ),
            (
                Directive::PythonEggs,
                &[""],
                "WSGIPythonEggs: invalid value '': must not be empty",
            ),
        ] {
            assert_eq!(error(d, args), expected);
        }
    }
}
