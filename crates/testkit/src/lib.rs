//! Test support for the workspace's integration tests: real CNCF distribution registries on
//! loopback ports, real test images pushed to them, and `skopeo` as an independent judge.
//!
//! The project's rule is that integration tests run against real components, never
//! against a fake registry. This crate starts `docker-registry` processes on free `127.0.0.1`
//! ports (plain HTTP, htpasswd auth or TLS with a test CA), pushes Docker schema2 images over the
//! registry API and OCI images and indexes with `skopeo`, and checks results with `skopeo`, which
//! shares no code with the project.
//!
//! Everything is blocking and panics with a clear message on failure: it is only ever called from
//! tests, where a panic is a failed test. Missing tools are a failure too, never a skip, so that a
//! machine without them cannot pass the suite by running nothing.
//!
//! Needed on `PATH`: `docker-registry` (Debian package `docker-registry`), `skopeo`,
//! `htpasswd` (`apache2-utils`) and `openssl`.

mod browser;
#[cfg(unix)]
mod engines;
mod http;
mod image;
mod layer;
pub mod proxy;
mod registry;
mod relay;
mod skopeo;
mod tls;
mod token;
mod tools;
mod wine;

use sha2::{Digest, Sha256};

pub use browser::Browser;
#[cfg(unix)]
pub use engines::{TestContainerd, TestPodman};
pub use image::{ChildManifest, PushedImage, push_docker_image, push_oci_image, push_oci_index};
pub use layer::Layer;
pub use registry::{RegistryOptions, TestRegistry, free_port, registry_has_blob};
pub use relay::CountingRelay;
pub use skopeo::{skopeo_copy_to_oci_dir, skopeo_inspect_raw};
pub use token::{Anonymous, TokenRequest, TokenServer, TokenServerOptions};
pub use tools::require_tools;
pub use wine::{WINDOWS_EXE, WindowsExe, windows_path};

/// The `sha256:<hex>` digest of `data`, as registries and OCI layouts name content.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}
