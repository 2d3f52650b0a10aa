//! A minimal blocking HTTP client, just enough to push blobs and manifests to a test registry and
//! ask it about blobs, without pulling an async runtime into every test.
//!
//! Requests are HTTP/1.0 on purpose: the server then closes the connection after each response
//! and never chunks it, so a response is whatever arrives before end of stream.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// Long enough for a large layer on a slow machine, short enough that a wedged registry fails the
/// test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how to reach one registry.
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) tls: Option<Arc<ClientConfig>>,
    /// A complete `Authorization` header value, sent with every request.
    pub(crate) authorization: Option<String>,
}

pub(crate) struct Response {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as text, for error messages.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Endpoint {
    /// Sends one request. `target` is a path with optional query, or an absolute URL on this
    /// endpoint (registries answer uploads with absolute `Location` URLs).
    pub(crate) fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let mut request = format!(
            "{method} {} HTTP/1.0\r\nHost: {}\r\n",
            path_of(target),
            self.host
        );
        if let Some(authorization) = &self.authorization {
            request.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        if matches!(method, "POST" | "PUT") {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(body);

        let tcp = TcpStream::connect(&self.host)?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        let raw = match &self.tls {
            None => exchange(tcp, &request)?,
            Some(config) => {
                let server_name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
                let connection = ClientConnection::new(Arc::clone(config), server_name)
                    .map_err(io::Error::other)?;
                exchange(StreamOwned::new(connection, tcp), &request)?
            }
        };
        parse(&raw)
    }
}

fn path_of(target: &str) -> &str {
    match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |slash| &rest[slash..]),
        None => target,
    }
}

fn exchange(mut stream: impl Read + Write, request: &[u8]) -> io::Result<Vec<u8>> {
    stream.write_all(request)?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    Ok(raw)
}

fn parse(raw: &[u8]) -> io::Result<Response> {
    let invalid = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} in HTTP response: {}", String::from_utf8_lossy(raw)),
        )
    };
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| invalid("non-UTF-8 headers"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("no status"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_locations_become_paths() {
        assert_eq!(
            path_of("http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=y"),
            "/v2/a/blobs/uploads/x?_state=y"
        );
        assert_eq!(path_of("/v2/"), "/v2/");
    }

    #[test]
    fn parses_status_headers_and_body() {
        let response =
            parse(b"HTTP/1.0 201 Created\r\nDocker-Content-Digest: sha256:ab\r\n\r\n{}").unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.header("docker-content-digest"), Some("sha256:ab"));
        assert_eq!(response.body, b"{}");
    }
}
