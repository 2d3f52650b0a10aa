//! An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`) as a copy
//! source: what OCI tools write, and what the demo builds its sample image as.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use registry::Digest;
use registry::manifest::{Descriptor, detect_media_type};
use serde::Deserialize;

use super::{ByteStream, ImageSource, Manifest};
use crate::error::{Error, Result};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Deserialize)]
struct IndexEntry {
    #[serde(flatten)]
    descriptor: Descriptor,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct LayoutIndex {
    manifests: Vec<IndexEntry>,
}

pub struct OciLayoutSource {
    directory: PathBuf,
    entries: Vec<IndexEntry>,
}

impl OciLayoutSource {
    pub fn open(directory: &Path) -> Result<OciLayoutSource> {
        let path = directory.join("index.json");
        let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let index: LayoutIndex = serde_json::from_slice(&text).map_err(|e| {
            Error::Registry(registry::Error::InvalidManifest {
                reference: path.display().to_string(),
                detail: e.to_string(),
            })
        })?;
        Ok(OciLayoutSource {
            directory: directory.to_path_buf(),
            entries: index.manifests,
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.directory.join("blobs/sha256").join(digest.hex())
    }

    fn not_found(&self, reference: String) -> Error {
        Error::Registry(registry::Error::ManifestNotFound {
            host: self.describe(),
            reference,
        })
    }
}

#[async_trait]
impl ImageSource for OciLayoutSource {
    fn describe(&self) -> String {
        self.directory.display().to_string()
    }

    async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        let wanted = format!("{repository}:{reference}");
        let (digest, media_type) = match reference.parse::<Digest>() {
            Ok(digest) => {
                let media_type = self
                    .entries
                    .iter()
                    .find(|e| e.descriptor.digest == digest)
                    .map(|e| e.descriptor.media_type.clone());
                (digest, media_type)
            }
            Err(_) => {
                let entry = self
                    .entries
                    .iter()
                    .find(|e| {
                        e.annotations
                            .get(REF_NAME)
                            .is_some_and(|name| name == reference || *name == wanted)
                    })
                    .ok_or_else(|| self.not_found(wanted.clone()))?;
                (
                    entry.descriptor.digest.clone(),
                    Some(entry.descriptor.media_type.clone()),
                )
            }
        };
        let path = self.blob_path(&digest);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|_| self.not_found(wanted.clone()))?;
        let actual = Digest::of(&bytes);
        if actual != digest {
            return Err(Error::Registry(registry::Error::DigestMismatch {
                expected: digest,
                actual,
                bytes: bytes.len() as u64,
            }));
        }
        let media_type = match media_type.filter(|m| !m.is_empty()) {
            Some(media_type) => media_type,
            None => detect_media_type(None, &bytes, &wanted)?,
        };
        Ok(Manifest {
            bytes: bytes.into(),
            media_type,
            digest,
        })
    }

    async fn blob(&self, repository: &str, descriptor: &Descriptor) -> Result<ByteStream> {
        let path = self.blob_path(&descriptor.digest);
        let file = tokio::fs::File::open(&path).await.map_err(|_| {
            Error::Registry(registry::Error::BlobNotFound {
                host: self.describe(),
                repository: repository.to_string(),
                digest: descriptor.digest.clone(),
            })
        })?;
        let origin = path.display().to_string();
        Ok(tokio_util::io::ReaderStream::with_capacity(file, 256 << 10)
            .map_err(move |e| registry::Error::Transfer {
                host: origin.clone(),
                detail: e.to_string(),
            })
            .boxed())
    }
}
