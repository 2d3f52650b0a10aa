//! Where a registry lives and how to talk to it: scheme, host, path prefix and the TLS profile.
//!
//! The original tool treated every address without `https://` as insecure and silently fell back
//! to plain HTTP. Here TLS is verified unless the user says otherwise, and plain HTTP is used
//! only when the address says `http://`, or when it names a loopback host without a scheme
//! (as Docker itself does for `localhost` and 127.0.0.0/8), or when the caller asks for the
//! original tool's fallback for an address without a scheme (cfg.yaml entries do). What such a
//! probe finds is kept for the process, so it costs one TLS handshake per host and run.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::error::{Error, Result};

/// The scheme to use for an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    /// No scheme was given for a loopback host, or for any host when the caller asks for the
    /// original tool's fallback: try https, fall back to http.
    HttpsThenHttp,
}

/// A parsed registry address: `[scheme://]host[:port][/path/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// `host[:port]`, as used in image references and credential lookups.
    pub host: String,
    /// Repository path prefix (`harbor.local/proj` → `proj`), without slashes at either end.
    pub path_prefix: String,
}

impl Endpoint {
    pub fn parse(address: &str) -> Result<Endpoint> {
        let invalid = |reason: &str| Error::InvalidAddress {
            address: address.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = address.trim().trim_end_matches('/');
        let (scheme, rest) = if let Some(rest) = trimmed.strip_prefix("https://") {
            (Some(Scheme::Https), rest)
        } else if let Some(rest) = trimmed.strip_prefix("http://") {
            (Some(Scheme::Http), rest)
        } else if trimmed.contains("://") {
            return Err(invalid("only http:// and https:// are supported"));
        } else {
            (None, trimmed)
        };
        let (host, path_prefix) = match rest.split_once('/') {
            Some((host, prefix)) => (host, prefix.trim_matches('/')),
            None => (rest, ""),
        };
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        url::Url::parse(&format!("http://{host}/"))
            .ok()
            .filter(|url| url.host_str().is_some())
            .ok_or_else(|| invalid("not a valid host[:port]"))?;
        let scheme = scheme.unwrap_or(if is_loopback(host) {
            Scheme::HttpsThenHttp
        } else {
            Scheme::Https
        });
        Ok(Endpoint {
            scheme,
            host: host.to_ascii_lowercase(),
            path_prefix: path_prefix.to_string(),
        })
    }

    /// The base URL for a given scheme choice.
    pub(crate) fn base_url(&self, https: bool) -> String {
        let scheme = if https { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// The key Docker's config.json uses for this registry.
    pub(crate) fn credential_key(&self) -> String {
        if is_docker_hub(&self.host) {
            "https://index.docker.io/v1/".to_string()
        } else {
            self.host.clone()
        }
    }
}

/// Docker Hub's several names, which all mean the same registry.
pub fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

fn is_loopback(host: &str) -> bool {
    let name = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']').map(|(ip, _)| ip))
        .unwrap_or_else(|| host.rsplit_once(':').map_or(host, |(name, _)| name));
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The scheme found by probing a host given without one ([`Scheme::HttpsThenHttp`]), kept for
/// the whole process: the images of a job, a source and a target on one host, and every later
/// job of a daemon all use what the first probe found instead of probing again.
pub(crate) fn discovered_scheme(host: &str) -> Arc<OnceCell<Scheme>> {
    static SCHEMES: Mutex<BTreeMap<String, Arc<OnceCell<Scheme>>>> = Mutex::new(BTreeMap::new());
    SCHEMES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(host.to_string())
        .or_default()
        .clone()
}

/// How to verify a registry's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Extra trusted CA certificates (a PEM file, or a directory of `*.crt` files), added to
    /// the system's roots.
    pub ca_certificate: Option<PathBuf>,
    /// Accept any certificate. Only ever set by an explicit user choice.
    pub skip_verify: bool,
}

/// The HTTP client for one TLS profile, shared by every registry using that profile: loading
/// and parsing the system's trusted roots is most of a short run's start-up, so it happens
/// once per profile, and connections stay pooled across images.
pub(crate) fn http_client(
    tls: &TlsOptions,
    read_timeout: Duration,
    user_agent: &str,
) -> Result<reqwest::Client> {
    type Profile = (TlsOptions, Duration);
    static CLIENTS: Mutex<Vec<(Profile, reqwest::Client)>> = Mutex::new(Vec::new());
    let mut clients = CLIENTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, client)) = clients
        .iter()
        .find(|((options, timeout), _)| options == tls && *timeout == read_timeout)
    {
        return Ok(client.clone());
    }
    let client = build_http_client(tls, read_timeout, user_agent)?;
    clients.push(((tls.clone(), read_timeout), client.clone()));
    Ok(client)
}

