//! `WSGIScriptAlias` and `WSGIScriptAliasMatch`: parsing the directives and
//! mapping a request URI onto the script file they name.

use regex::{Captures, Regex};

use super::args::{is_python_identifier, parse_on_off, parse_options, wrong_count};
use super::directive::Directive;
use super::error::ConfigError;
use super::group::{ApplicationGroup, ProcessGroup};
use super::interface::{self, Interface};

/// The `key=value` options a `WSGIScriptAlias` line may carry.
const ALIAS_OPTIONS: [&str; 5] = [
    "process-group",
    "application-group",
    "callable-object",
    "pass-authorization",
    interface::OPTION,
];

/// How an alias recognises the URIs it serves.
#[derive(Debug, Clone)]
pub enum AliasPattern {
    /// `WSGIScriptAlias`: a URL-path prefix, matched as mod_alias does.
    Prefix(String),
    /// `WSGIScriptAliasMatch`: a regular expression searched for in the
    /// URI (not anchored unless the pattern says so).
    Regex(Regex),
}

impl AliasPattern {
    /// The pattern as written in the directive.
    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        match self {
            AliasPattern::Prefix(prefix) => prefix,
            AliasPattern::Regex(regex) => regex.as_str(),
        }
    }
}

/// The `name=value` options of an alias. They override the per-directory
/// settings for requests the alias maps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasOptions {
    /// `process-group=`: the daemon group that serves it.
    pub process_group: Option<ProcessGroup>,
    /// `application-group=`: the interpreter it runs in.
    pub application_group: Option<ApplicationGroup>,
    /// `callable-object=`: the application's name in the script.
    pub callable_object: Option<String>,
    /// `pass-authorization=`: `HTTP_AUTHORIZATION` reaches the application.
    pub pass_authorization: Option<bool>,
    /// `interface=`: the callable speaks WSGI or ASGI, whatever it looks
    /// like (None: the daemon process tells by the callable).
    pub interface: Option<Interface>,
}

/// One `WSGIScriptAlias` or `WSGIScriptAliasMatch` line.
#[derive(Debug, Clone)]
pub struct ScriptAlias {
    /// What URLs it maps.
    pub pattern: AliasPattern,
    /// The script file or directory; for a regex alias it may hold `$0`
    /// to `$9` back-references.
    pub target: String,
    /// Its `key=value` options.
    pub options: AliasOptions,
    /// Whether mod_wsgi would load the script when its process starts
    /// rather than on the first request: both groups are given and fixed,
    /// and a regex alias's target has no back-reference.
    pub preload: bool,
}

/// Where a URI lands under an alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasMatch {
    /// The part of the URI the alias consumed, repeated slashes collapsed
    /// and without a trailing slash ("" for the root).
    pub mount_point: String,
    /// The file-system path to give Apache as `r->filename`; Apache stats
    /// it and splits off `PATH_INFO` itself.
    pub filename: String,
}

/// A piece of a `WSGIScriptAliasMatch` target, read as `ap_pregsub` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TemplatePiece {
    /// A literal character.
    Char(char),
    /// `$N`: the text of capture group N.
    Group(usize),
}

/// `$N` is a back-reference and `\x` is a literal `x`; everything else is
/// itself.
fn template_pieces(template: &str) -> Vec<TemplatePiece> {
    let mut pieces = Vec::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        match (c, next) {
            ('$', Some(digit)) if digit.is_ascii_digit() => {
                chars.next();
                pieces.push(TemplatePiece::Group(usize::from(digit as u8 - b'0')));
            }
            ('\\', Some(escaped)) => {
                chars.next();
                pieces.push(TemplatePiece::Char(escaped));
            }
            _ => pieces.push(TemplatePiece::Char(c)),
        }
    }
    pieces
}

/// Expands `$N` in a `WSGIScriptAliasMatch` target with the captures.
fn substitute(template: &str, captures: &Captures<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    for piece in template_pieces(template) {
        match piece {
            TemplatePiece::Char(c) => out.push(c),
            TemplatePiece::Group(n) => {
                out.push_str(captures.get(n).map_or("", |m| m.as_str()));
            }
        }
    }
    out
}

