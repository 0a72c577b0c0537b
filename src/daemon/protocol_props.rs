//! Property tests of the uwsgi codec and the secret check
//! ([`super::protocol`]): what one side encodes the other decodes the same,
//! no bytes a peer sends make the decoder panic, and no var an untrusted
//! peer sends reaches the daemon as one of ours.

use std::io::Cursor;

use proptest::collection::vec;
use proptest::prelude::*;

use super::protocol::{
    admit, encode_request, encode_response_head, frame_header, is_private, parse_request_head,
    parse_response_head, parse_vars, read_request, same_secret, Vars, VAR_SECRET,
};

/// Enough cases to find edge cases, few enough for `cargo test --lib`.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// A var name: arbitrary bytes, or one that looks like ours (prefixed as
/// httpd copies them on internal redirects, too).
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..24),
        "(REDIRECT_|HTTP_)?WSGI_RS_[A-Z_]{0,12}".prop_map(String::into_bytes),
        "[A-Z_]{1,16}".prop_map(String::into_bytes),
    ]
}

/// A request's vars.
fn vars() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    vec((key(), vec(any::<u8>(), 0..64)), 0..24)
}

/// Encodes `pairs` and decodes them again.
fn encoded(pairs: &[(Vec<u8>, Vec<u8>)]) -> (Vec<u8>, Vars) {
    let packet = encode_request(pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))).unwrap();
    let (vars, used) = parse_request_head(&packet).unwrap().unwrap();
    assert_eq!(used, packet.len());
    (packet, vars)
}

