//! Trusted proxy headers (`WSGITrustedProxyHeaders`, `WSGITrustedProxies`):
//! which forwarding headers a front-end proxy may set, which peers count as
//! such proxies, and the rewrite of the request's CGI variables that follows
//! from them, with mod_wsgi 6's semantics (the CVE-2022-2255 fix included).
//!
//! Each supported header serves one purpose (client address, scheme, host,
//! server name, port, mount point). Listing one header of a purpose makes
//! the whole purpose guarded: from a trusted peer the listed header rewrites
//! the variable it stands for and every other header of that purpose is
//! removed; from any other peer all headers of that purpose are removed, so
//! an application that reads them anyway cannot be fooled. Headers of
//! purposes nobody listed pass untouched.
//!
//! This is pure logic over the variables; the httpd layer reads them from
//! and writes the edits back to `r->subprocess_env`, which both embedded and
//! daemon mode are served from. A request that Apache's mod_proxy_uwsgi
//! sends to a daemon group is rewritten in the daemon instead, over the
//! variables mod_proxy_uwsgi made, by the same rules: the location's
//! rules travel with it as one line ([`encode_rules`],
//! [`rewrite_by_encoded_rules`]).

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// What a forwarding header tells the server behind the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// The client's address.
    ClientAddress,
    /// The host the client asked for.
    Host,
    /// The server's name.
    ServerName,
    /// The server's port.
    Port,
    /// Where the application is mounted.
    ScriptName,
    /// `http` or `https`.
    Scheme,
}

/// How a header's value rewrites the variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rewrite {
    /// `X-Forwarded-For`: a list, walked right to left past trusted proxies.
    ForwardedFor,
    /// The value replaces this variable as it is.
    Verbatim(&'static str),
    /// `http` or `https`.
    SchemeWord,
    /// `On`/`Off`, `true`/`false`, `1`/`0`.
    SchemeFlag,
}

/// One forwarding header mod_wsgi knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyHeader(usize);

/// What we know of one forwarding header.
struct HeaderSpec {
    /// The header as HTTP spells it.
    header: &'static str,
    /// The CGI variable Apache puts it in.
    var: &'static str,
    /// What it tells.
    purpose: Purpose,
    /// How it rewrites the variables.
    rewrite: Rewrite,
}

/// One row of the header table.
const fn spec(
    header: &'static str,
    var: &'static str,
    purpose: Purpose,
    rewrite: Rewrite,
) -> HeaderSpec {
    HeaderSpec {
        header,
        var,
        purpose,
        rewrite,
    }
}