/// The regex crate's syntax errors span several lines with a caret
/// diagram; Apache wants one line, and the last one says what is wrong.
fn one_line_regex_error(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.trim().trim_start_matches("error: ").to_owned()
}

/// Length of the URI prefix that a mod_alias style alias matches: each run
/// of slashes in the alias matches a run of one or more slashes in the
/// URI, and unless the alias ends with a slash the match must end at a
/// path-segment boundary.
fn prefix_match_len(alias: &str, uri: &str) -> Option<usize> {
    let alias = alias.as_bytes();
    let uri_bytes = uri.as_bytes();
    let (mut a, mut u) = (0, 0);
    while a < alias.len() {
        if alias[a] == b'/' {
            if uri_bytes.get(u) != Some(&b'/') {
                return None;
            }
            while alias.get(a) == Some(&b'/') {
                a += 1;
            }
            while uri_bytes.get(u) == Some(&b'/') {
                u += 1;
            }
        } else {
            if uri_bytes.get(u) != Some(&alias[a]) {
                return None;
            }
            a += 1;
            u += 1;
        }
    }
    let alias_ends_in_slash = alias.last() == Some(&b'/');
    if !alias_ends_in_slash && u < uri_bytes.len() && uri_bytes[u] != b'/' {
        return None;
    }
    Some(u)
}

/// The path with each run of slashes made one, as Apache compares URLs.
fn collapse_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// The `SCRIPT_NAME` a match consumed, without a trailing slash.
fn mount_point_of(consumed: &str) -> String {
    collapse_slashes(consumed).trim_end_matches('/').to_owned()
}

impl ScriptAlias {
    /// Parses the arguments of `WSGIScriptAlias`.
    pub fn parse_prefix(args: &[&str]) -> Result<Self, ConfigError> {
        let d = Directive::ScriptAlias;
        let (url_path, target, options) = split_alias_args(
            d,
            args,
            "takes a URL-path and a file or directory path, then options",
        )?;
        if !url_path.starts_with('/') {
            return Err(ConfigError::invalid(
                d.name(),
                url_path,
                "the URL-path must start with '/'",
            ));
        }
        Ok(ScriptAlias::new(
            AliasPattern::Prefix(url_path.to_owned()),
            target,
            parse_alias_options(d, options)?,
        ))
    }

    /// Parses the arguments of `WSGIScriptAliasMatch`.
    pub fn parse_regex(args: &[&str]) -> Result<Self, ConfigError> {
        let d = Directive::ScriptAliasMatch;
        let (pattern, target, options) = split_alias_args(
            d,
            args,
            "takes a regular expression and a file or directory path, then options",
        )?;
        let regex = Regex::new(pattern).map_err(|e| ConfigError::InvalidRegex {
            directive: d.name(),
            pattern: pattern.to_owned(),
            reason: one_line_regex_error(&e),
        })?;
        let group_count = regex.captures_len() - 1;
        for piece in template_pieces(target) {
            if let TemplatePiece::Group(n) = piece {
                if n > group_count {
                    return Err(ConfigError::invalid(
                        d.name(),
                        target,
                        format!(
                            "back-reference ${n} but the pattern '{pattern}' has only \
                             {group_count} capture group(s)"
                        ),
                    ));
                }
            }
        }
        Ok(ScriptAlias::new(
            AliasPattern::Regex(regex),
            target,
            parse_alias_options(d, options)?,
        ))
    }

    /// An alias of `pattern` to `target` with its options.
    fn new(pattern: AliasPattern, target: &str, options: AliasOptions) -> Self {
        let target_is_per_request =
            matches!(pattern, AliasPattern::Regex(_)) && target.contains('$');
        let preload = options
            .process_group
            .as_ref()
            .is_some_and(ProcessGroup::is_fixed)
            && options
                .application_group
                .as_ref()
                .is_some_and(ApplicationGroup::is_fixed)
            && !target_is_per_request;
        ScriptAlias {
            pattern,
            target: target.to_owned(),
            options,
            preload,
        }
    }

