//! Test images built from [`Layer`]s and pushed to a [`TestRegistry`]: Docker schema2 images over
//! the registry HTTP API, OCI images and multi-platform OCI indexes through `skopeo copy` from an
//! OCI layout (skopeo 1.9's `oci:` transport refuses Docker media types, hence the split).
//!
//! Each push reports exactly what the registry then holds, so tests can compare a copy with it
//! byte for byte.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::skopeo::{push_layout, skopeo_inspect_raw};
use crate::{Layer, TestRegistry, sha256_digest};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The media types of one image manifest format.
struct Format {
    manifest: &'static str,
    config: &'static str,
    layer: &'static str,
}

const DOCKER: Format = Format {
    manifest: "application/vnd.docker.distribution.manifest.v2+json",
    config: "application/vnd.docker.container.image.v1+json",
    layer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
};

const OCI: Format = Format {
    manifest: "application/vnd.oci.image.manifest.v1+json",
    config: "application/vnd.oci.image.config.v1+json",
    layer: "application/vnd.oci.image.layer.v1.tar+gzip",
};

/// What a push left in the registry.
#[derive(Clone, Debug)]
pub struct PushedImage {
    /// The repository pushed to, without the registry host.
    pub repository: String,
    /// The tag the manifest was pushed under.
    pub tag: String,
    /// `sha256:` digest of [`manifest`](Self::manifest).
    pub digest: String,
    /// The manifest (or index) bytes exactly as the registry serves them.
    pub manifest: Vec<u8>,
    /// The manifest's media type (Docker schema2, OCI manifest or OCI index).
    pub media_type: String,
    /// Digests of every config and layer blob, for an index those of all its children, each once.
    pub blobs: Vec<String>,
    /// The per-platform manifests of an index, in index order; empty for a single image.
    pub children: Vec<ChildManifest>,
}

/// One platform's image manifest inside a pushed index.
#[derive(Clone, Debug)]
pub struct ChildManifest {
    /// The platform's operating system, as in the index, e.g. `linux`.
    pub os: String,
    /// The platform's architecture, as in the index, e.g. `arm64`.
    pub architecture: String,
    /// `sha256:` digest of [`manifest`](Self::manifest), as listed in the index.
    pub digest: String,
    /// The OCI image manifest bytes as the registry serves them by digest.
    pub manifest: Vec<u8>,
    /// Digests of this image's config and layers.
    pub blobs: Vec<String>,
}

/// An image manifest and its config, not yet pushed anywhere.
struct BuiltImage {
    config: Vec<u8>,
    manifest: Vec<u8>,
    digest: String,
    blobs: Vec<String>,
}

/// Pushes a `linux/amd64` Docker schema2 image of `layers` to `repository:tag` over the registry
/// API (monolithic blob uploads, then the manifest), with the registry's credentials and CA.
#[track_caller]
pub fn push_docker_image(
    reg: &TestRegistry,
    repository: &str,
    tag: &str,
    layers: &[Layer],
) -> PushedImage {
    let layers: Vec<&Layer> = layers.iter().collect();
    let image = build_image(&DOCKER, "linux", "amd64", &layers);
    for layer in &layers {
        upload_blob(reg, repository, layer.bytes());
    }
    upload_blob(reg, repository, &image.config);
    put_manifest(reg, repository, tag, DOCKER.manifest, &image);
    PushedImage {
        repository: repository.to_owned(),
        tag: tag.to_owned(),
        digest: image.digest,
        manifest: image.manifest,
        media_type: DOCKER.manifest.to_owned(),
        blobs: image.blobs,
        children: Vec::new(),
    }
}

/// Pushes a `linux/amd64` OCI image of `layers` to `repository:tag` with `skopeo copy` from an
/// OCI layout written here.
#[track_caller]
pub fn push_oci_image(
    reg: &TestRegistry,
    repository: &str,
    tag: &str,
    layers: &[Layer],
) -> PushedImage {
    let layers: Vec<&Layer> = layers.iter().collect();
    let image = build_image(&OCI, "linux", "amd64", &layers);
    let layout = OciLayout::new();
    layout.add_image(&image, &layers);
    layout.tag(OCI.manifest, &image.manifest, tag);
    push_layout(layout.path(), reg, repository, tag, false);
    check_served(reg, repository, tag, &image.manifest);
    PushedImage {
        repository: repository.to_owned(),
        tag: tag.to_owned(),
        digest: image.digest,
        manifest: image.manifest,
        media_type: OCI.manifest.to_owned(),
        blobs: image.blobs,
        children: Vec::new(),
    }
}

/// Pushes an OCI index with one OCI image per `(os, architecture)` in `platforms` to
/// `repository:tag` with `skopeo copy --all`.
///
/// Every child has the `shared` layers followed by a layer of its own of
/// `per_platform_layer_size` bytes, seeded from its platform so that children differ from each
/// other but not between runs.
#[track_caller]
pub fn push_oci_index(
    reg: &TestRegistry,
    repository: &str,
    tag: &str,
    platforms: &[(&str, &str)],
    shared: &[Layer],
    per_platform_layer_size: usize,
) -> PushedImage {
    let layout = OciLayout::new();
    let mut children = Vec::new();
    let mut descriptors = Vec::new();
    for &(os, architecture) in platforms {
        let own = Layer::random(platform_seed(os, architecture), per_platform_layer_size);
        let layers: Vec<&Layer> = shared.iter().chain([&own]).collect();
        let image = build_image(&OCI, os, architecture, &layers);
        layout.add_image(&image, &layers);
        let mut descriptor = descriptor(OCI.manifest, &image.manifest);
        descriptor["platform"] = json!({ "os": os, "architecture": architecture });
        descriptors.push(descriptor);
        children.push(ChildManifest {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            digest: image.digest,
            manifest: image.manifest,
            blobs: image.blobs,
        });
    }
    let index = json_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": descriptors,
    }));
    layout.add_blob(&index);
    layout.tag(OCI_INDEX, &index, tag);
    push_layout(layout.path(), reg, repository, tag, true);
    check_served(reg, repository, tag, &index);

    let mut blobs: Vec<String> = Vec::new();
    for blob in children.iter().flat_map(|child| &child.blobs) {
        if !blobs.contains(blob) {
            blobs.push(blob.clone());
        }
    }
    PushedImage {
        repository: repository.to_owned(),
        tag: tag.to_owned(),
        digest: sha256_digest(&index),
        manifest: index,
        media_type: OCI_INDEX.to_owned(),
        blobs,
        children,
    }
}

