//! An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`) as a copy
//! source (what OCI tools write, and what the demo builds its sample image as) and as a
//! destination (`oci:DIR`), which skopeo, umoci and containerd read.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use registry::Digest;
use registry::manifest::{Descriptor, detect_media_type};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ByteStream, ImageDestination, ImageSource, Manifest, ManifestRole};
use crate::bundle::archive::DOCKER_ORIGINAL;
use crate::error::{Error, Result};
use crate::lock;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Deserialize)]
struct IndexEntry {
    #[serde(flatten)]
    descriptor: Descriptor,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct LayoutIndex<Entry> {
    manifests: Vec<Entry>,
}

/// A layout's `index.json` larger than this is not one a tool wrote: refused before reading.
const MAX_INDEX: u64 = 64 << 20;

fn read_index<Entry: serde::de::DeserializeOwned>(directory: &Path) -> Result<Vec<Entry>> {
    let path = directory.join("index.json");
    let invalid = |detail: String| {
        Error::Registry(registry::Error::InvalidManifest {
            reference: path.display().to_string(),
            detail,
        })
    };
    let size = std::fs::metadata(&path)
        .map_err(|e| Error::io(&path, e))?
        .len();
    if size > MAX_INDEX {
        return Err(invalid(format!("{size} bytes is too large for an index")));
    }
    let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let index: LayoutIndex<Entry> =
        serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    Ok(index.manifests)
}

pub struct OciLayoutSource {
    directory: PathBuf,
    entries: Vec<IndexEntry>,
}

impl OciLayoutSource {
    pub fn open(directory: &Path) -> Result<OciLayoutSource> {
        Ok(OciLayoutSource {
            directory: directory.to_path_buf(),
            entries: read_index(directory)?,
        })
    }

