//! Argument-list helpers shared by the directive parsers: argument counts,
//! `name=value` options, On/Off flags and numbers, and `split_raw_args`,
//! which splits a raw argument line the way mod_wsgi does for its
//! option-taking directives.

use super::directive::Directive;
use super::error::ConfigError;

/// Lists arguments for an `ArgumentCount` error: each one quoted, or "none".
fn describe_args(args: &[&str]) -> String {
    if args.is_empty() {
        return "none".to_owned();
    }
    args.iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The error for a directive given the wrong number of arguments.
pub(crate) fn wrong_count(d: Directive, args: &[&str], expected: &'static str) -> ConfigError {
    ConfigError::ArgumentCount {
        directive: d.name(),
        given: describe_args(args),
        expected,
    }
}

/// The only argument of a one-argument directive.
pub(crate) fn exactly_one<'a>(d: Directive, args: &[&'a str]) -> Result<&'a str, ConfigError> {
    match args {
        [only] => Ok(only),
        _ => Err(wrong_count(d, args, "takes exactly one argument")),
    }
}

/// Like `exactly_one`, and the value must not be empty (`""` in the file).
pub(crate) fn exactly_one_non_empty<'a>(
    d: Directive,
    args: &[&'a str],
) -> Result<&'a str, ConfigError> {
    let value = exactly_one(d, args)?;
    if value.is_empty() {
        return Err(ConfigError::invalid(d.name(), value, "must not be empty"));
    }
    Ok(value)
}

/// Splits the arguments of a script directive (`file-path option=value
/// ...`): the path must come first and not look like an option. `expected`
/// describes the arguments for a count error.
pub(crate) fn script_and_options<'a, 'b>(
    d: Directive,
    args: &'b [&'a str],
    expected: &'static str,
) -> Result<(&'a str, &'b [&'a str]), ConfigError> {
    let [path, options @ ..] = args else {
        return Err(wrong_count(d, args, expected));
    };
    if path.is_empty() || path.contains('=') {
        return Err(ConfigError::invalid(
            d.name(),
            *path,
            "the first argument must be the script's file path",
        ));
    }
    Ok((path, options))
}

/// Parses a case-insensitive `On`/`Off`, as Apache's own flags are.
pub(crate) fn parse_on_off(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("on") {
        Some(true)
    } else if value.eq_ignore_ascii_case("off") {
        Some(false)
    } else {
        None
    }
}

/// The value of an `On`/`Off` directive.
pub(crate) fn flag_directive(d: Directive, args: &[&str]) -> Result<bool, ConfigError> {
    let value = exactly_one(d, args)?;
    parse_on_off(value).ok_or_else(|| ConfigError::invalid(d.name(), value, "expected On or Off"))
}

/// One `name=value` option after the positional arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OptionWord<'a> {
    /// The option name, as listed in the allowed set.
    pub name: &'static str,
    /// The value with one level of surrounding quotes removed.
    pub value: &'a str,
    /// The whole word as written, for error messages.
    pub word: &'a str,
}

