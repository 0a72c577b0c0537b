//! The `Server` header names the module and Python as version components,
//! as mod_wsgi's `mod_wsgi/X.Y.Z Python/X.Y`, and only where `ServerTokens`
//! lets Apache show components (`Full`, Apache's default).

use crate::common::apps::HELLO;
use crate::common::{module, Module, Mpm, Server};

fn server_header(tokens: Option<&str>) -> String {
    let mut s = Server::new(Mpm::Event).file("hello.wsgi", HELLO);
    if let Some(tokens) = tokens {
        s = s.conf(&format!("ServerTokens {tokens}\n"));
    }
    let s = s.conf("WSGIScriptAlias /hello {root}/hello.wsgi\n").start();
    let r = s.get("/hello");
    assert_eq!(r.status, 200, "{}", s.error_log());
    r.header("Server").unwrap_or_default().to_owned()
}

#[test]
fn server_header_follows_server_tokens() {
    let ours = match module() {
        Module::Ours => format!("mod_wsgi_rs/{}", env!("CARGO_PKG_VERSION")),
        Module::ModWsgi => "mod_wsgi/".to_owned(),
    };
    let full = server_header(None);
    assert!(full.starts_with("Apache/"), "{full}");
    assert_eq!(full.matches(&ours).count(), 1, "{full}");
    assert!(full.contains(" Python/3."), "{full}");
    for tokens in ["Prod", "OS"] {
        let header = server_header(Some(tokens));
        assert!(header.starts_with("Apache"), "{tokens}: {header}");
        assert!(
            !header.contains("wsgi") && !header.contains("Python"),
            "ServerTokens {tokens}: {header}"
        );
    }
}