/// mod_wsgi 6's set of forwarding headers, by purpose.
const HEADERS: [HeaderSpec; 15] = [
    spec(
        "X-Forwarded-For",
        "HTTP_X_FORWARDED_FOR",
        Purpose::ClientAddress,
        Rewrite::ForwardedFor,
    ),
    spec(
        "X-Client-IP",
        "HTTP_X_CLIENT_IP",
        Purpose::ClientAddress,
        Rewrite::Verbatim("REMOTE_ADDR"),
    ),
    spec(
        "X-Real-IP",
        "HTTP_X_REAL_IP",
        Purpose::ClientAddress,
        Rewrite::Verbatim("REMOTE_ADDR"),
    ),
    spec(
        "X-Forwarded-Host",
        "HTTP_X_FORWARDED_HOST",
        Purpose::Host,
        Rewrite::Verbatim("HTTP_HOST"),
    ),
    spec(
        "X-Host",
        "HTTP_X_HOST",
        Purpose::Host,
        Rewrite::Verbatim("HTTP_HOST"),
    ),
    spec(
        "X-Forwarded-Server",
        "HTTP_X_FORWARDED_SERVER",
        Purpose::ServerName,
        Rewrite::Verbatim("SERVER_NAME"),
    ),
    spec(
        "X-Forwarded-Port",
        "HTTP_X_FORWARDED_PORT",
        Purpose::Port,
        Rewrite::Verbatim("SERVER_PORT"),
    ),
    spec(
        "X-Script-Name",
        "HTTP_X_SCRIPT_NAME",
        Purpose::ScriptName,
        Rewrite::Verbatim("SCRIPT_NAME"),
    ),
    spec(
        "X-Forwarded-Script-Name",
        "HTTP_X_FORWARDED_SCRIPT_NAME",
        Purpose::ScriptName,
        Rewrite::Verbatim("SCRIPT_NAME"),
    ),
    spec(
        "X-Forwarded-Proto",
        "HTTP_X_FORWARDED_PROTO",
        Purpose::Scheme,
        Rewrite::SchemeWord,
    ),
    spec(
        "X-Forwarded-Scheme",
        "HTTP_X_FORWARDED_SCHEME",
        Purpose::Scheme,
        Rewrite::SchemeWord,
    ),
    spec(
        "X-Scheme",
        "HTTP_X_SCHEME",
        Purpose::Scheme,
        Rewrite::SchemeWord,
    ),
    spec(
        "X-Forwarded-HTTPS",
        "HTTP_X_FORWARDED_HTTPS",
        Purpose::Scheme,
        Rewrite::SchemeFlag,
    ),
    spec(
        "X-Forwarded-SSL",
        "HTTP_X_FORWARDED_SSL",
        Purpose::Scheme,
        Rewrite::SchemeFlag,
    ),
    spec(
        "X-HTTPS",
        "HTTP_X_HTTPS",
        Purpose::Scheme,
        Rewrite::SchemeFlag,
    ),
];

impl ProxyHeader {
    /// Looks a header up by its HTTP name, ignoring case as HTTP does.
    /// mod_wsgi also matches the CGI spelling (`HTTP_X_FORWARDED_FOR`), so
    /// that is accepted too.
    pub fn parse(name: &str) -> Result<ProxyHeader, String> {
        HEADERS
            .iter()
            .position(|h| h.header.eq_ignore_ascii_case(name) || h.var.eq_ignore_ascii_case(name))
            .map(ProxyHeader)
            .ok_or_else(|| {
                let known: Vec<&str> = HEADERS.iter().map(|h| h.header).collect();
                format!(
                    "not a forwarding header mod_wsgi knows (expected one of {})",
                    known.join(", ")
                )
            })
    }

    /// The header's row.
    fn spec(self) -> &'static HeaderSpec {
        &HEADERS[self.0]
    }

    /// The header as HTTP spells it.
    pub fn name(self) -> &'static str {
        self.spec().header
    }

    /// The CGI variable Apache puts the header in.
    pub fn var(self) -> &'static str {
        self.spec().var
    }

    /// What the header tells.
    pub fn purpose(self) -> Purpose {
        self.spec().purpose
    }
}

/// The peers whose forwarding headers are believed: addresses and networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Adds one `WSGITrustedProxies` word: an address (`10.0.0.5`, `::1`),
    /// a CIDR network (`10.0.0.0/8`, `fd00::/8`), an IPv4 network with a
    /// dotted mask (`10.0.0.0/255.0.0.0`) or, as APR reads it, a partial
    /// IPv4 address naming a whole network (`10.1` is `10.1.0.0/16`).
    pub fn push(&mut self, word: &str) -> Result<(), String> {
        self.0.push(parse_network(word)?);
        Ok(())
    }

    /// Whether no proxy is trusted.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `addr` (an address as Apache prints it) is one of the
    /// trusted proxies. An IPv4 peer seen through an IPv6 socket
    /// (`::ffff:10.0.0.5`) matches the IPv4 entries too.
    pub fn contains(&self, addr: &str) -> bool {
        let Ok(ip) = addr.trim().parse::<IpAddr>() else {
            return false;
        };
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.0
            .iter()
            .any(|net| net.contains(&ip) || mapped.is_some_and(|m| net.contains(&m)))
    }
}