/// Owned copies of decoded vars, for comparing.
fn owned(vars: &Vars) -> Vec<(Vec<u8>, Vec<u8>)> {
    vars.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

/// A header field value as the daemon may send it: latin-1 without control
/// characters, nothing to trim at either end.
fn header_value() -> impl Strategy<Value = String> {
    "[ -~\u{a0}-\u{ff}]{0,40}".prop_map(|s| s.trim_matches([' ', '\t']).to_owned())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn request_vars_round_trip(pairs in vars(), body in vec(any::<u8>(), 0..32)) {
        let (mut packet, vars) = encoded(&pairs);
        prop_assert_eq!(owned(&vars), pairs.clone());
        // The body that follows is not part of the head.
        let head = packet.len();
        packet.extend_from_slice(&body);
        let (again, used) = parse_request_head(&packet).unwrap().unwrap();
        prop_assert_eq!(used, head);
        prop_assert_eq!(owned(&again), pairs.clone());
        prop_assert_eq!(owned(&read_request(&mut Cursor::new(&packet)).unwrap()), pairs);
    }

    #[test]
    fn a_partial_request_head_asks_for_more(pairs in vars(), cut in any::<prop::sample::Index>()) {
        let (packet, _) = encoded(&pairs);
        let cut = cut.index(packet.len());
        prop_assert!(parse_request_head(&packet[..cut]).unwrap().is_none());
        prop_assert!(read_request(&mut Cursor::new(&packet[..cut])).is_err());
    }

    #[test]
    fn decoded_vars_encode_to_the_same_block(block in vec(any::<u8>(), 0..512)) {
        if let Ok(vars) = parse_vars(block.clone()) {
            let packet = encode_request(vars.iter()).unwrap();
            prop_assert_eq!(&packet[4..], block.as_slice());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in vec(any::<u8>(), 0..600)) {
        let _ = parse_request_head(&bytes);
        let _ = parse_vars(bytes.clone());
        let _ = read_request(&mut Cursor::new(&bytes));
        let _ = parse_response_head(&bytes);
        // The same with a valid header in front: the vars parser proper.
        let mut packet = vec![0u8, (bytes.len() & 0xff) as u8, (bytes.len() >> 8) as u8, 0];
        packet.extend_from_slice(&bytes);
        let _ = parse_request_head(&packet);
        let _ = read_request(&mut Cursor::new(&packet));
    }

    #[test]
    fn oversized_vars_are_refused_not_cut(len in 65_536usize..70_000) {
        let long = vec![b'x'; len];
        prop_assert!(encode_request([(b"K".as_slice(), long.as_slice())]).is_err());
        let many: Vec<(&[u8], &[u8])> = (0..=len / 1000).map(|_| (b"K".as_slice(), &long[..1000])).collect();
        prop_assert!(encode_request(many).is_err());
    }

    #[test]
    fn response_heads_round_trip(
        code in 100u16..1000,
        reason in "[ -~]{0,20}",
        headers in vec(("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}", header_value()), 0..12),
    ) {
        let status_line = format!("{code} {reason}");
        let head = encode_response_head(&status_line, &headers);
        let parsed = parse_response_head(&head).unwrap();
        prop_assert_eq!(parsed.status, code);
        prop_assert_eq!(parsed.status_line, status_line);
        prop_assert_eq!(parsed.headers, headers);
    }

    #[test]
    fn frame_headers_carry_their_length(len in 0usize..=super::protocol::MAX_FRAME) {
        prop_assert_eq!(u32::from_le_bytes(frame_header(len)) as usize, len);
    }

    #[test]
    fn secrets_match_only_themselves(given in vec(any::<u8>(), 0..40), expected in vec(any::<u8>(), 0..40)) {
        prop_assert_eq!(same_secret(&given, &expected), given == expected && !expected.is_empty());
        prop_assert_eq!(same_secret(&expected, &expected), !expected.is_empty());
    }

    #[test]
    fn private_means_named_like_ours(k in key()) {
        let ours = k.windows(8).any(|w| w == b"WSGI_RS_");
        prop_assert_eq!(is_private(&k), ours);
    }

    #[test]
    fn only_the_right_secret_admits(
        pairs in vars(),
        secret in "[a-f0-9]{32}",
        proxy in "[a-f0-9]{32}",
        which in 0u8..4,
        wrong in vec(any::<u8>(), 0..40),
    ) {
        prop_assume!(secret != proxy);
        let mut sent = pairs.clone();
        // No secret, ours, the proxy's, or anything else; put first, where
        // it is the one read (the vars may hold more, at random).
        let value = match which {
            0 => None,
            1 => Some(secret.clone().into_bytes()),
            2 => Some(proxy.clone().into_bytes()),
            _ => Some(wrong.clone()),
        };
        if let Some(v) = &value {
            sent.insert(0, (VAR_SECRET.as_bytes().to_vec(), v.clone()));
        }
        let (_, vars) = encoded(&sent);
        let first_secret = vars.get(VAR_SECRET).map(<[u8]>::to_vec);
        let admitted = admit(vars.clone(), secret.as_bytes(), proxy.as_bytes()).ok();
        match first_secret {
            Some(s) if s == secret.as_bytes() => {
                // Our own client: everything, unchanged.
                prop_assert_eq!(owned(&admitted.unwrap()), sent);
            }
            Some(s) if s == proxy.as_bytes() => {
                // mod_proxy_uwsgi: the public vars only, in order.
                let kept = owned(&admitted.unwrap());
                prop_assert!(kept.iter().all(|(k, _)| !is_private(k)));
                let public: Vec<_> = sent.into_iter().filter(|(k, _)| !is_private(k)).collect();
                prop_assert_eq!(kept, public);
            }
            _ => prop_assert!(admitted.is_none()),
        }
        // What an application is shown never holds a private var.
        prop_assert!(vars.public().all(|(k, _)| !is_private(k)));
    }

    #[test]
    fn rules_after_the_proxy_secret_never_admit_more(
        pairs in vars(),
        secret in "[a-f0-9]{32}",
        proxy in "[a-f0-9]{32}",
        rules in prop_oneof![
            vec(any::<u8>(), 0..40),
            "(X-Forwarded-For|X-Real-IP|X-Forwarded-Proto|,){0,4}(;[0-9./:,]{0,24})?"
                .prop_map(String::into_bytes),
        ],
    ) {
        prop_assume!(secret != proxy);
        let mut sent = pairs.clone();
        let mut value = proxy.clone().into_bytes();
        value.push(b' ');
        value.extend_from_slice(&rules);
        sent.insert(0, (VAR_SECRET.as_bytes().to_vec(), value));
        let (_, vars) = encoded(&sent);
        // Whatever the rules say: refused, or the public vars only, each
        // either as sent or one the rules may write.
        if let Ok(kept) = admit(vars, secret.as_bytes(), proxy.as_bytes()) {
            for (k, v) in owned(&kept) {
                prop_assert!(!is_private(&k));
                let written = [
                    &b"REMOTE_ADDR"[..], b"HTTPS", b"HTTP_HOST", b"SERVER_NAME",
                    b"SERVER_PORT", b"SCRIPT_NAME", b"HTTP_X_FORWARDED_FOR",
                ];
                prop_assert!(written.contains(&k.as_slice()) || sent.contains(&(k, v)));
            }
        }
    }
}