fn build_image(format: &Format, os: &str, architecture: &str, layers: &[&Layer]) -> BuiltImage {
    let config = json_bytes(&json!({
        "architecture": architecture,
        "os": os,
        "config": {},
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|layer| layer.diff_id()).collect::<Vec<_>>(),
        },
    }));
    let manifest = json_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": format.manifest,
        "config": descriptor(format.config, &config),
        "layers": layers
            .iter()
            .map(|layer| descriptor(format.layer, layer.bytes()))
            .collect::<Vec<_>>(),
    }));
    let blobs = std::iter::once(sha256_digest(&config))
        .chain(layers.iter().map(|layer| layer.digest().to_owned()))
        .collect();
    BuiltImage {
        digest: sha256_digest(&manifest),
        config,
        manifest,
        blobs,
    }
}

fn descriptor(media_type: &str, content: &[u8]) -> Value {
    json!({
        "mediaType": media_type,
        "digest": sha256_digest(content),
        "size": content.len(),
    })
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

/// A seed that depends only on the platform, so its layer is the same in every run.
fn platform_seed(os: &str, architecture: &str) -> u64 {
    let hash = Sha256::digest(format!("{os}/{architecture}"));
    u64::from_be_bytes(hash[..8].try_into().unwrap())
}

#[track_caller]
fn upload_blob(reg: &TestRegistry, repository: &str, content: &[u8]) {
    let endpoint = reg.endpoint();
    let start = format!("/v2/{repository}/blobs/uploads/");
    let response = endpoint.send("POST", &start, &[], &[]).unwrap();
    assert_eq!(
        response.status,
        202,
        "POST {start} on {}: {}",
        reg.url(),
        response.text()
    );
    let location = response
        .header("Location")
        .unwrap_or_else(|| panic!("POST {start} on {} gave no Location", reg.url()));
    let separator = if location.contains('?') { '&' } else { '?' };
    let target = format!("{location}{separator}digest={}", sha256_digest(content));
    let response = endpoint
        .send(
            "PUT",
            &target,
            &[("Content-Type", "application/octet-stream")],
            content,
        )
        .unwrap();
    assert_eq!(response.status, 201, "PUT {target}: {}", response.text());
}

#[track_caller]
fn put_manifest(
    reg: &TestRegistry,
    repository: &str,
    tag: &str,
    media_type: &str,
    image: &BuiltImage,
) {
    let path = format!("/v2/{repository}/manifests/{tag}");
    let response = reg
        .endpoint()
        .send(
            "PUT",
            &path,
            &[("Content-Type", media_type)],
            &image.manifest,
        )
        .unwrap();
    assert_eq!(
        response.status,
        201,
        "PUT {path} on {}: {}",
        reg.url(),
        response.text()
    );
    assert_eq!(
        response.header("Docker-Content-Digest"),
        Some(image.digest.as_str()),
        "registry digest of PUT {path}"
    );
}

/// skopeo normally pushes a manifest unchanged; if it ever rewrote one, the pushed image would no
/// longer be the one described, so that fails here rather than confusing a later test.
#[track_caller]
fn check_served(reg: &TestRegistry, repository: &str, tag: &str, expected: &[u8]) {
    let served = skopeo_inspect_raw(reg, repository, tag)
        .unwrap_or_else(|| panic!("{repository}:{tag} missing after skopeo pushed it"));
    assert!(
        served == expected,
        "{repository}:{tag}: the registry serves\n{}\ninstead of the manifest pushed:\n{}",
        String::from_utf8_lossy(&served),
        String::from_utf8_lossy(expected)
    );
}

/// An OCI image layout in a temporary directory, as skopeo's `oci:` transport reads it.
struct OciLayout {
    dir: TempDir,
}

impl OciLayout {
    fn new() -> OciLayout {
        let dir = tempfile::Builder::new()
            .prefix("testkit-oci-")
            .tempdir()
            .unwrap();
        fs::write(
            dir.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        OciLayout { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn add_blob(&self, content: &[u8]) {
        let digest = sha256_digest(content);
        let hex = digest.trim_start_matches("sha256:");
        fs::write(self.dir.path().join("blobs/sha256").join(hex), content).unwrap();
    }

    fn add_image(&self, image: &BuiltImage, layers: &[&Layer]) {
        for layer in layers {
            self.add_blob(layer.bytes());
        }
        self.add_blob(&image.config);
        self.add_blob(&image.manifest);
    }

    /// Makes `manifest` (already added as a blob) the layout's only entry, named `tag`.
    fn tag(&self, media_type: &str, manifest: &[u8], tag: &str) {
        let mut entry = descriptor(media_type, manifest);
        entry["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
        let index = json!({ "schemaVersion": 2, "manifests": [entry] });
        fs::write(self.dir.path().join("index.json"), json_bytes(&index)).unwrap();
    }
}