/// mod_wsgi reads an option value with `ap_getword_conf`, so
/// `display-name="x"` means `x`; with an argv split by Apache the quotes are
/// still there and are dropped here.
fn strip_quotes(value: &str) -> &str {
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0]
    {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

/// Parses option words against the allowed names. Unknown names, words
/// without `=`, repeated names and empty values are all errors.
pub(crate) fn parse_options<'a>(
    d: Directive,
    words: &[&'a str],
    allowed: &[&'static str],
) -> Result<Vec<OptionWord<'a>>, ConfigError> {
    let mut parsed: Vec<OptionWord<'a>> = Vec::with_capacity(words.len());
    for &word in words {
        let known = word.split_once('=').and_then(|(name, value)| {
            allowed
                .iter()
                .find(|allowed_name| **allowed_name == name)
                .map(|allowed_name| (*allowed_name, value))
        });
        let Some((name, raw_value)) = known else {
            return Err(ConfigError::UnknownOption {
                directive: d.name(),
                option: word.to_owned(),
                expected: allowed
                    .iter()
                    .map(|n| format!("{n}="))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if parsed.iter().any(|o| o.name == name) {
            return Err(ConfigError::DuplicateOption {
                directive: d.name(),
                option: word.to_owned(),
                name,
            });
        }
        let value = strip_quotes(raw_value);
        if value.is_empty() {
            return Err(ConfigError::invalid(
                d.name(),
                word,
                "the option needs a value after '='",
            ));
        }
        parsed.push(OptionWord { name, value, word });
    }
    Ok(parsed)
}

/// The directories of a `WSGIPythonPath` line: colon-separated, across one
/// or more arguments, empty entries skipped; at least one is required.
pub(crate) fn python_path_entries(d: Directive, args: &[&str]) -> Result<Vec<String>, ConfigError> {
    if args.is_empty() {
        return Err(wrong_count(d, args, "takes at least one argument"));
    }
    let entries: Vec<String> = args
        .iter()
        .flat_map(|arg| arg.split(':'))
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect();
    if entries.is_empty() {
        return Err(ConfigError::invalid(
            d.name(),
            args.join(" "),
            "no directory given",
        ));
    }
    Ok(entries)
}

/// Parses a non-negative decimal integer, with reasons fit for an error.
/// Unlike mod_wsgi's `atoi` this refuses trailing junk such as `10s`.
pub(crate) fn parse_whole_number(value: &str) -> Result<u64, &'static str> {
    let is_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(magnitude) = value.strip_prefix('-') {
        if is_digits(magnitude) {
            return Err("must not be negative");
        }
    }
    if !is_digits(value) {
        return Err("expected a whole number");
    }
    value.parse::<u64>().map_err(|_| "number is too large")
}

/// True for a name Python accepts as an identifier (approximated with
/// Unicode alphanumerics; the exact XID tables are not worth a dependency).
pub(crate) fn is_python_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) if first == '_' || first.is_alphabetic() => {
            chars.all(|c| c == '_' || c.is_alphanumeric())
        }
        _ => false,
    }
}

/// Splits a raw directive argument line the way mod_wsgi does for its
/// `RAW_ARGS` directives (`WSGIScriptAlias`, `WSGIScriptAliasMatch`,
/// `WSGIImportScript`, `WSGIDaemonProcess`).
///
/// Words follow Apache's `ap_getword_conf`: a word is either quoted with
/// `"` or `'` (and may then hold spaces; `\"` and `\\` are escapes) or runs
/// to the next white space. In addition, as mod_wsgi's option parser does,
/// a word `name="quoted value"` keeps `name=` and reads the value as a
/// quoted word, so `display-name="my app"` yields `display-name=my app`.
/// Apache's `AP_INIT_TAKE_ARGV` would split that into two words; a caller
/// registering these directives as `RAW_ARGS` can use this instead.
pub fn split_raw_args(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = skip_space(line);
    while !rest.is_empty() {
        let (word, remaining) = next_word(rest);
        words.push(word);
        rest = skip_space(remaining);
    }
    words
}

/// `s` without its leading spaces and tabs.
fn skip_space(s: &str) -> &str {
    s.trim_start_matches(|c: char| c.is_ascii_whitespace())
}

/// Whether `c` opens a quoted word in Apache's syntax.
fn is_quote(c: char) -> bool {
    c == '"' || c == '\''
}

/// The next word of a raw argument line (quotes removed) and the rest.
fn next_word(s: &str) -> (String, &str) {
    if !s.starts_with(is_quote) {
        let word_end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
        if let Some(eq) = s[..word_end].find('=') {
            let after_eq = &s[eq + 1..];
            if after_eq.starts_with(is_quote) {
                let (value, remaining) = conf_word(after_eq);
                return (format!("{}={}", &s[..eq], value), remaining);
            }
        }
    }
    conf_word(s)
}