    /// Maps a request URI (`r->uri`: decoded, no query string) to a script
    /// path, or `None` when this alias does not cover it.
    pub fn match_uri(&self, uri: &str) -> Option<AliasMatch> {
        // mod_wsgi leaves "*" (OPTIONS) and proxy-style URIs alone.
        if !uri.is_empty() && !uri.starts_with('/') {
            return None;
        }
        match &self.pattern {
            AliasPattern::Prefix(alias) => self.match_prefix(alias, uri),
            AliasPattern::Regex(regex) => self.match_regex(regex, uri),
        }
    }

    /// Matches a plain alias: `uri` must start with `alias` at a segment boundary.
    fn match_prefix(&self, alias: &str, uri: &str) -> Option<AliasMatch> {
        let consumed = prefix_match_len(alias, uri)?;
        let rest = &uri[consumed..];
        let base = self.target.trim_end_matches('/');
        // The root alias keeps the URI's leading slash in the path, so "/"
        // maps to "<target>/" and the application sees PATH_INFO "/".
        let is_root = alias.bytes().all(|b| b == b'/');
        let filename = if is_root {
            format!("{base}/{}", uri.trim_start_matches('/'))
        } else if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}/{}", rest.trim_start_matches('/'))
        };
        Some(AliasMatch {
            mount_point: mount_point_of(&uri[..consumed]),
            filename,
        })
    }

    /// Matches a `WSGIScriptAliasMatch` pattern and expands its target.
    fn match_regex(&self, regex: &Regex, uri: &str) -> Option<AliasMatch> {
        let captures = regex.captures(uri)?;
        let end = captures.get(0)?.end();
        // As in mod_wsgi, a match that consumes nothing maps nothing, and
        // everything up to the end of the match counts as consumed.
        if end == 0 {
            return None;
        }
        let consumed = &uri[..end];
        let mut filename = substitute(&self.target, &captures);
        filename.push_str(if consumed == "/" { uri } else { &uri[end..] });
        Some(AliasMatch {
            mount_point: mount_point_of(consumed),
            filename,
        })
    }
}

/// Splits off the two positional arguments; both must be non-empty.
fn split_alias_args<'a, 'b>(
    d: Directive,
    args: &'b [&'a str],
    expected: &'static str,
) -> Result<(&'a str, &'a str, &'b [&'a str]), ConfigError> {
    let [first, target, options @ ..] = args else {
        return Err(wrong_count(d, args, expected));
    };
    for positional in [first, target] {
        if positional.is_empty() {
            return Err(ConfigError::invalid(d.name(), "", "must not be empty"));
        }
    }
    Ok((first, target, options))
}

