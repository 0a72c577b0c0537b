//! The ASGI HTTP connection scope of a request, from the CGI variables
//! Apache computed for it (the same ones a WSGI environ is built from), so
//! both protocols see the same request: `root_path` is the mount point
//! (`SCRIPT_NAME`), `path` the decoded full path (mount point included, as
//! the spec and Starlette and Django expect), `raw_path` the path as the
//! client sent it, headers lowercased as bytes.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

/// The HTTP scope's values, before they become a Python dict.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HttpScope<'a> {
    /// `REQUEST_METHOD`.
    pub method: String,
    /// "https" when `HTTPS` is on, else "http".
    pub scheme: &'static str,
    /// "1.0", "1.1" or "2".
    pub http_version: String,
    /// `SCRIPT_NAME` + `PATH_INFO`, as decoded by Apache.
    pub path: String,
    /// `REQUEST_URI` without its query string.
    pub raw_path: &'a [u8],
    /// `QUERY_STRING`.
    pub query_string: &'a [u8],
    /// `SCRIPT_NAME`: where the application is mounted.
    pub root_path: String,
    /// The request headers, names lowercased.
    pub headers: Vec<(Vec<u8>, &'a [u8])>,
    /// `REMOTE_ADDR` and `REMOTE_PORT`.
    pub client: Option<(String, u16)>,
    /// `SERVER_NAME` and `SERVER_PORT`.
    pub server: Option<(String, u16)>,
}

/// Text of a variable (lossy UTF-8).
fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// `HTTP_ACCEPT_LANGUAGE` → `accept-language`.
fn header_name(cgi: &[u8]) -> Vec<u8> {
    cgi.iter()
        .map(|&b| match b {
            b'_' => b'-',
            b => b.to_ascii_lowercase(),
        })
        .collect()
}

impl<'a> HttpScope<'a> {
    /// The scope of the request whose (public) CGI variables these are.
    pub fn from_cgi(vars: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> HttpScope<'a> {
        let mut scope = HttpScope {
            scheme: "http",
            http_version: "1.1".into(),
            ..HttpScope::default()
        };
        let (mut script_name, mut path_info) = (String::new(), String::new());
        let (mut remote_addr, mut remote_port) = (None, None);
        let (mut server_name, mut server_port) = (None, None);
        let mut request_uri: Option<&[u8]> = None;
        for (key, value) in vars {
            match key {
                b"REQUEST_METHOD" => scope.method = text(value),
                b"HTTPS" => {
                    if matches!(value, b"on" | b"ON" | b"On" | b"1") {
                        scope.scheme = "https";
                    }
                }
                b"SERVER_PROTOCOL" => {
                    scope.http_version = match value {
                        b"HTTP/1.0" => "1.0",
                        b"HTTP/2" | b"HTTP/2.0" => "2",
                        _ => "1.1",
                    }
                    .into();
                }
                b"SCRIPT_NAME" => script_name = text(value),
                b"PATH_INFO" => path_info = text(value),
                b"REQUEST_URI" => request_uri = Some(value),
                b"QUERY_STRING" => scope.query_string = value,
                b"REMOTE_ADDR" => remote_addr = Some(text(value)),
                b"REMOTE_PORT" => remote_port = text(value).parse::<u16>().ok(),
                b"SERVER_NAME" => server_name = Some(text(value)),
                b"SERVER_PORT" => server_port = text(value).parse::<u16>().ok(),
                b"CONTENT_TYPE" => scope.headers.push((b"content-type".to_vec(), value)),
                b"CONTENT_LENGTH" => scope.headers.push((b"content-length".to_vec(), value)),
                _ => {
                    if let Some(name) = key.strip_prefix(b"HTTP_") {
                        scope.headers.push((header_name(name), value));
                    }
                }
            }
        }
        scope.path = format!("{script_name}{path_info}");
        if scope.path.is_empty() {
            scope.path.push('/');
        }
        scope.raw_path = match request_uri {
            Some(uri) => uri.split(|&b| b == b'?').next().unwrap_or(uri),
            None => &[],
        };
        scope.root_path = script_name;
        scope.client = remote_addr.map(|addr| (addr, remote_port.unwrap_or(0)));
        scope.server = server_name.map(|name| (name, server_port.unwrap_or(0)));
        scope
    }

