//! The WebSocket opening handshake (RFC 6455 4.2): what the client's
//! request must carry, and the 101 that accepts it. Apache checked the
//! `Upgrade`/`Connection` tokens before forwarding; the key, the version
//! and the offered subprotocols are checked here, where the answer is
//! written. Whatever the application adds to the 101 (its subprotocol and
//! headers) is checked so that it cannot forge lines of the head.

use crate::daemon::protocol::Vars;

/// A valid opening handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// `Sec-WebSocket-Key`, as sent.
    pub key: Vec<u8>,
    /// The subprotocols the client offers, in its order.
    pub subprotocols: Vec<String>,
}

impl Handshake {
    /// The handshake a request carries, or why it is not a valid one.
    pub fn from_vars(vars: &Vars) -> Result<Handshake, &'static str> {
        let key = vars
            .get("HTTP_SEC_WEBSOCKET_KEY")
            .ok_or("no Sec-WebSocket-Key")?
            .trim_ascii();
        // 16 random bytes, base64: 24 characters ending in "==".
        let valid_key = key.len() == 24
            && key.ends_with(b"==")
            && key[..22]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        if !valid_key {
            return Err("malformed Sec-WebSocket-Key");
        }
        if vars
            .get("HTTP_SEC_WEBSOCKET_VERSION")
            .map(<[u8]>::trim_ascii)
            != Some(b"13")
        {
            return Err("unsupported Sec-WebSocket-Version (13 is served)");
        }
        let subprotocols = vars
            .get("HTTP_SEC_WEBSOCKET_PROTOCOL")
            .map(|v| {
                String::from_utf8_lossy(v)
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Handshake {
            key: key.to_vec(),
            subprotocols,
        })
    }

    /// The 101 head accepting the handshake with `subprotocol` (which must
    /// be one the client offered) and the application's `headers`; Err
    /// names what the application got wrong.
    pub fn accept(
        &self,
        subprotocol: Option<&str>,
        headers: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Vec<u8>, String> {
        let mut head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ".to_vec();
        head.extend_from_slice(tungstenite::handshake::derive_accept_key(&self.key).as_bytes());
        head.extend_from_slice(b"\r\n");
        if let Some(chosen) = subprotocol {
            if !self.subprotocols.iter().any(|p| p == chosen) {
                return Err(format!(
                    "subprotocol {chosen:?} was not offered by the client (offered: {:?})",
                    self.subprotocols
                ));
            }
            head.extend_from_slice(b"Sec-WebSocket-Protocol: ");
            head.extend_from_slice(chosen.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        for (name, value) in headers {
            let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
            if name.is_empty() || !name.iter().all(token) {
                return Err(format!(
                    "invalid header name {:?}",
                    String::from_utf8_lossy(name)
                ));
            }
            if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(format!(
                    "invalid value for header {:?}",
                    String::from_utf8_lossy(name)
                ));
            }
            // The handshake's own headers are ours to write.
            let reserved = [
                &b"upgrade"[..],
                b"connection",
                b"sec-websocket-accept",
                b"sec-websocket-protocol",
                b"content-length",
                b"transfer-encoding",
            ];
            if reserved.iter().any(|r| name.eq_ignore_ascii_case(r)) {
                continue;
            }
            head.extend_from_slice(name);
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::protocol::parse_vars;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        let mut block = Vec::new();
        for (k, v) in pairs {
            for part in [k, v] {
                block.extend_from_slice(&(part.len() as u16).to_le_bytes());
                block.extend_from_slice(part.as_bytes());
            }
        }
        parse_vars(block).unwrap()
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[test]
    fn rfc_example_accept_key_and_subprotocol() {
        let v = vars(&[
            ("HTTP_SEC_WEBSOCKET_KEY", KEY),
            ("HTTP_SEC_WEBSOCKET_VERSION", "13"),
            ("HTTP_SEC_WEBSOCKET_PROTOCOL", "chat, superchat"),
        ]);
        let hs = Handshake::from_vars(&v).unwrap();
        assert_eq!(hs.subprotocols, ["chat", "superchat"]);
        let head = hs
            .accept(Some("superchat"), &[(b"X-A".to_vec(), b"1".to_vec())])
            .unwrap();
        let text = String::from_utf8(head).unwrap();
        // RFC 6455 1.3's worked example.
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: superchat\r\n"));
        assert!(text.ends_with("X-A: 1\r\n\r\n"));
    }

    #[test]
    fn bad_handshakes_are_refused() {
        assert!(Handshake::from_vars(&vars(&[("HTTP_SEC_WEBSOCKET_VERSION", "13")])).is_err());
        let short = vars(&[
            ("HTTP_SEC_WEBSOCKET_KEY", "abc=="),
            ("HTTP_SEC_WEBSOCKET_VERSION", "13"),
        ]);
        assert!(Handshake::from_vars(&short).is_err());
        let old = vars(&[
            ("HTTP_SEC_WEBSOCKET_KEY", KEY),
            ("HTTP_SEC_WEBSOCKET_VERSION", "8"),
        ]);
        assert!(Handshake::from_vars(&old).is_err());
    }

    #[test]
    fn application_cannot_forge_the_head() {
        let hs = Handshake {
            key: KEY.into(),
            subprotocols: vec!["chat".into()],
        };
        assert!(hs.accept(Some("other"), &[]).is_err());
        let split = [(b"X-A".to_vec(), b"1\r\nSet-Cookie: x".to_vec())];
        assert!(hs.accept(None, &split).is_err());
        let bad_name = [(b"X A".to_vec(), b"1".to_vec())];
        assert!(hs.accept(None, &bad_name).is_err());
        let ours = [(b"Sec-WebSocket-Accept".to_vec(), b"forged".to_vec())];
        let head = String::from_utf8(hs.accept(None, &ours).unwrap()).unwrap();
        assert!(!head.contains("forged"));
    }
}
