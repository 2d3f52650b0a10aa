//! A thin client for the OCI distribution API: what image-transmit needs to read from and
//! write to registries, and nothing it does not.
//!
//! One [`Registry`] per endpoint holds a pooled HTTP client, the auth state and the retry
//! policy. Blobs flow as byte streams and are never held whole in memory.

mod auth;
mod blobs;
mod client;
pub mod digest;
mod download;
mod endpoint;
mod error;
pub mod manifest;
mod manifest_requests;
pub mod reference;
mod retry;
mod upload;

pub use auth::{Credentials, Scope};
pub use blobs::{MountOutcome, UploadSession};
pub use client::{Registry, RegistryOptions};
pub use digest::{Digest, DigestHasher, InvalidDigest};
pub use download::BlobStream;
pub use endpoint::{Endpoint, Scheme, TlsOptions, is_docker_hub};
pub use error::{Error, NetworkFailure, Result};
pub use manifest_requests::Manifest;
pub use retry::RetryPolicy;
pub use upload::{BlobBody, BodyFrom};

/// Entry points for the fuzz targets (fuzz/) into parsers of what a registry sends that are
/// private to this crate. Not part of the crate's interface: hidden, and free to change.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a `WWW-Authenticate` header value; whether it named a scheme this client speaks
    /// (Basic, or Bearer with a realm). Any outcome but a panic is fine.
    pub fn www_authenticate(header: &str) -> bool {
        crate::auth::Challenge::parse(header).is_some()
    }

    /// The `rel="next"` target of a `Link` header, as a paged listing follows it.
    pub fn next_link(header: &str) -> Option<String> {
        crate::manifest_requests::next_link(header)
    }
}