    /// The scope as the dict the application receives (`state` is added
    /// by the server, from the lifespan's).
    pub fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let scope = PyDict::new(py);
        scope.set_item("type", "http")?;
        let asgi = PyDict::new(py);
        asgi.set_item("version", "3.0")?;
        asgi.set_item("spec_version", "2.4")?;
        scope.set_item("asgi", asgi)?;
        scope.set_item("http_version", &self.http_version)?;
        scope.set_item("method", &self.method)?;
        scope.set_item("scheme", self.scheme)?;
        scope.set_item("path", &self.path)?;
        let raw_path: &[u8] = if self.raw_path.is_empty() {
            self.path.as_bytes()
        } else {
            self.raw_path
        };
        scope.set_item("raw_path", PyBytes::new(py, raw_path))?;
        scope.set_item("query_string", PyBytes::new(py, self.query_string))?;
        scope.set_item("root_path", &self.root_path)?;
        let headers = PyList::empty(py);
        for (name, value) in &self.headers {
            headers.append(PyTuple::new(
                py,
                [PyBytes::new(py, name), PyBytes::new(py, value)],
            )?)?;
        }
        scope.set_item("headers", headers)?;
        match &self.client {
            Some((host, port)) => scope.set_item("client", (host, *port))?,
            None => scope.set_item("client", py.None())?,
        }
        match &self.server {
            Some((host, port)) => scope.set_item("server", (host, *port))?,
            None => scope.set_item("server", py.None())?,
        }
        scope.set_item("extensions", PyDict::new(py))?;
        Ok(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_from_cgi_variables() {
        let vars: Vec<(&[u8], &[u8])> = vec![
            (b"REQUEST_METHOD", b"POST"),
            (b"HTTPS", b"on"),
            (b"SERVER_PROTOCOL", b"HTTP/1.0"),
            (b"SCRIPT_NAME", b"/api"),
            (b"PATH_INFO", b"/caf\xc3\xa9 x"),
            (b"REQUEST_URI", b"/api/caf%C3%A9%20x?a=1&b"),
            (b"QUERY_STRING", b"a=1&b"),
            (b"REMOTE_ADDR", b"127.0.0.1"),
            (b"REMOTE_PORT", b"50000"),
            (b"SERVER_NAME", b"example.org"),
            (b"SERVER_PORT", b"8443"),
            (b"CONTENT_TYPE", b"application/json"),
            (b"HTTP_X_FORWARDED_FOR", b"10.0.0.1"),
            (b"HTTP_HOST", b"example.org:8443"),
            (b"DOCUMENT_ROOT", b"/var/www"),
        ];
        let scope = HttpScope::from_cgi(vars.into_iter());
        assert_eq!(scope.method, "POST");
        assert_eq!(scope.scheme, "https");
        assert_eq!(scope.http_version, "1.0");
        assert_eq!(scope.path, "/api/café x");
        assert_eq!(scope.raw_path, b"/api/caf%C3%A9%20x");
        assert_eq!(scope.query_string, b"a=1&b");
        assert_eq!(scope.root_path, "/api");
        assert_eq!(
            scope.headers,
            vec![
                (b"content-type".to_vec(), &b"application/json"[..]),
                (b"x-forwarded-for".to_vec(), &b"10.0.0.1"[..]),
                (b"host".to_vec(), &b"example.org:8443"[..]),
            ]
        );
        assert_eq!(scope.client, Some(("127.0.0.1".into(), 50000)));
        assert_eq!(scope.server, Some(("example.org".into(), 8443)));
    }

    #[test]
    fn root_mount_and_http2() {
        let vars: Vec<(&[u8], &[u8])> = vec![
            (b"SERVER_PROTOCOL", b"HTTP/2.0"),
            (b"SCRIPT_NAME", b""),
            (b"REQUEST_URI", b"/"),
        ];
        let scope = HttpScope::from_cgi(vars.into_iter());
        assert_eq!(scope.path, "/");
        assert_eq!(scope.root_path, "");
        assert_eq!(scope.http_version, "2");
        assert_eq!(scope.scheme, "http");
        assert_eq!(scope.client, None);
    }
}
