//! The index files that make a single-file bundle loadable elsewhere: with them, the same tar
//! is an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) and a `docker load`
//! archive (`manifest.json`, `repositories`), each blob stored once for both.

use std::collections::BTreeMap;

use registry::manifest::{self, ImageManifest, ParsedManifest};
use serde_json::json;

use crate::plan::{ListOptions, plan_line};

/// How entries are named inside the data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EntryLayout {
    /// `<hex>.tar.gz`, `<hex>.json`…: what the original tool's uploader looks for.
    #[default]
    Original,
    /// `blobs/sha256/<hex>` plus the index files: an OCI layout and a docker archive at once.
    Archive,
}

/// Names, on an index entry that lists an OCI twin of a Docker manifest (see [`oci_view`]),
/// the Docker manifest it was made from, which the layout or archive also holds: a reader
/// that knows it serves the original, so an image keeps its digest through a file.
pub const DOCKER_ORIGINAL: &str = "image-transmit.docker-manifest";

/// The blob path inside an archive.
pub fn blob_path(hex: &str) -> String {
    format!("blobs/sha256/{hex}")
}

/// A name's repository and tag, for `docker load`'s `RepoTags`; a name by digest has none.
pub(crate) fn repo_tag(name: &str) -> Option<(&str, &str)> {
    match name.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') && !name.contains('@') => {
            Some((repository, tag))
        }
        _ => None,
    }
}

/// One image's entry in a `docker save` archive's `manifest.json`: its config and layers by
/// their blob paths, and its name when it has a tag. Both docker archives use it: the file a
/// bundle or `docker-archive:` writes, and the stream loaded into an engine.
pub(crate) fn docker_save_entry(name: &str, image: &ImageManifest) -> serde_json::Value {
    json!({
        "Config": blob_path(image.config.digest.hex()),
        "RepoTags": repo_tag(name).map(|_| name.to_string()).into_iter().collect::<Vec<_>>(),
        "Layers": image
            .layers
            .iter()
            .map(|layer| blob_path(layer.digest.hex()))
            .collect::<Vec<_>>(),
    })
}

/// The files that index an archive: name and content, in the order they are written.
pub fn index_files(
    manifests: &BTreeMap<String, String>,
    child_manifests: &BTreeMap<String, String>,
    media_types: &BTreeMap<String, String>,
) -> Vec<(String, Vec<u8>)> {
    let mut oci_entries = Vec::new();
    let mut docker_entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    // OCI manifests made from Docker ones, by digest: stored once, before the index files.
    let mut converted: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (key, text) in manifests {
        let Some(media_type) = media_types
            .get(key)
            .cloned()
            .or_else(|| manifest::detect_media_type(None, text.as_bytes(), key).ok())
        else {
            continue;
        };
        // The name an image is loaded under: the key without its scheme, as the original did.
        let name = key
            .split_once("://")
            .map_or(key.as_str(), |(_, rest)| rest)
            .to_string();
        let reference = plan_line(key, &ListOptions::default())
            .map(|pair| pair.source.to_string())
            .unwrap_or_else(|_| name.clone());
        let (oci_type, oci_bytes) = oci_view(
            text,
            &media_type,
            key,
            child_manifests,
            media_types,
            &mut converted,
        );
        let digest = registry::Digest::of(&oci_bytes);
        let mut annotations = json!({
            "org.opencontainers.image.ref.name": reference,
            "io.containerd.image.name": name,
        });
        if oci_type != media_type {
            annotations[DOCKER_ORIGINAL] = json!(registry::Digest::of(text.as_bytes()).to_string());
        }
        oci_entries.push(json!({
            "mediaType": oci_type,
            "digest": digest.to_string(),
            "size": oci_bytes.len(),
            "annotations": annotations,
        }));
        // docker load takes one platform per image: the image itself, or an index's first
        // child for linux/amd64 (else its first child).
        let Some(image) = single_platform(text, &media_type, key, child_manifests, media_types)
        else {
            continue;
        };
        if let (Some((repository, tag)), Some(last)) = (repo_tag(&name), image.layers.last()) {
            repositories
                .entry(repository.to_string())
                .or_default()
                .insert(tag.to_string(), last.digest.hex().to_string());
        }
        docker_entries.push(docker_save_entry(&name, &image));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": oci_entries,
    });
    let to_bytes = |value: &serde_json::Value| serde_json::to_vec(value).unwrap_or_default();
    let mut files: Vec<(String, Vec<u8>)> = converted
        .into_iter()
        .map(|(hex, bytes)| (blob_path(&hex), bytes))
        .collect();
    files.extend([
        (
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".to_string(), to_bytes(&index)),
        (
            "manifest.json".to_string(),
            to_bytes(&serde_json::Value::Array(docker_entries)),
        ),
        ("repositories".to_string(), to_bytes(&json!(repositories))),
    ]);
    files
}