    /// The names the layout's index gives its images, as list lines: every image a job takes
    /// when it is given none. An unnamed image is listed by its digest.
    pub fn image_names(&self) -> Vec<String> {
        let stem = self
            .directory
            .file_name()
            .map(|name| name.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_else(|| "image".to_string());
        self.entries
            .iter()
            .map(|entry| match entry.annotations.get(REF_NAME) {
                Some(name) if name.contains('/') || name.contains(':') => name.clone(),
                // A bare tag, as `skopeo copy … oci:DIR:TAG` writes it.
                Some(tag) => format!("{stem}:{tag}"),
                None => format!("{stem}@{}", entry.descriptor.digest),
            })
            .collect()
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

    fn carries(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    fn may_lack_blobs(&self) -> bool {
        // Which blobs its images use is only known by reading every manifest: the check
        // before the job does that, from the local disk.
        true
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
                        // A bare tag (`skopeo copy … oci:DIR:TAG`) names the image whatever
                        // repository it is asked for under; a full name matches with or
                        // without its host.
                        e.annotations.get(REF_NAME).is_some_and(|name| {
                            name == reference
                                || *name == wanted
                                || name_without_host(name).as_deref() == Some(wanted.as_str())
                        })
                    })
                    .ok_or_else(|| self.not_found(wanted.clone()))?;
                // A Docker manifest listed through its OCI twin: the original, when it is here.
                match entry
                    .annotations
                    .get(DOCKER_ORIGINAL)
                    .and_then(|digest| digest.parse::<Digest>().ok())
                    .filter(|digest| self.blob_path(digest).is_file())
                {
                    Some(original) => (original, None),
                    None => (
                        entry.descriptor.digest.clone(),
                        Some(entry.descriptor.media_type.clone()),
                    ),
                }
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

/// `oci:DIR` as a destination: blobs and manifests are files under `blobs/sha256/`, each
/// written beside its place and renamed in once whole and on disk, so a broken transfer leaves
/// no blob behind. `index.json` is written last ([`ImageDestination::finish`]), naming each
/// image `[PREFIX/]REPOSITORY:TAG`; images already in the layout under other names stay.
pub struct OciLayoutDestination {
    directory: PathBuf,
    key_prefix: String,
    /// The index's entries as found (kept as they are, whatever fields they carry), then with
    /// this job's images.
    entries: Mutex<Vec<Value>>,
    /// Child manifests stored this job, by digest: their text and media type, which the OCI
    /// twin of a Docker list is made from.
    children: Mutex<(BTreeMap<String, String>, BTreeMap<String, String>)>,
}

impl OciLayoutDestination {
    /// Opens a layout to add images to, made when the first blob is written if `directory`
    /// does not exist or is empty. A directory holding something else is refused: nothing of
    /// it is overwritten.
    pub fn open(directory: &Path, key_prefix: String) -> Result<OciLayoutDestination> {
        let marker = directory.join("oci-layout");
        let entries = if marker.exists() {
            read_index(directory).or_else(|error| match directory.join("index.json").exists() {
                true => Err(error),
                false => Ok(Vec::new()),
            })?
        } else {
            let occupied = std::fs::read_dir(directory)
                .map(|mut listing| listing.next().is_some())
                .unwrap_or(false);
            if occupied {
                return Err(Error::NotALayout {
                    path: directory.display().to_string(),
                });
            }
            Vec::new()
        };
        // Nothing is created yet: a job refused before its first blob leaves no folder.
        Ok(OciLayoutDestination {
            directory: directory.to_path_buf(),
            key_prefix,
            entries: Mutex::new(entries),
            children: Mutex::default(),
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.directory.join("blobs/sha256").join(digest.hex())
    }

    /// Writes a blob from a stream: into a partial file, then synced and renamed in. Any
    /// failure, the stream's included, removes the partial file.
    async fn write_blob(&self, digest: &Digest, mut content: ByteStream) -> Result<()> {
        let path = self.blob_path(digest);
        let partial = self.directory.join("blobs/sha256").join(format!(
            ".{}.{:08x}.partial",
            digest.hex(),
            fastrand::u32(..)
        ));
        let written = async {
            let folder = self.directory.join("blobs/sha256");
            tokio::fs::create_dir_all(&folder)
                .await
                .map_err(|e| Error::io(&folder, e))?;
            let mut file = tokio::fs::File::create(&partial)
                .await
                .map_err(|e| Error::io(&partial, e))?;
            while let Some(chunk) = content.next().await {
                let chunk = chunk?;
                tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                    .await
                    .map_err(|e| Error::io(&partial, e))?;
            }
            file.sync_all().await.map_err(|e| Error::io(&partial, e))?;
            drop(file);
            tokio::fs::rename(&partial, &path)
                .await
                .map_err(|e| Error::io(&path, e))
        };
        // Dropped mid-way (a sibling failed, Ctrl-C): the guard still removes the partial file.
        let guard = RemoveOnDrop(Some(partial.clone()));
        let result = written.await;
        if result.is_ok() {
            std::mem::forget(guard);
        }
        result
    }

    fn key(&self, repository: &str, reference: &str) -> String {
        super::image_key(&self.key_prefix, repository, reference)
    }
}

/// `host/ns/app:tag` as `ns/app:tag`, the way a list line names an image on its source.
fn name_without_host(name: &str) -> Option<String> {
    let pair = crate::plan::plan_line(name, &crate::plan::ListOptions::default()).ok()?;
    Some(format!(
        "{}:{}",
        pair.source.repository, pair.source.reference
    ))
}

fn ref_name(entry: &Value) -> Option<&str> {
    entry["annotations"][REF_NAME].as_str()
}

/// Removes a partial file unless forgotten.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[async_trait]
impl ImageDestination for OciLayoutDestination {
    fn describe(&self) -> String {
        format!("oci:{}", self.directory.display())
    }

    async fn has_blob(&self, _repository: &str, descriptor: &Descriptor) -> Result<bool> {
        Ok(tokio::fs::metadata(self.blob_path(&descriptor.digest))
            .await
            .is_ok_and(|found| found.len() == descriptor.size))
    }

    async fn put_blob(
        &self,
        _repository: &str,
        descriptor: &Descriptor,
        content: ByteStream,
    ) -> Result<()> {
        self.write_blob(&descriptor.digest, content).await
    }

    async fn manifest_digest(&self, repository: &str, reference: &str) -> Result<Option<Digest>> {
        if let Ok(digest) = reference.parse::<Digest>() {
            let present = tokio::fs::metadata(self.blob_path(&digest)).await.is_ok();
            return Ok(present.then_some(digest));
        }
        let key = self.key(repository, reference);
        let named = lock(&self.entries)
            .iter()
            .find(|entry| ref_name(entry) == Some(key.as_str()))
            .and_then(|entry| entry["digest"].as_str()?.parse::<Digest>().ok());
        // Only if the manifest itself is there: an index naming a lost file is not an image.
        Ok(match named {
            Some(digest) if tokio::fs::metadata(self.blob_path(&digest)).await.is_ok() => {
                Some(digest)
            }
            _ => None,
        })
    }

    async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
        role: ManifestRole,
    ) -> Result<()> {
        if tokio::fs::metadata(self.blob_path(&manifest.digest))
            .await
            .is_err()
        {
            let bytes = manifest.bytes.clone();
            let content = futures_util::stream::once(async move { Ok(bytes) }).boxed();
            self.write_blob(&manifest.digest, content).await?;
        }
        let text = String::from_utf8_lossy(&manifest.bytes).into_owned();
        if role == ManifestRole::Child {
            let mut children = lock(&self.children);
            children.0.insert(manifest.digest.to_string(), text);
            children
                .1
                .insert(manifest.digest.to_string(), manifest.media_type.clone());
            return Ok(());
        }
        let key = self.key(repository, reference);
        // OCI readers (skopeo, umoci) skip Docker media types in an index: a Docker manifest
        // is listed through an OCI twin with the same blobs, as skopeo converts it. The Docker
        // bytes stay in the layout, named in an annotation, so reading the layout back gives
        // the image its own digest again.
        let mut converted = BTreeMap::new();
        let (media_type, bytes) = {
            let children = lock(&self.children);
            crate::bundle::archive::oci_view(
                &text,
                &manifest.media_type,
                &key,
                &children.0,
                &children.1,
                &mut converted,
            )
        };
        for twin in converted.into_values() {
            let digest = Digest::of(&twin);
            if tokio::fs::metadata(self.blob_path(&digest)).await.is_err() {
                let content = futures_util::stream::once(async move { Ok(twin.into()) }).boxed();
                self.write_blob(&digest, content).await?;
            }
        }
        let mut annotations = json!({ REF_NAME: key });
        if media_type != manifest.media_type {
            annotations[DOCKER_ORIGINAL] = json!(manifest.digest.to_string());
        }
        let entry = json!({
            "mediaType": media_type,
            "digest": Digest::of(&bytes).to_string(),
            "size": bytes.len(),
            "annotations": annotations,
        });
        let mut entries = lock(&self.entries);
        entries.retain(|existing| ref_name(existing) != Some(key.as_str()));
        entries.push(entry);
        Ok(())
    }

    async fn finish(&self) -> Result<Option<PathBuf>> {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": *lock(&self.entries),
        });
        let path = self.directory.join("index.json");
        let partial = self.directory.join(".index.json.partial");
        let written = (|| {
            std::fs::create_dir_all(&self.directory)?;
            std::fs::write(
                self.directory.join("oci-layout"),
                br#"{"imageLayoutVersion":"1.0.0"}"#,
            )?;
            let mut file = std::fs::File::create(&partial)?;
            file.write_all(&serde_json::to_vec_pretty(&index).map_err(std::io::Error::other)?)?;
            file.sync_all()?;
            std::fs::rename(&partial, &path)
        })();
        written.map_err(|e| Error::io(&path, e))?;
        Ok(Some(self.directory.clone()))
    }
}
