//! Property tests of every directive parser: no argument words make one
//! panic (each either stores a value or answers a [`ConfigError`]), and
//! values that name something come back as written.

use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;

use super::{
    split_raw_args, ApplicationGroup, Args, DaemonProcessSpec, DirConfig, Directive,
    InterpreterOptionsBlock, ProcessGroup, Scope, ServerConfig,
};

/// Enough cases to find edge cases, few enough for `cargo test --lib`.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// One argument word as Apache may hand it over: anything, or shaped like
/// the directives' own syntax (options, group keywords, paths, numbers).
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z-]{1,24}=[^ ]{0,12}",
        "%\\{[A-Z:]{0,10}\\}?",
        "/[a-z/._-]{0,20}",
        "-?[0-9]{1,22}",
        "(?i:on|off|auto)",
        "[ -~]{0,16}",
    ]
}

/// A directive's argument words.
fn words() -> impl Strategy<Value = Vec<String>> {
    vec(word(), 0..6)
}

/// Applies `d` to a record of its scope, as the httpd layer does.
fn apply(d: Directive, args: &[String]) -> Result<(), super::error::ConfigError> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match d.scope() {
        Scope::Server => ServerConfig::default().apply(d, &args),
        Scope::Dir => DirConfig::default().apply(d, &args),
    }
}

/// A name with no configuration syntax in it.
fn plain_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.:-][A-Za-z0-9_.:/ -]{0,20}"
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_directive_panics_on_any_words(args in words()) {
        // Section containers are read by the httpd layer, as raw lines
        // (see raw_lines_never_panic).
        for d in Directive::all().filter(|d| d.spec().args == Args::Words) {
            let _ = apply(d, &args);
        }
    }

    #[test]
    fn daemon_process_options_never_panic(
        name in "[a-z]{1,8}",
        option in prop::sample::select(super::daemon_options::DAEMON_OPTIONS.to_vec()),
        value in word(),
        more in words(),
    ) {
        let first = format!("{option}={value}");
        let mut args = vec![name.as_str(), first.as_str()];
        args.extend(more.iter().map(String::as_str));
        let _ = DaemonProcessSpec::parse(&args);
    }

    #[test]
    fn daemon_process_numbers_round_trip(
        name in "[a-zA-Z][a-zA-Z0-9_-]{0,15}",
        processes in 1u32..=64,
        threads in 1u32..=512,
        maximum_requests in 0u64..=1_000_000,
        connect_timeout in 0u64..=3600,
        display in "[a-zA-Z0-9_-]{1,12}",
    ) {
        let words = [
            name.clone(),
            format!("processes={processes}"),
            format!("threads={threads}"),
            format!("maximum-requests={maximum_requests}"),
            format!("connect-timeout={connect_timeout}"),
            format!("display-name={display}"),
        ];
        let args: Vec<&str> = words.iter().map(String::as_str).collect();
        let spec = DaemonProcessSpec::parse(&args).unwrap();
        prop_assert_eq!(spec.name, name);
        prop_assert_eq!(spec.processes, processes);
        prop_assert_eq!(spec.threads, threads);
        prop_assert_eq!(spec.maximum_requests, maximum_requests);
        prop_assert_eq!(spec.connect_timeout, Duration::from_secs(connect_timeout));
        prop_assert_eq!(spec.display_name, Some(display));
    }

    #[test]
    fn flags_take_on_or_off_only(value in word(), on in "(?i:on)", off in "(?i:off)") {
        let flags: Vec<Directive> =
            Directive::all().filter(|d| d.usage().starts_with("On|Off:")).collect();
        prop_assert!(flags.len() >= 10, "{} flag directives", flags.len());
        for d in flags {
            prop_assert!(apply(d, std::slice::from_ref(&on)).is_ok(), "{} {}", d.name(), on);
            prop_assert!(apply(d, std::slice::from_ref(&off)).is_ok(), "{} {}", d.name(), off);
            let is_flag = value.eq_ignore_ascii_case("on") || value.eq_ignore_ascii_case("off");
            prop_assert_eq!(apply(d, std::slice::from_ref(&value)).is_ok(), is_flag, "{} {}", d.name(), value);
            prop_assert!(apply(d, &[on.clone(), off.clone()]).is_err());
        }
    }

    #[test]
    fn group_specs_never_panic(spec in word()) {
        if let Ok(g) = ApplicationGroup::parse(&spec) {
            prop_assert_eq!(ApplicationGroup::parse(&g.to_string()).unwrap(), g);
        }
        if let Ok(g) = ProcessGroup::parse(&spec) {
            prop_assert_eq!(ProcessGroup::parse(&g.to_string()).unwrap(), g);
        }
    }

    #[test]
    fn groups_round_trip(name in plain_name(), env in "[A-Za-z_][A-Za-z0-9_.-]{0,15}") {
        for g in [
            ApplicationGroup::Named(name.clone()),
            ApplicationGroup::Env(env.clone()),
            ApplicationGroup::Global,
            ApplicationGroup::Server,
            ApplicationGroup::Resource,
            ApplicationGroup::Host,
        ] {
            prop_assert_eq!(ApplicationGroup::parse(&g.to_string()).unwrap(), g.clone());
            let mut dir = DirConfig::default();
            dir.apply(Directive::ApplicationGroup, &[&g.to_string()]).unwrap();
            prop_assert_eq!(dir.application_group, Some(g));
        }
        for g in [ProcessGroup::Named(name), ProcessGroup::Env(env), ProcessGroup::Global] {
            prop_assert_eq!(ProcessGroup::parse(&g.to_string()).unwrap(), g.clone());
            let mut dir = DirConfig::default();
            dir.apply(Directive::ProcessGroup, &[&g.to_string()]).unwrap();
            prop_assert_eq!(dir.process_group, Some(g));
        }
    }

    #[test]
    fn paths_and_names_are_stored_as_written(
        path in "/[A-Za-z0-9/._-]{0,30}",
        callable in "[A-Za-z_][A-Za-z0-9_]{0,15}",
    ) {
        let mut server = ServerConfig::default();
        server.apply(Directive::PythonHome, &[&path]).unwrap();
        server.apply(Directive::SocketPrefix, &[&path]).unwrap();
        prop_assert_eq!(server.python_home.as_deref(), Some(path.as_str()));
        prop_assert_eq!(server.socket_prefix.as_deref(), Some(path.as_str()));
        let mut dir = DirConfig::default();
        dir.apply(Directive::CallableObject, &[&callable]).unwrap();
        prop_assert_eq!(dir.callable_object, Some(callable));
    }

    #[test]
    fn raw_lines_never_panic(line in any::<String>(), tag in any::<String>()) {
        let _ = split_raw_args(&line);
        if let Ok(mut block) = InterpreterOptionsBlock::open(&tag) {
            let _ = block.add_line(&line);
            let _ = block.notice();
        }
        let _ = InterpreterOptionsBlock::is_end(&line);
    }

    #[test]
    fn raw_words_round_trip(
        plain in vec("[^\\s\"'\\\\]{1,12}", 0..6),
        quoted in vec("[^\"\\\\]{0,12}", 0..3),
        gap in "[ \t]{1,3}",
    ) {
        let line = plain.join(&gap);
        prop_assert_eq!(split_raw_args(&line), plain.clone());
        // Quoted words may hold white space; the quotes go.
        let mut line = line;
        for q in &quoted {
            line.push_str(&format!("{gap}\"{q}\""));
        }
        let mut expected = plain;
        expected.extend(quoted);
        prop_assert_eq!(split_raw_args(&line), expected);
    }
}
