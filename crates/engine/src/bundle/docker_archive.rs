//! A `docker save` archive without an OCI index (Docker before 25, `podman save`, skopeo's
//! `docker-archive:`), read as a bundle: its `manifest.json` names each image's config file,
//! tags and layer files, and no registry manifest. One is made per image, as skopeo makes it:
//! Docker schema 2, the config and each layer by the sha256 of its bytes (hashed once, on
//! opening), a layer's media type by its first bytes (gzip or plain tar).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use registry::manifest::DOCKER_MANIFEST;
use registry::{Digest, DigestHasher};
use serde::Deserialize;
use serde_json::json;

use crate::bundle::meta::{BundleMeta, Compressor, FORMAT_VERSION, MetaError};
use crate::bundle::oci_archive::read_json;
use crate::bundle::parts::EntryLocation;

const CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

#[derive(Deserialize)]
struct SavedImage {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// A blob found in the tar: where, its digest and what it is.
struct Found {
    location: EntryLocation,
    digest: Digest,
    media_type: &'static str,
}

/// The meta of the docker-save archive at `path`, whose entries `index_archive_part` found.
pub(crate) fn meta_of(
    path: &Path,
    file_name: &str,
    size: u64,
    entries: &BTreeMap<String, EntryLocation>,
    image_stem: &str,
) -> Result<BundleMeta, MetaError> {
    let invalid = |detail: String| MetaError::Invalid {
        path: path.to_path_buf(),
        detail,
    };
    let list = entries.get("manifest.json").ok_or_else(|| {
        invalid(
            "it is a tar, but neither an OCI image layout (no index.json) nor a docker save \
             archive (no manifest.json)"
                .to_string(),
        )
    })?;
    let images: Vec<SavedImage> = serde_json::from_slice(&read_json(path, list, "manifest.json")?)
        .map_err(|e| invalid(format!("its manifest.json is not a docker save list: {e}")))?;
    let mut meta = BundleMeta {
        datafiles: BTreeMap::from([(file_name.to_string(), size)]),
        compressor: Compressor::Tar,
        format: Some(FORMAT_VERSION),
        ..BundleMeta::default()
    };
    let mut hashed: BTreeMap<String, Found> = BTreeMap::new();
    let mut find = |name: &str, config: bool| -> Result<(Digest, u64, &'static str), MetaError> {
        let name = name.strip_prefix("./").unwrap_or(name);
        if let Some(found) = hashed.get(name) {
            return Ok((found.digest.clone(), found.location.size, found.media_type));
        }
        let location = entries
            .get(name)
            .ok_or_else(|| invalid(format!("manifest.json names {name}, which the tar lacks")))?;
        let (digest, head) = hash_entry(path, location)?;
        let media_type = if config {
            CONFIG
        } else if head.starts_with(&[0x1f, 0x8b]) {
            LAYER_GZIP
        } else {
            LAYER_TAR
        };
        hashed.insert(
            name.to_string(),
            Found {
                location: location.clone(),
                digest: digest.clone(),
                media_type,
            },
        );
        Ok((digest, location.size, media_type))
    };
    for image in &images {
        let (config_digest, config_size, _) = find(&image.config, true)?;
        let mut layers = Vec::new();
        for layer in &image.layers {
            let (digest, size, media_type) = find(layer, false)?;
            layers
                .push(json!({"mediaType": media_type, "size": size, "digest": digest.to_string()}));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": CONFIG, "size": config_size, "digest": config_digest.to_string()},
            "layers": layers,
        });
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| invalid(format!("cannot describe an image: {e}")))?;
        let keys = match image.repo_tags.as_deref() {
            Some(tags) if !tags.is_empty() => tags.to_vec(),
            _ => vec![format!("{image_stem}@{}", Digest::of(text.as_bytes()))],
        };
        let mut blobs = vec![config_digest];
        blobs.extend(layers_digests(&layers));
        for key in keys {
            for blob in &blobs {
                let owners = meta.blobs.entry(blob.hex().to_string()).or_default();
                if !owners.contains(&key) {
                    owners.push(key.clone());
                }
            }
            meta.media_types
                .insert(key.clone(), DOCKER_MANIFEST.to_string());
            meta.manifests.insert(key, text.clone());
        }
    }
    for found in hashed.into_values() {
        meta.entries
            .insert(found.digest.hex().to_string(), found.location);
    }
    if meta.manifests.is_empty() {
        return Err(invalid("its manifest.json names no image".to_string()));
    }
    meta.validate(path)?;
    Ok(meta)
}

fn layers_digests(layers: &[serde_json::Value]) -> Vec<Digest> {
    layers
        .iter()
        .filter_map(|layer| layer["digest"].as_str()?.parse().ok())
        .collect()
}

/// An entry's digest, hashed as it is read, and its first bytes, which tell its kind.
fn hash_entry(path: &Path, location: &EntryLocation) -> Result<(Digest, Vec<u8>), MetaError> {
    let io = |source| MetaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(location.offset)).map_err(io)?;
    let mut content = file.take(location.size);
    let mut hasher = DigestHasher::new();
    let mut head = Vec::new();
    let mut buffer = vec![0u8; 256 << 10];
    loop {
        let read = content.read(&mut buffer).map_err(io)?;
        if read == 0 {
            break;
        }
        if head.len() < 8 {
            head.extend_from_slice(&buffer[..read.min(8)]);
        }
        hasher.update(&buffer[..read]);
    }
    Ok((hasher.finish(), head))
}