/// One `ap_getword_conf` word from the start of `s` (which is not blank),
/// and what follows it.
fn conf_word(s: &str) -> (String, &str) {
    let mut word = String::new();
    let quote = s.chars().next().filter(|c| is_quote(*c));
    let body = match quote {
        Some(q) => &s[q.len_utf8()..],
        None => s,
    };
    let mut chars = body.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        match quote {
            Some(q) if c == q => return (word, &body[index + c.len_utf8()..]),
            None if c.is_ascii_whitespace() => return (word, &body[index..]),
            _ => {}
        }
        let escapable = |next: char| next == '\\' || Some(next) == quote;
        match chars.peek() {
            Some(&(_, next)) if c == '\\' && escapable(next) => {
                word.push(next);
                chars.next();
            }
            _ => word.push(c),
        }
    }
    (word, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_count_errors_name_directive_and_arguments() {
        let err = exactly_one(Directive::CallableObject, &["a", "b"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGICallableObject: wrong number of arguments ('a' 'b'): takes exactly one argument"
        );
        let err = exactly_one(Directive::CallableObject, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGICallableObject: wrong number of arguments (none): takes exactly one argument"
        );
        let err = exactly_one_non_empty(Directive::SocketPrefix, &[""]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGISocketPrefix: invalid value '': must not be empty"
        );
    }

    #[test]
    fn on_off_is_case_insensitive_and_strict() {
        assert_eq!(parse_on_off("On"), Some(true));
        assert_eq!(parse_on_off("oN"), Some(true));
        assert_eq!(parse_on_off("OFF"), Some(false));
        for bad in ["yes", "no", "1", "0", "true", "", "On "] {
            assert_eq!(parse_on_off(bad), None, "{bad:?}");
        }
        let err = flag_directive(Directive::PassAuthorization, &["yes"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIPassAuthorization: invalid value 'yes': expected On or Off"
        );
    }

    #[test]
    fn options_are_checked_for_name_duplicates_and_empty_values() {
        let allowed = ["a", "bb"];
        let parsed = parse_options(
            Directive::ImportScript,
            &["a=1", "bb=\"two words\""],
            &allowed,
        )
        .unwrap();
        assert_eq!(parsed[0].name, "a");
        assert_eq!(parsed[0].value, "1");
        assert_eq!(parsed[1].value, "two words");
        assert_eq!(parsed[1].word, "bb=\"two words\"");

        let err = parse_options(Directive::ImportScript, &["c=1"], &allowed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIImportScript: unknown option 'c=1' (expected a=, bb=)"
        );
        let err = parse_options(Directive::ImportScript, &["a"], &allowed).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownOption { ref option, .. } if option == "a"));
        let err = parse_options(Directive::ImportScript, &["a=1", "a=2"], &allowed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIImportScript: duplicate option 'a=2': a= was already given"
        );
        let err = parse_options(Directive::ImportScript, &["a="], &allowed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIImportScript: invalid value 'a=': the option needs a value after '='"
        );
        let err = parse_options(Directive::ImportScript, &["a=''"], &allowed).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }));
    }

    #[test]
    fn whole_numbers() {
        assert_eq!(parse_whole_number("0"), Ok(0));
        assert_eq!(parse_whole_number("0042"), Ok(42));
        assert_eq!(parse_whole_number("-1"), Err("must not be negative"));
        assert_eq!(parse_whole_number("10s"), Err("expected a whole number"));
        assert_eq!(parse_whole_number("+1"), Err("expected a whole number"));
        assert_eq!(parse_whole_number(""), Err("expected a whole number"));
        assert_eq!(parse_whole_number("-"), Err("expected a whole number"));
        assert_eq!(
            parse_whole_number("99999999999999999999999"),
            Err("number is too large")
        );
    }

    #[test]
    fn python_identifiers() {
        for good in ["application", "_app", "app2", "Ünïcode"] {
            assert!(is_python_identifier(good), "{good}");
        }
        for bad in ["", "2app", "my-app", "mod.app", "a b", "%{ENV:X}"] {
            assert!(!is_python_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn raw_args_split_like_mod_wsgi() {
        assert_eq!(
            split_raw_args("  /app  /srv/app.wsgi\tprocess-group=x  "),
            ["/app", "/srv/app.wsgi", "process-group=x"]
        );
        assert_eq!(
            split_raw_args(r#""/my app" '/srv/my app.wsgi' display-name="my app" lang='en US'"#),
            [
                "/my app",
                "/srv/my app.wsgi",
                "display-name=my app",
                "lang=en US"
            ]
        );
        assert_eq!(
            split_raw_args(r#"a="say \"hi\" \\ \x" b"#),
            [r#"a=say "hi" \ \x"#, "b"]
        );
        assert_eq!(split_raw_args(r"c:\\dir"), [r"c:\dir"]);
        assert_eq!(
            split_raw_args(r#""unterminated value"#),
            ["unterminated value"]
        );
        assert_eq!(split_raw_args("x=a\"b\" y"), ["x=a\"b\"", "y"]);
        assert!(split_raw_args("   ").is_empty());
    }
}