/// Parses the `key=value` options after an alias's URL and target.
fn parse_alias_options(d: Directive, words: &[&str]) -> Result<AliasOptions, ConfigError> {
    let mut options = AliasOptions::default();
    for option in parse_options(d, words, &ALIAS_OPTIONS)? {
        let invalid = |reason: String| ConfigError::invalid(d.name(), option.word, reason);
        match option.name {
            "process-group" => {
                let group =
                    ProcessGroup::parse(option.value).map_err(|e| invalid(e.to_string()))?;
                options.process_group = Some(group);
            }
            "application-group" => {
                let group =
                    ApplicationGroup::parse(option.value).map_err(|e| invalid(e.to_string()))?;
                options.application_group = Some(group);
            }
            "callable-object" => {
                if !is_python_identifier(option.value) {
                    return Err(invalid("not a Python identifier".to_owned()));
                }
                options.callable_object = Some(option.value.to_owned());
            }
            "pass-authorization" => {
                let flag = parse_on_off(option.value)
                    .ok_or_else(|| invalid("expected On or Off".into()))?;
                options.pass_authorization = Some(flag);
            }
            interface::OPTION => {
                options.interface = Some(Interface::parse(option.value).map_err(invalid)?);
            }
            _ => unreachable!("parse_options only yields names from ALIAS_OPTIONS"),
        }
    }
    if let Some(interface) = options.interface {
        interface.check_daemon(d, options.process_group.as_ref())?;
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(args: &[&str]) -> ScriptAlias {
        ScriptAlias::parse_prefix(args).unwrap()
    }

    fn alias_match(args: &[&str]) -> ScriptAlias {
        ScriptAlias::parse_regex(args).unwrap()
    }

    fn lands(a: &ScriptAlias, uri: &str) -> Option<(String, String)> {
        a.match_uri(uri).map(|m| (m.mount_point, m.filename))
    }

    fn some(mount: &str, file: &str) -> Option<(String, String)> {
        Some((mount.to_owned(), file.to_owned()))
    }

    #[test]
    fn parses_positionals_and_every_option() {
        let a = alias(&[
            "/app",
            "/srv/app.wsgi",
            "process-group=site",
            "application-group=%{GLOBAL}",
            "callable-object=app",
            "pass-authorization=on",
        ]);
        assert_eq!(a.pattern.as_str(), "/app");
        assert!(matches!(a.pattern, AliasPattern::Prefix(_)));
        assert_eq!(a.target, "/srv/app.wsgi");
        assert_eq!(
            a.options,
            AliasOptions {
                process_group: Some(ProcessGroup::Named("site".into())),
                application_group: Some(ApplicationGroup::Global),
                callable_object: Some("app".into()),
                pass_authorization: Some(true),
                interface: None,
            }
        );
        assert!(a.preload);

        let plain = alias(&["/", "/srv/app.wsgi"]);
        assert_eq!(plain.options, AliasOptions::default());
        assert!(!plain.preload);
    }

    #[test]
    fn preload_needs_both_fixed_groups() {
        assert!(!alias(&["/a", "/s.wsgi", "process-group=p"]).preload);
        assert!(!alias(&["/a", "/s.wsgi", "application-group=g"]).preload);
        assert!(
            alias(&[
                "/a",
                "/s.wsgi",
                "process-group=%{GLOBAL}",
                "application-group=g"
            ])
            .preload
        );
        assert!(
            !alias(&[
                "/a",
                "/s.wsgi",
                "process-group=p",
                "application-group=%{SERVER}"
            ])
            .preload
        );
        assert!(
            !alias(&[
                "/a",
                "/s.wsgi",
                "process-group=%{ENV:P}",
                "application-group=g"
            ])
            .preload
        );
        let with_backref = alias_match(&[
            "^/(\\w+)",
            "/srv/$1.wsgi",
            "process-group=p",
            "application-group=g",
        ]);
        assert!(!with_backref.preload);
        let without = alias_match(&[
            "^/x",
            "/srv/x.wsgi",
            "process-group=p",
            "application-group=g",
        ]);
        assert!(without.preload);
    }

    #[test]
    fn argument_errors() {
        let err = ScriptAlias::parse_prefix(&["/app"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIScriptAlias: wrong number of arguments ('/app'): takes a URL-path and a \
             file or directory path, then options"
        );
        let err = ScriptAlias::parse_regex(&[]).unwrap_err();
        assert!(err.to_string().starts_with(
            "WSGIScriptAliasMatch: wrong number of arguments (none): takes a regular expression"
        ));
        let err = ScriptAlias::parse_prefix(&["app", "/srv/app.wsgi"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIScriptAlias: invalid value 'app': the URL-path must start with '/'"
        );
        let err = ScriptAlias::parse_prefix(&["/app", ""]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIScriptAlias: invalid value '': must not be empty"
        );
    }

    #[test]
    fn option_errors_name_the_word() {
        let err = ScriptAlias::parse_prefix(&["/a", "/s", "proces-group=foo"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIScriptAlias: unknown option 'proces-group=foo' (expected process-group=, \
             application-group=, callable-object=, pass-authorization=, interface=)"
        );
        let err = ScriptAlias::parse_prefix(&["/a", "/s", "/extra"]).unwrap_err();
        assert!(err.to_string().contains("unknown option '/extra'"));
        let err = ScriptAlias::parse_prefix(&["/a", "/s", "process-group=a", "process-group=b"])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIScriptAlias: duplicate option 'process-group=b': process-group= was already given"
        );
        let err = ScriptAlias::parse_prefix(&["/a", "/s", "application-group="]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIScriptAlias: invalid value 'application-group=': the option needs a value after '='"
        );
        let err = ScriptAlias::parse_prefix(&["/a", "/s", "pass-authorization=yes"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIScriptAlias: invalid value 'pass-authorization=yes': expected On or Off"
        );
        let err = ScriptAlias::parse_prefix(&["/a", "/s", "callable-object=my-app"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIScriptAlias: invalid value 'callable-object=my-app': not a Python identifier"
        );
        let err =
            ScriptAlias::parse_prefix(&["/a", "/s", "application-group=%{BOGUS}"]).unwrap_err();
        assert!(err.to_string().starts_with(
            "WSGIScriptAlias: invalid value 'application-group=%{BOGUS}': unknown keyword %{BOGUS}"
        ));
        let err = ScriptAlias::parse_regex(&["^/a", "/s", "process-group=%{SERVER}"]).unwrap_err();
        assert!(err.to_string().starts_with(
            "WSGIScriptAliasMatch: invalid value 'process-group=%{SERVER}': unknown keyword"
        ));
        let err = ScriptAlias::parse_prefix(&["/a", "/s", "process-group=%{ENV:}"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIScriptAlias: invalid value 'process-group=%{ENV:}': %{ENV:} needs a variable name"
        );
    }

    #[test]
    fn quoted_option_values_are_unquoted() {
        let a = alias(&["/a", "/s", "application-group=\"my group\""]);
        assert_eq!(
            a.options.application_group,
            Some(ApplicationGroup::Named("my group".into()))
        );
    }

    #[test]
    fn prefix_matches_at_segment_boundaries_only() {
        let a = alias(&["/app", "/srv/app.wsgi"]);
        assert_eq!(lands(&a, "/app"), some("/app", "/srv/app.wsgi"));
        assert_eq!(lands(&a, "/app/"), some("/app", "/srv/app.wsgi/"));
        assert_eq!(lands(&a, "/app/x"), some("/app", "/srv/app.wsgi/x"));
        assert_eq!(lands(&a, "/app/x/y/"), some("/app", "/srv/app.wsgi/x/y/"));
        assert_eq!(lands(&a, "/application"), None);
        assert_eq!(lands(&a, "/ap"), None);
        assert_eq!(lands(&a, "/other/app"), None);
        assert_eq!(lands(&a, "/App"), None);
        assert_eq!(lands(&a, ""), None);
        assert_eq!(lands(&a, "*"), None);
    }

    #[test]
    fn repeated_slashes_count_as_one() {
        let a = alias(&["/app/sub", "/srv/app.wsgi"]);
        assert_eq!(lands(&a, "//app///sub"), some("/app/sub", "/srv/app.wsgi"));
        assert_eq!(
            lands(&a, "/app//sub//x"),
            some("/app/sub", "/srv/app.wsgi/x")
        );
        assert_eq!(lands(&a, "/appsub"), None);
        let doubled_in_alias = alias(&["/app//sub", "/srv/app.wsgi"]);
        assert_eq!(
            lands(&doubled_in_alias, "/app/sub/x"),
            some("/app/sub", "/srv/app.wsgi/x")
        );
    }

    #[test]
    fn trailing_slash_on_the_alias_is_significant() {
        let a = alias(&["/app/", "/srv/app.wsgi"]);
        assert_eq!(lands(&a, "/app"), None);
        assert_eq!(lands(&a, "/app/"), some("/app", "/srv/app.wsgi"));
        assert_eq!(lands(&a, "/app/x"), some("/app", "/srv/app.wsgi/x"));
        assert_eq!(lands(&a, "/app//x"), some("/app", "/srv/app.wsgi/x"));
    }

    #[test]
    fn root_alias_keeps_the_whole_uri() {
        let a = alias(&["/", "/srv/app.wsgi"]);
        assert_eq!(lands(&a, "/"), some("", "/srv/app.wsgi/"));
        assert_eq!(lands(&a, "/a/b"), some("", "/srv/app.wsgi/a/b"));
        assert_eq!(lands(&a, "//a"), some("", "/srv/app.wsgi/a"));
        assert_eq!(
            lands(&a, "/application"),
            some("", "/srv/app.wsgi/application")
        );
    }

    #[test]
    fn directory_targets_join_with_one_slash() {
        let a = alias(&["/s", "/srv/scripts/"]);
        assert_eq!(
            lands(&a, "/s/hello.wsgi/x"),
            some("/s", "/srv/scripts/hello.wsgi/x")
        );
        assert_eq!(lands(&a, "/s"), some("/s", "/srv/scripts"));
        let both_slashed = alias(&["/s/", "/srv/scripts//"]);
        assert_eq!(
            lands(&both_slashed, "/s/hello.wsgi"),
            some("/s", "/srv/scripts/hello.wsgi")
        );
        let root_dir = alias(&["/", "/srv/scripts/"]);
        assert_eq!(
            lands(&root_dir, "/hello.wsgi"),
            some("", "/srv/scripts/hello.wsgi")
        );
    }

    #[test]
    fn regex_alias_substitutes_back_references() {
        let a = alias_match(&["^/wsgi-scripts/([^/]+)", "/web/wsgi-scripts/$1.wsgi"]);
        assert!(matches!(a.pattern, AliasPattern::Regex(_)));
        assert_eq!(
            lands(&a, "/wsgi-scripts/foo"),
            some("/wsgi-scripts/foo", "/web/wsgi-scripts/foo.wsgi")
        );
        assert_eq!(
            lands(&a, "/wsgi-scripts/foo/bar/baz"),
            some("/wsgi-scripts/foo", "/web/wsgi-scripts/foo.wsgi/bar/baz")
        );
        assert_eq!(lands(&a, "/other"), None);

        let keep_prefix = alias_match(&["^/(admin|files)", "/projects/Media/wsgi_handler.py/$1"]);
        assert_eq!(
            lands(&keep_prefix, "/files/a.txt"),
            some("/files", "/projects/Media/wsgi_handler.py/files/a.txt")
        );

        let whole = alias_match(&["^/x/(\\d+)", "/srv/$0/$1\\$1"]);
        assert_eq!(lands(&whole, "/x/42/y"), some("/x/42", "/srv//x/42/42$1/y"));
    }

    #[test]
    fn regex_alias_unmatched_groups_become_empty() {
        let a = alias_match(&["^/(a)?b", "/srv/[$1].wsgi"]);
        assert_eq!(lands(&a, "/b/x"), some("/b", "/srv/[].wsgi/x"));
        assert_eq!(lands(&a, "/ab"), some("/ab", "/srv/[a].wsgi"));
    }

    #[test]
    fn regex_alias_is_unanchored_at_the_end_and_start() {
        let a = alias_match(&["/app", "/srv/app.wsgi"]);
        assert_eq!(lands(&a, "/app/x"), some("/app", "/srv/app.wsgi/x"));
        // Like mod_wsgi, everything up to the end of the match is consumed.
        assert_eq!(lands(&a, "/pre/app/x"), some("/pre/app", "/srv/app.wsgi/x"));
        let root = alias_match(&["^/", "/srv/app.wsgi"]);
        assert_eq!(lands(&root, "/a/b"), some("", "/srv/app.wsgi/a/b"));
        let empty_match = alias_match(&["^", "/srv/app.wsgi"]);
        assert_eq!(lands(&empty_match, "/a"), None);
    }

    #[test]
    fn regex_errors() {
        let err = ScriptAlias::parse_regex(&["^/(unclosed", "/srv/x.wsgi"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIScriptAliasMatch: invalid regular expression '^/(unclosed': unclosed group"
        );
        assert!(!err.to_string().contains('\n'));
        let err = ScriptAlias::parse_regex(&["^/(a)", "/srv/$2.wsgi"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WSGIScriptAliasMatch: invalid value '/srv/$2.wsgi': back-reference $2 but the \
             pattern '^/(a)' has only 1 capture group(s)"
        );
        let err = ScriptAlias::parse_regex(&["^/a", "/srv/$1.wsgi"]).unwrap_err();
        assert!(err.to_string().contains("has only 0 capture group(s)"));
        // "$0" always exists, an escaped "\$1" and a bare "$" are literal.
        assert!(ScriptAlias::parse_regex(&["^/a", "/srv/$0\\$1$x"]).is_ok());
    }

    #[test]
    fn template_pieces_follow_ap_pregsub() {
        use TemplatePiece::{Char, Group};
        assert_eq!(
            template_pieces("a$1\\$2$\\"),
            [
                Char('a'),
                Group(1),
                Char('$'),
                Char('2'),
                Char('$'),
                Char('\\')
            ]
        );
    }
}