/// One `WSGITrustedProxies` word as a network.
fn parse_network(word: &str) -> Result<IpNet, String> {
    let bad = |why: &str| format!("not an IP address or network: {why}");
    let (addr, mask) = match word.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (word, None),
    };
    if addr.is_empty() {
        return Err(bad("no address"));
    }
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return match (ip, mask) {
            (ip, None) => Ok(IpNet::from(ip)),
            (IpAddr::V4(v4), Some(m)) if m.contains('.') => {
                let netmask = m.parse().map_err(|_| bad("malformed netmask"))?;
                let len = ipnet::ipv4_mask_to_prefix(netmask)
                    .map_err(|_| bad("the netmask is not contiguous"))?;
                Ok(IpNet::V4(Ipv4Net::new(v4, len).expect("checked length")))
            }
            (IpAddr::V4(v4), Some(m)) => {
                let len = prefix_len(m, 32).ok_or_else(|| bad("prefix length must be 0-32"))?;
                Ok(IpNet::V4(Ipv4Net::new(v4, len).expect("checked length")))
            }
            (IpAddr::V6(v6), Some(m)) => {
                let len = prefix_len(m, 128).ok_or_else(|| bad("prefix length must be 0-128"))?;
                Ok(IpNet::V6(Ipv6Net::new(v6, len).expect("checked length")))
            }
        };
    }
    // APR's partial form: one to three leading octets of an IPv4 address.
    let octets: Vec<&str> = addr.split('.').collect();
    if mask.is_none() && octets.len() < 4 {
        let mut bytes = [0u8; 4];
        for (slot, octet) in bytes.iter_mut().zip(&octets) {
            let plain = !octet.is_empty() && octet.bytes().all(|b| b.is_ascii_digit());
            *slot = plain
                .then(|| octet.parse().ok())
                .flatten()
                .ok_or_else(|| bad("malformed address"))?;
        }
        let len = 8 * octets.len() as u8;
        return Ok(IpNet::V4(
            Ipv4Net::new(bytes.into(), len).expect("at most 24 bits"),
        ));
    }
    Err(bad("malformed address"))
}

/// A prefix length of at most `max` bits.
fn prefix_len(text: &str, max: u8) -> Option<u8> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u8>().ok().filter(|len| *len <= max)
}

/// One change to the request's CGI variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvEdit {
    /// Sets a variable.
    Set(&'static str, Vec<u8>),
    /// Removes a variable.
    Unset(&'static str),
}

/// The edits that the listed `headers` call for, given the request's
/// variables (`env`) as Apache computed them. `proxies` is `None` when no
/// `WSGITrustedProxies` applies: then, as in mod_wsgi, every peer is
/// trusted; otherwise only a peer (`REMOTE_ADDR`) among them is.
pub fn rewrite_proxy_vars<'a>(
    headers: &[ProxyHeader],
    proxies: Option<&TrustedProxies>,
    env: impl Fn(&str) -> Option<&'a [u8]>,
) -> Vec<EnvEdit> {
    let mut edits = Vec::new();
    if headers.is_empty() {
        return edits;
    }
    let trusted = match proxies {
        None => true,
        Some(p) => env("REMOTE_ADDR")
            .and_then(|a| std::str::from_utf8(a).ok())
            .is_some_and(|a| p.contains(a)),
    };
    // Per purpose: guarded at all, and which header (if any) was believed.
    let mut guarded: Vec<Purpose> = Vec::new();
    let mut kept: Vec<(Purpose, ProxyHeader)> = Vec::new();
    for &header in headers {
        let purpose = header.purpose();
        if !guarded.contains(&purpose) {
            guarded.push(purpose);
        }
        if !trusted {
            continue;
        }
        let Some(value) = env(header.var()) else {
            continue;
        };
        apply(header, value, proxies, &mut edits);
        kept.retain(|(p, _)| *p != purpose);
        kept.push((purpose, header));
    }
    for purpose in guarded {
        let winner = kept.iter().find(|(p, _)| *p == purpose).map(|(_, h)| *h);
        for (i, spec) in HEADERS.iter().enumerate() {
            if spec.purpose == purpose && winner != Some(ProxyHeader(i)) {
                edits.push(EnvEdit::Unset(spec.var));
            }
        }
    }
    edits
}

