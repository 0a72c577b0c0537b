//! mod_wsgi 6's `<WSGIInterpreterOptions [process-group=NAME]
//! [application-group=NAME]> ... </WSGIInterpreterOptions>` container: the
//! selectors and the directives inside are checked as mod_wsgi checks them,
//! and the block is kept so a start-up notice can say it is not applied.

use super::args::{flag_directive, python_path_entries, split_raw_args};
use super::compat::Notice;
use super::directive::Directive;
use super::error::ConfigError;
use super::python_options::PythonOptions;

/// The only directives mod_wsgi allows inside the container.
const PERMITTED: [&str; 7] = [
    "WSGIPerInterpreterGIL",
    "WSGIFreeThreading",
    "WSGISwitchInterval",
    "WSGIPythonPath",
    "WSGIRestrictStdin",
    "WSGIRestrictStdout",
    "WSGIRestrictSignal",
];

/// The closing line of the container (compared ignoring case and spaces).
#[cfg(test)]
pub const END_TAG: &str = "</WSGIInterpreterOptions>";

/// One `<WSGIInterpreterOptions>` section: the interpreter options it sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InterpreterOptionsBlock {
    /// `None` matches every process group; `Some("")` is embedded mode.
    pub process_group: Option<String>,
    /// `None` matches every application group; `Some("")` the main one.
    pub application_group: Option<String>,
    /// The directives inside, as written (name, arguments).
    pub lines: Vec<(String, Vec<String>)>,
}

/// An error about a line of the section.
fn err(value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::invalid(Directive::InterpreterOptions.name(), value, reason)
}

impl InterpreterOptionsBlock {
    /// Parses the opening tag's arguments (`process-group=a
    /// application-group=b>`, the `>` included, as Apache hands them over).
    pub fn open(raw_args: &str) -> Result<Self, ConfigError> {
        let trimmed = raw_args.trim_end();
        let inner = trimmed
            .strip_suffix('>')
            .ok_or_else(|| err(trimmed, "the section is missing its closing '>'"))?;
        let mut block = InterpreterOptionsBlock::default();
        for word in split_raw_args(inner) {
            let (key, value) = word.split_once('=').ok_or_else(|| {
                err(
                    &word,
                    "expected process-group=NAME or application-group=NAME",
                )
            })?;
            let value = if value == "%{GLOBAL}" { "" } else { value };
            let slot = if key.eq_ignore_ascii_case("process-group") {
                &mut block.process_group
            } else if key.eq_ignore_ascii_case("application-group") {
                &mut block.application_group
            } else {
                return Err(err(
                    &word,
                    format!(
                        "unknown selector '{key}', expected process-group or application-group"
                    ),
                ));
            };
            if slot.is_some() {
                return Err(err(&word, format!("{key} given more than once")));
            }
            *slot = Some(value.to_owned());
        }
        Ok(block)
    }

    /// Checks and adds one line from inside the container. Blank lines and
    /// comments are skipped.
    pub fn add_line(&mut self, line: &str) -> Result<(), ConfigError> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let words = split_raw_args(line);
        let (name, args) = words.split_first().expect("a non-blank line has a word");
        let Some(permitted) = PERMITTED.iter().find(|p| p.eq_ignore_ascii_case(name)) else {
            return Err(err(
                name,
                format!(
                    "not allowed inside the container (allowed: {})",
                    PERMITTED.join(", ")
                ),
            ));
        };
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        match Directive::from_name(permitted) {
            Some(d @ Directive::SwitchInterval) => {
                PythonOptions::default().apply(d, &refs)?;
            }
            Some(d @ Directive::PythonPath) => {
                python_path_entries(d, &refs)?;
            }
            // The On|Off ones: WSGIPerInterpreterGIL, WSGIFreeThreading,
            // WSGIRestrictStdin, WSGIRestrictStdout, WSGIRestrictSignal.
            Some(d) => {
                flag_directive(d, &refs)?;
            }
            None => unreachable!("PERMITTED names directives of the table (unit test)"),
        }
        self.lines.push(((*permitted).to_owned(), args.to_vec()));
        Ok(())
    }

    /// Whether `line` closes the container.
    #[cfg(test)]
    pub fn is_end(line: &str) -> bool {
        let compact: String = line.split_whitespace().collect();
        compact.eq_ignore_ascii_case(END_TAG)
    }

    /// The start-up notice: the container's settings are not applied
    /// (`None` only without its row in `compat::NO_EFFECT`, which a unit
    /// test there rules out).
    pub fn notice(&self) -> Option<Notice> {
        let d = Directive::InterpreterOptions;
        let mut tag = d.name().to_owned();
        for (what, v) in [
            ("process-group", &self.process_group),
            ("application-group", &self.application_group),
        ] {
            if let Some(v) = v {
                let v = if v.is_empty() { "%{GLOBAL}" } else { v };
                tag.push_str(&format!(" {what}={v}"));
            }
        }
        Notice::for_directive(d, "", &format!("{tag}>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selectors_and_permitted_lines() {
        let mut b = InterpreterOptionsBlock::open(" process-group=d1 application-group=%{GLOBAL}>")
            .unwrap();
        assert_eq!(b.process_group.as_deref(), Some("d1"));
        assert_eq!(b.application_group.as_deref(), Some(""));
        b.add_line("  WSGIPerInterpreterGIL On").unwrap();
        b.add_line("WSGISwitchInterval 0.002").unwrap();
        b.add_line("# comment").unwrap();
        b.add_line("").unwrap();
        b.add_line("WSGIPythonPath /opt/app1/lib").unwrap();
        b.add_line("WSGIRestrictSignal Off").unwrap();
        assert_eq!(b.lines.len(), 4);
        assert!(InterpreterOptionsBlock::is_end(
            " </WSGIInterpreterOptions> "
        ));
        assert!(!InterpreterOptionsBlock::is_end("</WSGIInterpreterOption>"));
        let all = InterpreterOptionsBlock::open(">").unwrap();
        assert_eq!(all.process_group, None);
        assert_eq!(
            b.notice().unwrap().to_string(),
            "WSGIRS110: <WSGIInterpreterOptions process-group=d1 application-group=%{GLOBAL}>: \
             accepted for compatibility, no effect: the settings inside the container are \
             checked but not applied"
        );
    }

    #[test]
    fn errors_name_the_value() {
        let open_err = |a: &str| InterpreterOptionsBlock::open(a).unwrap_err().to_string();
        assert_eq!(
            open_err("process-group=a"),
            "<WSGIInterpreterOptions: invalid value 'process-group=a': the section is missing \
             its closing '>'"
        );
        assert!(open_err("user=x>").contains("unknown selector 'user'"));
        assert!(open_err("process-group=a process-group=b>").contains("given more than once"));
        let mut b = InterpreterOptionsBlock::open(">").unwrap();
        let line_err =
            |b: &mut InterpreterOptionsBlock, l: &str| b.add_line(l).unwrap_err().to_string();
        assert!(line_err(&mut b, "WSGIScriptAlias / /x.wsgi").contains("not allowed inside"));
        assert_eq!(
            line_err(&mut b, "WSGISwitchInterval fast"),
            "WSGISwitchInterval: invalid value 'fast': expected a positive number of seconds"
        );
        assert!(line_err(&mut b, "WSGIPerInterpreterGIL maybe").contains("expected On or Off"));
        assert!(line_err(&mut b, "WSGIRestrictSignal maybe").contains("expected On or Off"));
        for name in PERMITTED {
            assert!(Directive::from_name(name).is_some(), "{name}");
        }
    }
}
