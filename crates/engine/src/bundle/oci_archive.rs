//! One tar that is an OCI image layout, read as a bundle without a meta file: what the exyb
//! fork of the original writes (`outputformat: oci`, or `both`, which adds docker-save entries
//! as hard links to the same blobs), and what `skopeo copy … oci-archive:` writes.
//!
//! The tar's `index.json` names the images (`org.opencontainers.image.ref.name`), its
//! `blobs/sha256/…` hold manifests and blobs. A meta is made from them in memory, with every
//! entry's location, so upload, verify, load and serve read it as they read our own bundles.
//! Blobs the manifests reference but the tar lacks (the fork's increments) are blobs the
//! target must already have, as with any increment.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use registry::Digest;
use registry::manifest::{self, ParsedManifest};
use serde::Deserialize;

use crate::bundle::archive::DOCKER_ORIGINAL;
use crate::bundle::meta::{BaseBlob, BundleMeta, Compressor, FORMAT_VERSION, MetaError};
use crate::bundle::parts::{EntryLocation, index_archive_part};

/// Larger index or manifest files are not what an image layout holds: refused before reading.
const MAX_JSON: u64 = 4 << 20;

/// The annotation naming an image in an OCI layout's index.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The full name containerd (and Docker 25's `docker save`) gives an image in an index.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Whether `path` is a tar file (rather than a meta file): the ustar magic at byte 257.
pub fn is_tar(path: &Path) -> bool {
    let mut header = [0u8; 263];
    File::open(path)
        .and_then(|mut file| file.read_exact(&mut header))
        .is_ok_and(|()| &header[257..262] == b"ustar")
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

#[derive(Deserialize)]
struct IndexEntry {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The meta of the OCI archive at `path`.
pub fn meta_of(path: &Path) -> Result<BundleMeta, MetaError> {
    let invalid = |detail: String| MetaError::Invalid {
        path: path.to_path_buf(),
        detail,
    };
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let size = std::fs::metadata(path)
        .map_err(|source| MetaError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let found =
        index_archive_part(path, &file_name).map_err(|problem| invalid(problem.to_string()))?;
    let mut blobs = BTreeMap::new();
    let mut index_location = None;
    let mut all = BTreeMap::new();
    for (name, location) in found {
        let name = name.strip_prefix("./").unwrap_or(&name).to_string();
        all.insert(name.clone(), location.clone());
        if name == "index.json" {
            index_location = Some(location);
        } else if let Some(hex) = name.strip_prefix("blobs/sha256/")
            && Digest::from_hex(hex).is_ok()
        {
            blobs.entry(hex.to_string()).or_insert(location);
        }
    }
    let stem = image_name_of_file(&file_name);
    let Some(index_location) = index_location else {
        // No OCI index: a docker save archive of before Docker 25, or podman's, or skopeo's.
        return crate::bundle::docker_archive::meta_of(path, &file_name, size, &all, &stem);
    };
    let index: Index = serde_json::from_slice(&read_json(path, &index_location, "index.json")?)
        .map_err(|e| invalid(format!("its index.json is not an OCI index: {e}")))?;

    let mut meta = BundleMeta {
        datafiles: BTreeMap::from([(file_name.clone(), size)]),
        compressor: Compressor::Tar,
        format: Some(FORMAT_VERSION),
        ..BundleMeta::default()
    };
    for entry in &index.manifests {
        let digest: Digest = entry
            .digest
            .parse()
            .map_err(|_| invalid(format!("index.json names digest {:?}", entry.digest)))?;
        // An OCI twin of a Docker manifest (our archives): the original, when the tar has it.
        let original = entry
            .annotations
            .get(DOCKER_ORIGINAL)
            .and_then(|original| original.parse::<Digest>().ok())
            .filter(|original| blobs.contains_key(original.hex()));
        let (digest, entry_media_type) = match original {
            Some(original) => (original, None),
            None => (digest, entry.media_type.clone()),
        };
        let location = blobs.get(digest.hex()).ok_or_else(|| {
            invalid(format!(
                "index.json names {digest}, which the tar does not hold"
            ))
        })?;
        let text = manifest_text(path, location, &digest)?;
        let containerd_name = entry.annotations.get(CONTAINERD_NAME);
        let key = match entry.annotations.get(REF_NAME) {
            // containerd's annotation carries the whole name (Docker 25's `docker save`, our
            // archives) where the OCI one may say only the tag or the path.
            Some(name)
                if containerd_name.is_some_and(|full| {
                    full.ends_with(&format!(":{name}")) || full.ends_with(&format!("/{name}"))
                }) =>
            {
                containerd_name.cloned().unwrap_or_default()
            }
            // A full reference (`host/ns/app:tag`), as the fork writes it.
            Some(name) if name.contains('/') => name.clone(),
            // A bare tag, as skopeo's `oci-archive:file.tar:tag` writes it.
            Some(tag) => format!("{stem}:{tag}"),
            None => format!("{stem}@{digest}"),
        };
        let media_type = entry_media_type
            .or_else(|| manifest::detect_media_type(None, text.as_bytes(), &key).ok())
            .unwrap_or_default();
        let mut referenced = Vec::new();
        match parse_manifest(path, &media_type, &text, &digest)? {
            ParsedManifest::Image(image) => referenced.extend(image.blobs().cloned()),
            // An index: its children that the tar holds travel with it.
            ParsedManifest::Index(index) => {
                for child in &index.manifests {
                    let Some(location) = blobs.get(child.digest.hex()) else {
                        continue;
                    };
                    let child_text = manifest_text(path, location, &child.digest)?;
                    let child_type = if child.media_type.is_empty() {
                        manifest::detect_media_type(None, child_text.as_bytes(), &key)
                            .unwrap_or_default()
                    } else {
                        child.media_type.clone()
                    };
                    if let ParsedManifest::Image(image) =
                        parse_manifest(path, &child_type, &child_text, &child.digest)?
                    {
                        referenced.extend(image.blobs().cloned());
                    }
                    meta.media_types
                        .insert(child.digest.to_string(), child_type);
                    meta.child_manifests
                        .insert(child.digest.to_string(), child_text);
                }
            }
        }
        for blob in referenced {
            let hex = blob.digest.hex().to_string();
            meta.blobs.entry(hex.clone()).or_default().push(key.clone());
            match blobs.get(&hex) {
                Some(location) => {
                    meta.entries.insert(hex, location.clone());
                }
                None => {
                    meta.base_blobs.insert(
                        hex,
                        BaseBlob {
                            size: Some(blob.size),
                            repositories: Vec::new(),
                        },
                    );
                }
            }
        }
        meta.media_types.insert(key.clone(), media_type);
        meta.manifests.insert(key, text);
    }
    if meta.manifests.is_empty() {
        return Err(invalid("its index.json names no image".to_string()));
    }
    meta.validate(path)?;
    Ok(meta)
}

fn parse_manifest(
    path: &Path,
    media_type: &str,
    text: &str,
    digest: &Digest,
) -> Result<ParsedManifest, MetaError> {
    manifest::parse(media_type, text.as_bytes(), digest.as_str()).map_err(|e| MetaError::Invalid {
        path: path.to_path_buf(),
        detail: format!("manifest {digest}: {e}"),
    })
}

/// A manifest stored in the tar, as text: it must be UTF-8 JSON and hash to its digest.
fn manifest_text(
    path: &Path,
    location: &EntryLocation,
    digest: &Digest,
) -> Result<String, MetaError> {
    let bytes = read_json(path, location, digest.as_str())?;
    let invalid = |detail: String| MetaError::Invalid {
        path: path.to_path_buf(),
        detail,
    };
    if Digest::of(&bytes) != *digest {
        return Err(invalid(format!(
            "manifest {digest} does not match its digest"
        )));
    }
    String::from_utf8(bytes).map_err(|_| invalid(format!("manifest {digest} is not UTF-8 text")))
}

/// An index or manifest file of the tar, refused unread when larger than any such file.
pub(crate) fn read_json(
    path: &Path,
    location: &EntryLocation,
    what: &str,
) -> Result<Vec<u8>, MetaError> {
    if location.size > MAX_JSON {
        return Err(MetaError::Invalid {
            path: path.to_path_buf(),
            detail: format!(
                "{what} is {} bytes, larger than any index or manifest",
                location.size
            ),
        });
    }
    let io = |source| MetaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(location.offset)).map_err(io)?;
    let mut bytes = Vec::with_capacity(location.size as usize);
    file.take(location.size)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

/// A repository name from the archive's file name, for images its index names by tag only.
fn image_name_of_file(file_name: &str) -> String {
    let stem = file_name.strip_suffix(".tar").unwrap_or(file_name);
    let name: String = stem
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = name
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if name.is_empty() {
        "image".to_string()
    } else {
        name
    }
}