/// A location's rules as one line, for [`rewrite_by_encoded_rules`]: the
/// listed headers, comma-separated, then, when `WSGITrustedProxies`
/// applies, `;` and the trusted networks, comma-separated
/// (`X-Forwarded-For,X-Forwarded-Proto;127.0.0.0/8,10.0.0.1/32`).
pub fn encode_rules(headers: &[ProxyHeader], proxies: Option<&TrustedProxies>) -> String {
    let mut line = String::new();
    for (i, header) in headers.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(header.name());
    }
    if let Some(proxies) = proxies {
        line.push(';');
        for (i, net) in proxies.0.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&net.to_string());
        }
    }
    line
}

/// The edits that rules encoded by [`encode_rules`] call for, given the
/// request's variables: what [`rewrite_proxy_vars`] decides with the
/// rules as they were configured. An error names what did not parse.
pub fn rewrite_by_encoded_rules<'a>(
    line: &[u8],
    env: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<Vec<EnvEdit>, String> {
    let line = std::str::from_utf8(line).map_err(|_| "rules are not UTF-8".to_owned())?;
    let (names, networks) = match line.split_once(';') {
        Some((names, networks)) => (names, Some(networks)),
        None => (line, None),
    };
    let headers = names
        .split(',')
        .filter(|name| !name.is_empty())
        .map(ProxyHeader::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let proxies = match networks {
        None => None,
        Some(networks) => {
            let mut proxies = TrustedProxies::default();
            for word in networks.split(',').filter(|word| !word.is_empty()) {
                proxies.push(word)?;
            }
            Some(proxies)
        }
    };
    Ok(rewrite_proxy_vars(&headers, proxies.as_ref(), env))
}

/// Applies one header's value to the variables.
fn apply(
    header: ProxyHeader,
    value: &[u8],
    proxies: Option<&TrustedProxies>,
    edits: &mut Vec<EnvEdit>,
) {
    match header.spec().rewrite {
        Rewrite::ForwardedFor => forwarded_for(value, proxies, edits),
        Rewrite::Verbatim(var) => edits.push(EnvEdit::Set(var, value.to_vec())),
        Rewrite::SchemeWord => {
            if value.eq_ignore_ascii_case(b"https") {
                edits.push(EnvEdit::Set("HTTPS", b"1".to_vec()));
            } else if value.eq_ignore_ascii_case(b"http") {
                edits.push(EnvEdit::Unset("HTTPS"));
            }
        }
        Rewrite::SchemeFlag => {
            let is = |words: [&[u8]; 3]| words.iter().any(|w| value.eq_ignore_ascii_case(w));
            if is([b"on", b"true", b"1"]) {
                edits.push(EnvEdit::Set("HTTPS", b"1".to_vec()));
            } else if is([b"off", b"false", b"0"]) {
                edits.push(EnvEdit::Unset("HTTPS"));
            }
        }
    }
}

/// `X-Forwarded-For: client, proxy1, proxy2`. With trusted proxies the
/// client is the entry just left of the trusted ones at the end of the list
/// (anything further left was written by hosts nobody vouches for), and
/// the header is cut down to start there. Without a proxy list the first
/// entry is taken, as mod_wsgi does.
fn forwarded_for(value: &[u8], proxies: Option<&TrustedProxies>, edits: &mut Vec<EnvEdit>) {
    let items: Vec<&[u8]> = value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty())
        .collect();
    let Some(&last) = items.last() else {
        return;
    };
    let Some(proxies) = proxies else {
        edits.push(EnvEdit::Set("REMOTE_ADDR", items[0].to_vec()));
        return;
    };
    let trusted_from = items
        .iter()
        .rposition(|item| {
            let addr = std::str::from_utf8(item).ok();
            let valid = addr.is_some_and(|a| a.parse::<IpAddr>().is_ok());
            !(valid && addr.is_some_and(|a| proxies.contains(a)))
        })
        .map_or(0, |untrusted| untrusted + 1);
    if trusted_from == items.len() {
        // The last hop is not a trusted proxy: it is the client.
        edits.push(EnvEdit::Set("REMOTE_ADDR", last.to_vec()));
        edits.push(EnvEdit::Set("HTTP_X_FORWARDED_FOR", last.to_vec()));
        return;
    }
    let client = trusted_from.saturating_sub(1);
    edits.push(EnvEdit::Set("REMOTE_ADDR", items[client].to_vec()));
    edits.push(EnvEdit::Set(
        "HTTP_X_FORWARDED_FOR",
        items[client..].join(&b", "[..]),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn proxies(words: &[&str]) -> TrustedProxies {
        let mut p = TrustedProxies::default();
        for w in words {
            p.push(w).unwrap();
        }
        p
    }

    fn headers(names: &[&str]) -> Vec<ProxyHeader> {
        names
            .iter()
            .map(|n| ProxyHeader::parse(n).unwrap())
            .collect()
    }

    /// Applies the edits to a copy of `vars`, as the httpd layer does.
    fn run(
        names: &[&str],
        trusted: Option<&[&str]>,
        vars: &[(&str, &str)],
    ) -> HashMap<String, String> {
        let env: HashMap<String, Vec<u8>> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        let p = trusted.map(proxies);
        let edits = rewrite_proxy_vars(&headers(names), p.as_ref(), |k| {
            env.get(k).map(Vec::as_slice)
        });
        let mut out: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for edit in edits {
            match edit {
                EnvEdit::Set(k, v) => {
                    out.insert(k.to_owned(), String::from_utf8(v).unwrap());
                }
                EnvEdit::Unset(k) => {
                    out.remove(k);
                }
            }
        }
        out
    }

    #[test]
    fn header_names_parse_in_either_spelling() {
        let h = ProxyHeader::parse("x-forwarded-for").unwrap();
        assert_eq!(h.name(), "X-Forwarded-For");
        assert_eq!(h.var(), "HTTP_X_FORWARDED_FOR");
        assert_eq!(
            ProxyHeader::parse("HTTP_X_REAL_IP").unwrap().name(),
            "X-Real-IP"
        );
        assert_eq!(
            ProxyHeader::parse("X-Forwarded-Proto").unwrap().purpose(),
            Purpose::Scheme
        );
        let err = ProxyHeader::parse("X-Forwarded-Fro").unwrap_err();
        assert!(
            err.starts_with("not a forwarding header mod_wsgi knows"),
            "{err}"
        );
        assert!(ProxyHeader::parse("X_Forwarded_For").is_err());
        assert!(ProxyHeader::parse("").is_err());
    }

    #[test]
    fn networks_parse_in_apr_forms() {
        let p = proxies(&[
            "10.0.0.5",
            "192.168.0.0/16",
            "172.16.0.0/255.240.0.0",
            "100.64",
            "fd00::/8",
            "::1",
        ]);
        for inside in [
            "10.0.0.5",
            "192.168.44.1",
            "172.31.255.255",
            "100.64.9.9",
            "fd12::1",
            "::1",
            "::ffff:10.0.0.5",
            " 10.0.0.5 ",
        ] {
            assert!(p.contains(inside), "{inside}");
        }
        for outside in [
            "10.0.0.6",
            "192.169.0.1",
            "172.32.0.1",
            "100.65.0.1",
            "fe80::1",
            "::2",
            "not-an-ip",
            "",
        ] {
            assert!(!p.contains(outside), "{outside}");
        }
    }

    #[test]
    fn malformed_networks_are_refused() {
        let mut p = TrustedProxies::default();
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.0/255.0.255.0",
            "1.2.3.4.5",
            "10.0.0.256",
            "300",
            "localhost",
            "/8",
            "10..1",
            "",
            "fe80::/-1",
        ] {
            let err = p.push(bad).unwrap_err();
            assert!(
                err.starts_with("not an IP address or network"),
                "{bad}: {err}"
            );
        }
        assert!(p.is_empty());
    }

    #[test]
    fn trusted_peer_forwarded_for_walks_past_trusted_proxies() {
        let env = run(
            &["X-Forwarded-For"],
            Some(&["10.0.0.0/8"]),
            &[
                ("REMOTE_ADDR", "10.0.0.1"),
                (
                    "HTTP_X_FORWARDED_FOR",
                    "6.6.6.6, 203.0.113.7, 10.1.1.1,10.2.2.2",
                ),
            ],
        );
        assert_eq!(env["REMOTE_ADDR"], "203.0.113.7");
        assert_eq!(
            env["HTTP_X_FORWARDED_FOR"],
            "203.0.113.7, 10.1.1.1, 10.2.2.2"
        );
    }

    #[test]
    fn forwarded_for_whose_last_hop_is_untrusted_takes_that_hop() {
        let env = run(
            &["X-Forwarded-For"],
            Some(&["10.0.0.1"]),
            &[
                ("REMOTE_ADDR", "10.0.0.1"),
                ("HTTP_X_FORWARDED_FOR", "1.1.1.1, 198.51.100.2"),
            ],
        );
        assert_eq!(env["REMOTE_ADDR"], "198.51.100.2");
        assert_eq!(env["HTTP_X_FORWARDED_FOR"], "198.51.100.2");
    }

    #[test]
    fn forwarded_for_stops_at_a_malformed_entry_and_skips_empty_ones() {
        let env = run(
            &["X-Forwarded-For"],
            Some(&["10.0.0.0/8"]),
            &[
                ("REMOTE_ADDR", "10.0.0.1"),
                ("HTTP_X_FORWARDED_FOR", "junk, , 10.9.9.9 ,"),
            ],
        );
        assert_eq!(env["REMOTE_ADDR"], "junk");
        assert_eq!(env["HTTP_X_FORWARDED_FOR"], "junk, 10.9.9.9");
        // Every entry trusted: the first one is all there is.
        let env = run(
            &["X-Forwarded-For"],
            Some(&["10.0.0.0/8"]),
            &[
                ("REMOTE_ADDR", "10.0.0.1"),
                ("HTTP_X_FORWARDED_FOR", "10.3.3.3, 10.4.4.4"),
            ],
        );
        assert_eq!(env["REMOTE_ADDR"], "10.3.3.3");
        // Only separators: nothing to take.
        let env = run(
            &["X-Forwarded-For"],
            Some(&["10.0.0.0/8"]),
            &[("REMOTE_ADDR", "10.0.0.1"), ("HTTP_X_FORWARDED_FOR", " , ")],
        );
        assert_eq!(env["REMOTE_ADDR"], "10.0.0.1");
    }

    #[test]
    fn without_a_proxy_list_every_peer_is_trusted_and_the_first_entry_wins() {
        let env = run(
            &["X-Forwarded-For"],
            None,
            &[
                ("REMOTE_ADDR", "127.0.0.1"),
                ("HTTP_X_FORWARDED_FOR", " , 192.0.2.1, 10.0.0.1"),
            ],
        );
        assert_eq!(env["REMOTE_ADDR"], "192.0.2.1");
        assert_eq!(env["HTTP_X_FORWARDED_FOR"], " , 192.0.2.1, 10.0.0.1");
    }

    #[test]
    fn untrusted_peer_loses_every_header_of_the_guarded_purposes() {
        let env = run(
            &["X-Forwarded-For", "X-Forwarded-Proto"],
            Some(&["10.0.0.1"]),
            &[
                ("REMOTE_ADDR", "192.0.2.50"),
                ("HTTP_X_FORWARDED_FOR", "1.2.3.4"),
                ("HTTP_X_CLIENT_IP", "1.2.3.4"),
                ("HTTP_X_REAL_IP", "1.2.3.4"),
                ("HTTP_X_FORWARDED_PROTO", "https"),
                ("HTTP_X_FORWARDED_SSL", "on"),
                ("HTTP_X_FORWARDED_HOST", "evil.example"),
            ],
        );
        assert_eq!(env["REMOTE_ADDR"], "192.0.2.50");
        for gone in [
            "HTTP_X_FORWARDED_FOR",
            "HTTP_X_CLIENT_IP",
            "HTTP_X_REAL_IP",
            "HTTP_X_FORWARDED_PROTO",
            "HTTP_X_FORWARDED_SSL",
            "HTTPS",
        ] {
            assert!(!env.contains_key(gone), "{gone}");
        }
        // Not a guarded purpose: passes untouched.
        assert_eq!(env["HTTP_X_FORWARDED_HOST"], "evil.example");
    }

    #[test]
    fn a_peer_without_an_address_is_untrusted() {
        let env = run(
            &["X-Real-IP"],
            Some(&["10.0.0.1"]),
            &[("HTTP_X_REAL_IP", "1.2.3.4")],
        );
        assert!(!env.contains_key("REMOTE_ADDR"));
        assert!(!env.contains_key("HTTP_X_REAL_IP"));
    }

    #[test]
    fn trusted_peer_keeps_only_the_listed_header_of_a_purpose() {
        let env = run(
            &["X-Real-IP"],
            Some(&["127.0.0.1"]),
            &[
                ("REMOTE_ADDR", "127.0.0.1"),
                ("HTTP_X_REAL_IP", "203.0.113.9"),
                ("HTTP_X_FORWARDED_FOR", "6.6.6.6"),
                ("HTTP_X_CLIENT_IP", "6.6.6.6"),
            ],
        );
        assert_eq!(env["REMOTE_ADDR"], "203.0.113.9");
        assert_eq!(env["HTTP_X_REAL_IP"], "203.0.113.9");
        assert!(!env.contains_key("HTTP_X_FORWARDED_FOR"));
        assert!(!env.contains_key("HTTP_X_CLIENT_IP"));
    }

    #[test]
    fn listed_header_absent_from_a_trusted_peer_still_guards_its_purpose() {
        let env = run(
            &["X-Forwarded-Proto"],
            None,
            &[
                ("REMOTE_ADDR", "127.0.0.1"),
                ("HTTPS", "on"),
                ("HTTP_X_FORWARDED_SCHEME", "http"),
            ],
        );
        assert_eq!(env["HTTPS"], "on");
        assert!(!env.contains_key("HTTP_X_FORWARDED_SCHEME"));
    }

    #[test]
    fn scheme_headers_set_or_clear_https() {
        let trusted = Some(&["127.0.0.1"][..]);
        let base = |var: &'static str, value: &'static str| {
            vec![("REMOTE_ADDR", "127.0.0.1"), ("HTTPS", "on"), (var, value)]
        };
        let https = |names: &[&str], var, value| {
            run(names, trusted, &base(var, value)).get("HTTPS").cloned()
        };
        assert_eq!(
            https(&["X-Forwarded-Proto"], "HTTP_X_FORWARDED_PROTO", "HTTPS"),
            Some("1".into())
        );
        assert_eq!(
            https(&["X-Forwarded-Proto"], "HTTP_X_FORWARDED_PROTO", "http"),
            None
        );
        // A value that is neither leaves Apache's own view alone.
        assert_eq!(
            https(&["X-Scheme"], "HTTP_X_SCHEME", "gopher"),
            Some("on".into())
        );
        assert_eq!(
            https(&["X-Forwarded-HTTPS"], "HTTP_X_FORWARDED_HTTPS", "Off"),
            None
        );
        assert_eq!(
            https(&["X-HTTPS"], "HTTP_X_HTTPS", "true"),
            Some("1".into())
        );
        assert_eq!(
            https(&["X-Forwarded-SSL"], "HTTP_X_FORWARDED_SSL", "maybe"),
            Some("on".into())
        );
    }

    #[test]
    fn host_server_port_and_script_name_are_replaced() {
        let env = run(
            &[
                "X-Forwarded-Host",
                "X-Forwarded-Server",
                "X-Forwarded-Port",
                "X-Script-Name",
            ],
            Some(&["127.0.0.1"]),
            &[
                ("REMOTE_ADDR", "127.0.0.1"),
                ("HTTP_HOST", "backend:8080"),
                ("SERVER_NAME", "backend"),
                ("SERVER_PORT", "8080"),
                ("SCRIPT_NAME", "/app"),
                ("HTTP_X_FORWARDED_HOST", "www.example.org"),
                ("HTTP_X_HOST", "other.example"),
                ("HTTP_X_FORWARDED_SERVER", "front"),
                ("HTTP_X_FORWARDED_PORT", "443"),
                ("HTTP_X_SCRIPT_NAME", "/public"),
                ("HTTP_X_FORWARDED_SCRIPT_NAME", "/nope"),
            ],
        );
        assert_eq!(env["HTTP_HOST"], "www.example.org");
        assert_eq!(env["SERVER_NAME"], "front");
        assert_eq!(env["SERVER_PORT"], "443");
        assert_eq!(env["SCRIPT_NAME"], "/public");
        assert!(!env.contains_key("HTTP_X_HOST"));
        assert!(!env.contains_key("HTTP_X_FORWARDED_SCRIPT_NAME"));
        assert_eq!(env["HTTP_X_FORWARDED_HOST"], "www.example.org");
    }

    #[test]
    fn encoded_rules_decide_as_the_configured_ones() {
        let vars: HashMap<&str, &[u8]> = [
            ("REMOTE_ADDR", &b"10.0.0.1"[..]),
            ("HTTP_X_FORWARDED_FOR", b"6.6.6.6, 203.0.113.7, 10.1.1.1"),
            ("HTTP_X_REAL_IP", b"6.6.6.6"),
            ("HTTP_X_FORWARDED_PROTO", b"https"),
            ("HTTP_X_FORWARDED_HOST", b"www.example.org"),
            ("HTTPS", b"on"),
        ]
        .into_iter()
        .collect();
        let env = |k: &str| vars.get(k).copied();
        let cases: [(&[&str], Option<&[&str]>); 5] = [
            (&["X-Forwarded-For", "X-Forwarded-Proto"], None),
            (&["X-Forwarded-For"], Some(&["10.0.0.0/8", "::1", "100.64"])),
            (&["X-Real-IP", "X-Forwarded-Host"], Some(&["10.0.0.1"])),
            (
                &["HTTP_X_FORWARDED_PROTO"],
                Some(&["192.0.2.0/255.255.255.0"]),
            ),
            (&["X-Forwarded-For"], Some(&[])),
        ];
        for (names, trusted) in cases {
            let h = headers(names);
            let p = trusted.map(proxies);
            let line = encode_rules(&h, p.as_ref());
            assert_eq!(
                rewrite_by_encoded_rules(line.as_bytes(), env),
                Ok(rewrite_proxy_vars(&h, p.as_ref(), env)),
                "{line}"
            );
        }
        assert_eq!(
            encode_rules(
                &headers(&["x-forwarded-for", "X-Forwarded-Proto"]),
                Some(&proxies(&["127.0.0.0/8", "::1"]))
            ),
            "X-Forwarded-For,X-Forwarded-Proto;127.0.0.0/8,::1/128"
        );
        for bad in [&b"X-Forwarded-Fro"[..], b"X-Real-IP;10.0.0.0/33", b"\xff"] {
            assert!(rewrite_by_encoded_rules(bad, env).is_err());
        }
    }

    #[test]
    fn nothing_listed_means_no_edits() {
        assert!(rewrite_proxy_vars(&[], None, |_| Some(&b"x"[..])).is_empty());
    }
}
