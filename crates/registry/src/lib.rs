//! A thin client for the OCI distribution API: what image-transmit needs to read from and
//! write to registries, and nothing it does not.
//!
//! One [`Registry`] per endpoint holds a pooled HTTP client, the auth state and the retry
//! policy. Blobs flow as byte streams and are never held whole in memory.

mod auth;
mod blobs;
mod client;
pub mod digest;
mod endpoint;
mod error;
pub mod manifest;
mod manifests;
pub mod reference;
mod retry;

pub use auth::{Credentials, Scope};
pub use blobs::{BlobStream, MountOutcome, UploadSession};
pub use client::{Registry, RegistryOptions};
pub use digest::{Digest, DigestHasher, InvalidDigest};
pub use endpoint::{Endpoint, Scheme, TlsOptions, is_docker_hub};
pub use error::{Error, NetworkFailure, Result};
pub use manifests::Manifest;
pub use retry::RetryPolicy;
