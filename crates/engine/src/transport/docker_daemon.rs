//! The Docker Engine API as a place to load images into, spoken directly over its socket so
//! that no `docker` binary is needed: `POST /images/load` takes each image as a streamed
//! `docker save` archive, and its reply, read to the end, says whether the engine took it
//! (the original tool piped into `docker load` and ignored its exit status). Podman's
//! Docker-compatible service answers the same calls.

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{Method, Request, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http1::SendRequest;
use registry::Digest;
use serde::Deserialize;

use crate::copy::PlatformFilter;
use crate::error::{Error, Result};
use crate::transport::{ByteStream, ImageLoader};

type RequestBody = UnsyncBoxBody<Bytes, registry::Error>;

/// Where the engine listens, as `DOCKER_HOST` says it.
#[derive(Debug, Clone)]
enum Address {
    /// `unix:///var/run/docker.sock`
    Unix(PathBuf),
    /// `tcp://host:port` (plain HTTP, as Docker serves it without TLS options).
    Tcp(String),
}

/// A Docker Engine (or Podman's compatible service) reached over its API.
#[derive(Debug, Clone)]
pub struct DockerDaemon {
    address: Address,
    /// The address as the user gave it, for messages.
    shown: String,
}

#[derive(Deserialize)]
struct Version {
    #[serde(rename = "Os")]
    os: String,
    #[serde(rename = "Arch")]
    arch: String,
}

#[derive(Deserialize)]
struct ImageInspect {
    #[serde(rename = "Id")]
    id: String,
}

/// One line of the load reply: progress, or an error that the status code does not show.
#[derive(Deserialize)]
struct LoadMessage {
    error: Option<String>,
    #[serde(rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

impl DockerDaemon {
    /// Docker's own default, used when `DOCKER_HOST` is not set.
    pub const DEFAULT_HOST: &'static str = "unix:///var/run/docker.sock";

    /// The engine `DOCKER_HOST` names, else Docker's default socket.
    pub fn from_env() -> Result<DockerDaemon> {
        match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.trim().is_empty() => DockerDaemon::new(host.trim()),
            _ => DockerDaemon::new(Self::DEFAULT_HOST),
        }
    }

    /// An engine at `unix:///path`, `tcp://host:port` or `http://host:port`.
    pub fn new(host: &str) -> Result<DockerDaemon> {
        let unsupported = |detail: &str| Error::EngineUnreachable {
            address: host.to_string(),
            detail: detail.to_string(),
        };
        let address = if let Some(path) = host.strip_prefix("unix://") {
            Address::Unix(PathBuf::from(path))
        } else if let Some(rest) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            Address::Tcp(rest.trim_end_matches('/').to_string())
        } else if host.starts_with("npipe://") {
            return Err(unsupported(
                "named pipes are not supported; let the engine listen on tcp://127.0.0.1:2375 and set DOCKER_HOST to that",
            ));
        } else {
            return Err(unsupported(
                "not an address this tool can use: expected unix:///PATH or tcp://HOST:PORT",
            ));
        };
        Ok(DockerDaemon {
            address,
            shown: host.to_string(),
        })
    }

    /// The platform the engine runs images for: the one to load from a multi-platform image.
    pub async fn platform(&self) -> Result<PlatformFilter> {
        let (status, body) = self.request(Method::GET, "/version", None).await?;
        if status != StatusCode::OK {
            return Err(self.failed(status, &body));
        }
        let version: Version = serde_json::from_slice(&body).map_err(|e| Error::EngineFailed {
            address: self.shown.clone(),
            detail: format!("an unreadable version: {e}"),
        })?;
        Ok(PlatformFilter {
            os: version.os,
            architecture: version.arch,
            variant: None,
        })
    }

    async fn connect(&self) -> Result<SendRequest<RequestBody>> {
        let unreachable = |error: std::io::Error| Error::EngineUnreachable {
            address: self.shown.clone(),
            detail: error.to_string(),
        };
        match &self.address {
            #[cfg(unix)]
            Address::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(unreachable)?;
                self.handshake(stream).await
            }
            #[cfg(not(unix))]
            Address::Unix(path) => Err(unreachable(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!(
                    "{} is a unix socket, which this system lacks: set DOCKER_HOST to tcp://HOST:PORT",
                    path.display()
                ),
            ))),
            Address::Tcp(address) => {
                let stream = tokio::net::TcpStream::connect(address)
                    .await
                    .map_err(unreachable)?;
                self.handshake(stream).await
            }
        }
    }

    async fn handshake<S>(&self, stream: S) -> Result<SendRequest<RequestBody>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| self.transfer_error(&e))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection to the container engine ended");
            }
        });
        Ok(sender)
    }

    fn transfer_error(&self, error: &dyn std::fmt::Display) -> Error {
        Error::EngineUnreachable {
            address: self.shown.clone(),
            detail: error.to_string(),
        }
    }

    fn failed(&self, status: StatusCode, body: &[u8]) -> Error {
        #[derive(Deserialize)]
        struct Message {
            message: Option<String>,
        }
        let message = serde_json::from_slice::<Message>(body)
            .ok()
            .and_then(|m| m.message)
            .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
        Error::EngineFailed {
            address: self.shown.clone(),
            detail: format!("{status}: {message}"),
        }
    }

    /// One request on a fresh connection; the whole reply body is read.
    async fn request(
        &self,
        method: Method,
        path: &str,
        archive: Option<ByteStream>,
    ) -> Result<(StatusCode, Bytes)> {
        let mut sender = self.connect().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            // The API ignores the host, but HTTP/1.1 requires one.
            .header(http::header::HOST, "docker");
        let body = match archive {
            Some(archive) => {
                request = request.header(http::header::CONTENT_TYPE, "application/x-tar");
                StreamBody::new(archive.map_ok(Frame::data)).boxed_unsync()
            }
            None => Empty::new().map_err(|never| match never {}).boxed_unsync(),
        };
        let request = request.body(body).map_err(|e| self.transfer_error(&e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.transfer_error(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.transfer_error(&e))?
            .to_bytes();
        Ok((status, body))
    }
}

/// The first error a load reply reports, line by line (the engine streams JSON messages and
/// answers 200 even when the archive is refused).
fn load_error(reply: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(reply);
    serde_json::Deserializer::from_str(&text)
        .into_iter::<LoadMessage>()
        .filter_map(|message| message.ok())
        .find_map(|message| {
            message
                .error_detail
                .and_then(|detail| detail.message)
                .or(message.error)
        })
}

#[async_trait]
impl ImageLoader for DockerDaemon {
    fn describe(&self) -> String {
        "docker".to_string()
    }

    async fn has_image(&self, name: &str, config: &Digest) -> Result<bool> {
        let (status, body) = self
            .request(Method::GET, &format!("/images/{name}/json"), None)
            .await?;
        match status {
            StatusCode::OK => Ok(serde_json::from_slice::<ImageInspect>(&body)
                .is_ok_and(|image| image.id == config.as_str())),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(self.failed(status, &body)),
        }
    }

    async fn load(&self, name: &str, archive: ByteStream) -> Result<()> {
        let (status, reply) = self
            .request(Method::POST, "/images/load?quiet=1", Some(archive))
            .await?;
        let message = if status.is_success() {
            load_error(&reply)
        } else {
            Some(match self.failed(status, &reply) {
                Error::EngineFailed { detail, .. } => detail,
                other => other.to_string(),
            })
        };
        match message {
            None => Ok(()),
            Some(message) => Err(Error::LoadRejected {
                engine: format!("docker ({})", self.shown),
                name: name.to_string(),
                message,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_docker_host_gives_them() {
        assert!(matches!(
            DockerDaemon::new("unix:///run/podman.sock").unwrap().address,
            Address::Unix(path) if path == std::path::Path::new("/run/podman.sock")
        ));
        assert!(matches!(
            DockerDaemon::new("tcp://127.0.0.1:2375").unwrap().address,
            Address::Tcp(address) if address == "127.0.0.1:2375"
        ));
        assert!(DockerDaemon::new("npipe:////./pipe/docker_engine").is_err());
        assert!(DockerDaemon::new("ssh://host").is_err());
    }

    #[test]
    fn an_error_line_in_a_successful_reply_is_found() {
        let reply = br#"{"stream":"Loading layer"}
{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}
"#;
        assert_eq!(load_error(reply).as_deref(), Some("unexpected EOF"));
        assert_eq!(load_error(br#"{"stream":"Loaded image: a:1\n"}"#), None);
        assert_eq!(load_error(b""), None);
    }
}
