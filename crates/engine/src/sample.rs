//! A small, real image, built from nothing, for the demo: two gzip'd tar layers, a config and
//! an OCI manifest, written as an OCI image layout so every mode can start from it without a
//! registry or network.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use registry::Digest;
use serde_json::json;

use crate::error::{Error, Result};

/// What was built.
#[derive(Debug, Clone)]
pub struct SampleImage {
    pub repository: String,
    pub tag: String,
    pub digest: Digest,
    pub layers: usize,
    /// Bytes of config and layers.
    pub size: u64,
}

fn layer(files: &[(&str, &str)]) -> std::io::Result<(Vec<u8>, Digest)> {
    let mut archive = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        archive.append_data(&mut header, path, content.as_bytes())?;
    }
    let tar = archive.into_inner()?;
    let diff_id = Digest::of(&tar);
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(&tar)?;
    Ok((gzip.finish()?, diff_id))
}

/// Writes the sample image into `directory` as an OCI layout, named `repository:tag`.
pub fn write_sample_layout(directory: &Path, repository: &str, tag: &str) -> Result<SampleImage> {
    let io = |e| Error::io(directory, e);
    let blobs = directory.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(io)?;
    let store = |bytes: &[u8]| -> Result<Digest> {
        let digest = Digest::of(bytes);
        let path = blobs.join(digest.hex());
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        Ok(digest)
    };
    let layers = [
        layer(&[("etc/motd", "Hello from image-transmit.\n")]).map_err(io)?,
        layer(&[(
            "app/README",
            "This image was built, saved, served and copied by image-transmit demo.\n",
        )])
        .map_err(io)?,
    ];
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["cat", "/etc/motd"]},
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|(_, diff_id)| diff_id.to_string()).collect::<Vec<_>>(),
        },
    }))
    .unwrap_or_default();
    let config_digest = store(&config)?;
    let mut layer_descriptors = Vec::new();
    let mut size = config.len() as u64;
    for (bytes, _) in &layers {
        let digest = store(bytes)?;
        size += bytes.len() as u64;
        layer_descriptors.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest.to_string(),
            "size": bytes.len(),
        }));
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": registry::manifest::OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": layer_descriptors,
    }))
    .unwrap_or_default();
    let digest = store(&manifest)?;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": registry::manifest::OCI_MANIFEST,
            "digest": digest.to_string(),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": format!("{repository}:{tag}")},
        }],
    }))
    .unwrap_or_default();
    std::fs::write(directory.join("index.json"), index).map_err(io)?;
    std::fs::write(
        directory.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(io)?;
    Ok(SampleImage {
        repository: repository.to_string(),
        tag: tag.to_string(),
        digest,
        layers: layers.len(),
        size,
    })
}