/// What the OCI side of the archive lists for a manifest. OCI readers skip descriptors of
/// Docker media types, so a Docker manifest (or list) is given an OCI twin: the same config
/// and layer blobs under OCI media types. The bundle itself keeps the Docker bytes, so an
/// upload still lands the original digest; only the OCI view has its own.
pub(crate) fn oci_view(
    text: &str,
    media_type: &str,
    key: &str,
    child_manifests: &BTreeMap<String, String>,
    media_types: &BTreeMap<String, String>,
    converted: &mut BTreeMap<String, Vec<u8>>,
) -> (String, Vec<u8>) {
    let unchanged = (media_type.to_string(), text.as_bytes().to_vec());
    let mut store = |bytes: Vec<u8>| {
        converted.insert(
            registry::Digest::of(&bytes).hex().to_string(),
            bytes.clone(),
        );
        bytes
    };
    match media_type {
        manifest::DOCKER_MANIFEST => match to_oci_manifest(text) {
            Some(bytes) => (manifest::OCI_MANIFEST.to_string(), store(bytes)),
            None => unchanged,
        },
        manifest::DOCKER_MANIFEST_LIST => {
            let Ok(ParsedManifest::Index(index)) =
                manifest::parse(media_type, text.as_bytes(), key)
            else {
                return unchanged;
            };
            let mut children = Vec::new();
            for child in &index.manifests {
                let Some(child_text) = child_manifests.get(child.digest.as_str()) else {
                    return unchanged;
                };
                let child_type = media_types
                    .get(child.digest.as_str())
                    .map_or(child.media_type.as_str(), String::as_str);
                let (oci_type, bytes) = if child_type == manifest::DOCKER_MANIFEST {
                    match to_oci_manifest(child_text) {
                        Some(bytes) => (manifest::OCI_MANIFEST, store(bytes)),
                        None => return unchanged,
                    }
                } else {
                    (child_type, child_text.as_bytes().to_vec())
                };
                let mut descriptor = json!({
                    "mediaType": oci_type,
                    "digest": registry::Digest::of(&bytes).to_string(),
                    "size": bytes.len(),
                });
                if let Some(platform) = &child.platform {
                    let mut value =
                        json!({"os": platform.os, "architecture": platform.architecture});
                    if let Some(variant) = &platform.variant {
                        value["variant"] = json!(variant);
                    }
                    descriptor["platform"] = value;
                }
                children.push(descriptor);
            }
            let index = json!({
                "schemaVersion": 2,
                "mediaType": manifest::OCI_INDEX,
                "manifests": children,
            });
            let bytes = serde_json::to_vec(&index).unwrap_or_default();
            (manifest::OCI_INDEX.to_string(), store(bytes))
        }
        _ => unchanged,
    }
}

/// A Docker schema 2 manifest with OCI media types, same blobs.
fn to_oci_manifest(text: &str) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_str(text).ok()?;
    value["mediaType"] = json!(manifest::OCI_MANIFEST);
    value["config"]["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    for layer in value["layers"].as_array_mut()? {
        let oci = match layer["mediaType"].as_str()? {
            "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            }
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            }
            "application/vnd.docker.image.rootfs.diff.tar" => {
                "application/vnd.oci.image.layer.v1.tar"
            }
            other => other,
        }
        .to_string();
        layer["mediaType"] = json!(oci);
    }
    serde_json::to_vec(&value).ok()
}

fn single_platform(
    text: &str,
    media_type: &str,
    key: &str,
    child_manifests: &BTreeMap<String, String>,
    media_types: &BTreeMap<String, String>,
) -> Option<manifest::ImageManifest> {
    match manifest::parse(media_type, text.as_bytes(), key).ok()? {
        ParsedManifest::Image(image) => Some(image),
        ParsedManifest::Index(index) => {
            let preferred = index
                .manifests
                .iter()
                .find(|child| {
                    child
                        .platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
                })
                .or(index.manifests.first())?;
            let child_text = child_manifests.get(preferred.digest.as_str())?;
            let child_type = media_types
                .get(preferred.digest.as_str())
                .cloned()
                .unwrap_or_else(|| preferred.media_type.clone());
            match manifest::parse(&child_type, child_text.as_bytes(), key).ok()? {
                ParsedManifest::Image(image) => Some(image),
                ParsedManifest::Index(_) => None,
            }
        }
    }
}
