//! The registry client's errors, typed so front ends can explain each one in the user's
//! language and the engine can tell a retryable failure from a final one.

use crate::Digest;

/// Why a registry could not be reached, as far as the operating system says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkFailure {
    /// Nothing listens at that address and port.
    Refused,
    /// The host name does not resolve.
    NameNotResolved,
    /// No answer in time.
    TimedOut,
    /// The connection was cut.
    Reset,
    /// Anything else.
    Other,
}

impl NetworkFailure {
    /// Reads the failure from an error and its sources.
    pub fn of(error: &(dyn std::error::Error + 'static)) -> NetworkFailure {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
        let mut text = String::new();
        while let Some(error) = current {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return NetworkFailure::Refused,
                    std::io::ErrorKind::TimedOut => return NetworkFailure::TimedOut,
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                        return NetworkFailure::Reset;
                    }
                    _ => {}
                }
            }
            text.push_str(&error.to_string().to_ascii_lowercase());
            text.push('\n');
            current = error.source();
        }
        // Name lookups fail with an untyped error; its text is hyper's own, stable one.
        if text.contains("dns error") || text.contains("failed to lookup address") {
            NetworkFailure::NameNotResolved
        } else if text.contains("timed out") {
            NetworkFailure::TimedOut
        } else {
            NetworkFailure::Other
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid registry address {address:?}: {reason}")]
    InvalidAddress { address: String, reason: String },

    #[error("cannot read CA certificate {path}: {detail}")]
    CaCertificate { path: String, detail: String },

    #[error("cannot reach registry {host}: {detail}")]
    Unreachable {
        host: String,
        /// What went wrong, for a sentence in the user's language.
        failure: NetworkFailure,
        /// The underlying errors, for a user who asks for them.
        detail: String,
    },

    #[error("TLS certificate of {host} is not trusted: {detail}")]
    TlsVerification { host: String, detail: String },

    #[error("registry {host} rejected the credentials (HTTP 401)")]
    Unauthorized { host: String },

    #[error(
        "registry {host} sends logins to {realm}, another host over plain HTTP; the password was not sent"
    )]
    CredentialsWithheld { host: String, realm: String },

    #[error("registry {host} requires a login: set user and password for it")]
    AuthenticationRequired { host: String },

    #[error("registry {host} denied access to {repository} (HTTP 403)")]
    Denied { host: String, repository: String },

    #[error("image {reference} not found on registry {host}")]
    ManifestNotFound { host: String, reference: String },

    #[error("blob {digest} not found in {repository} on registry {host}")]
    BlobNotFound {
        host: String,
        repository: String,
        digest: Digest,
    },

    #[error("{what} not found on registry {host}")]
    NotFound { host: String, what: String },

    #[error("registry {host} answered HTTP {status} to {method} {path}: {body}")]
    Status {
        host: String,
        status: u16,
        method: String,
        path: String,
        body: String,
    },

    #[error("connection to {host} failed while transferring data: {detail}")]
    Transfer { host: String, detail: String },

    #[error("content of {expected} does not match its digest: got {actual} ({bytes} bytes)")]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        bytes: u64,
    },

    #[error("size of {digest} is {actual} bytes, expected {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },

    #[error(
        "{reference} is a Docker schema 1 manifest; schema 1 is deprecated and not supported, \
         rebuild or re-push the image with a current client"
    )]
    Schema1 { reference: String },

    #[error("unsupported manifest media type {media_type:?} for {reference}")]
    UnsupportedManifest {
        reference: String,
        media_type: String,
    },

    #[error("invalid manifest for {reference}: {detail}")]
    InvalidManifest { reference: String, detail: String },

    #[error("manifest of {reference} lists {count} entries, more than any real image ({limit})")]
    AbsurdManifest {
        reference: String,
        count: usize,
        limit: usize,
        /// An index (platforms) rather than an image manifest (layers).
        index: bool,
    },

    #[error("registry {host} sent an invalid response: {detail}")]
    Protocol { host: String, detail: String },

    #[error("registry {host} does not accept single-request uploads; retrying in chunks")]
    MonolithicUploadRefused { host: String },
}

impl Error {
    /// Whether trying the same operation again may succeed: network trouble and server-side
    /// failures are, wrong credentials, missing images and bad content from a good source are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unreachable { .. }
            | Error::Transfer { .. }
            | Error::MonolithicUploadRefused { .. }
            | Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::Protocol { .. } => true,
            Error::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