fn build_http_client(
    tls: &TlsOptions,
    read_timeout: Duration,
    user_agent: &str,
) -> Result<reqwest::Client> {
    install_crypto_provider();
    let configured = |only_given_roots: bool, certificates: Vec<reqwest::Certificate>| {
        let builder = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(Duration::from_secs(15))
            // A stalled connection must fail the transfer (and be retried), not hang it forever.
            .read_timeout(read_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .tls_danger_accept_invalid_certs(tls.skip_verify);
        if only_given_roots {
            builder.tls_certs_only(certificates)
        } else {
            builder.tls_certs_merge(certificates)
        }
    };
    let certificates = match &tls.ca_certificate {
        Some(path) => ca_certificates(path)?,
        None => Vec::new(),
    };
    match configured(false, certificates.clone()).build() {
        Ok(client) => Ok(client),
        // A system with no trusted roots at all (an empty container, a minimal chroot) cannot
        // make the platform's verifier; plain-HTTP registries, `cacert:` and `skiptlsverify`
        // must still work there. An HTTPS registry then fails its handshake as untrusted.
        Err(first) => match configured(true, certificates).build() {
            Ok(client) => {
                tracing::warn!(error = %first, "no trusted root certificates on this system: HTTPS registries need cacert or skiptlsverify");
                Ok(client)
            }
            Err(_) => Err(Error::InvalidAddress {
                address: String::new(),
                reason: format!("cannot build the HTTP client: {first}"),
            }),
        },
    }
}

/// The certificates of a `cacert:` PEM file.
/// The CA certificates of a PEM file, or of every `*.crt` file in a directory (the layout of
/// Docker's and skopeo's certificate directories, `certs.d/<host>/ca.crt`).
fn ca_certificates(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>> {
    let ca_error = |detail: String| Error::CaCertificate {
        path: path.display().to_string(),
        detail,
    };
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| ca_error(e.to_string()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|file| file.extension().is_some_and(|ext| ext == "crt"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ca_error("no *.crt file in the directory".to_string()));
        }
        let mut certificates = Vec::new();
        for file in files {
            certificates.extend(ca_certificates(&file)?);
        }
        return Ok(certificates);
    }
    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(ca_error("no PEM certificate in the file".to_string()));
    }
    Ok(certificates)
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another component may have installed one first; either is fine for us.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scheme_host_and_prefix() {
        let endpoint = Endpoint::parse("https://Harbor.Local:8443/proj/sub/").unwrap();
        assert_eq!(endpoint.scheme, Scheme::Https);
        assert_eq!(endpoint.host, "harbor.local:8443");
        assert_eq!(endpoint.path_prefix, "proj/sub");

        let plain = Endpoint::parse("http://10.45.80.1").unwrap();
        assert_eq!(plain.scheme, Scheme::Http);
        assert_eq!(plain.path_prefix, "");
    }

    #[test]
    fn no_scheme_means_https_except_for_loopback() {
        assert_eq!(
            Endpoint::parse("reg.example:5000").unwrap().scheme,
            Scheme::Https
        );
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "localhost",
        ] {
            assert_eq!(
                Endpoint::parse(host).unwrap().scheme,
                Scheme::HttpsThenHttp,
                "{host}"
            );
        }
    }

    #[test]
    fn rejects_unusable_addresses() {
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("").is_err());
        assert!(Endpoint::parse("http:///x").is_err());
        assert!(Endpoint::parse("bad host").is_err());
    }

    #[test]
    fn docker_hub_uses_its_legacy_credential_key() {
        assert_eq!(
            Endpoint::parse("registry-1.docker.io")
                .unwrap()
                .credential_key(),
            "https://index.docker.io/v1/"
        );
        assert_eq!(Endpoint::parse("h:1").unwrap().credential_key(), "h:1");
    }
}
