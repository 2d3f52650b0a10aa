//! Uploading: a bundle as a copy source. The data files are indexed once (from the meta's
//! entry table, or by one scan of tar headers for the original tool's bundles), and each blob
//! is streamed straight from its part; the engine verifies its digest on the way.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use registry::Digest;
use registry::manifest::{Descriptor, detect_media_type};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::bundle::compress::{Unpacked, needs_unpacking, unpack};
use crate::bundle::meta::{BundleMeta, Compressor};
use crate::bundle::parts::{EntryLocation, PartIndex, check_parts, index_bundle};
use crate::bundle::squashfs::{self, RewrittenImage};
use crate::bundle::writer::BaseBundle;
use crate::error::{Error, Result};
use crate::plan::{ListOptions, plan_line};
use crate::transport::{ByteStream, ImageSource, Manifest};

/// Read size per chunk: few reads per blob, little memory.
const CHUNK: usize = 64 << 10;

pub struct BundleReader {
    /// Where the entries are read: the meta's directory, or a scratch copy.
    directory: PathBuf,
    /// The meta's directory, where its bases' metas are.
    bundle_directory: PathBuf,
    name: String,
    meta: BundleMeta,
    index: PartIndex,
    /// `(repository, tag or digest)` as an image key names it → the key.
    keys: HashMap<(String, String), String>,
    /// Where blobs this bundle relies on sit on the target, by digest (target repositories).
    base_locations: HashMap<Digest, Vec<String>>,
    /// The unpacked copy of a zstd or squashfs bundle, removed with the reader.
    _unpacked: Option<Unpacked>,
    /// Images whose manifests changed in reading a squashfs bundle.
    rewritten: Vec<RewrittenImage>,
}

fn first_problem(mut problems: Vec<crate::bundle::parts::PartError>) -> Error {
    Error::Part(problems.remove(0))
}

impl BundleReader {
    /// Opens a bundle by its meta file: reads the meta, indexes the parts. Part sizes are
    /// checked by the caller first ([`crate::bundle::parts::check_parts`]) so it can report
    /// every problem at once.
    pub fn open(meta_path: &Path) -> Result<BundleReader> {
        let meta = BundleMeta::read(meta_path)?;
        meta.compressor.ensure_supported(meta_path)?;
        let bundle_directory = meta_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut rewritten = Vec::new();
        // A compressed bundle is read from an unpacked copy, where entries sit at their
        // offsets; a squashfs bundle from a tar bundle made from it, with its own meta.
        let (meta, directory, index, unpacked) = if meta.compressor == Compressor::Squashfs {
            check_parts(&meta, &bundle_directory).map_err(first_problem)?;
            let converted = squashfs::convert(&meta, meta_path)?;
            let index = index_bundle(&converted.meta, &converted.scratch.directory)?;
            rewritten = converted.rewritten;
            (
                converted.meta,
                converted.scratch.directory.clone(),
                index,
                Some(converted.scratch),
            )
        } else if needs_unpacking(&meta, &bundle_directory) {
            check_parts(&meta, &bundle_directory).map_err(first_problem)?;
            let (plain, unpacked) = unpack(&meta, &bundle_directory)?;
            let index = index_bundle(&plain, &unpacked.directory)?;
            (meta, unpacked.directory.clone(), index, Some(unpacked))
        } else {
            let index = index_bundle(&meta, &bundle_directory)?;
            (meta, bundle_directory.clone(), index, None)
        };
        let mut keys = HashMap::new();
        for key in meta.manifests.keys() {
            if let Ok(pair) = plan_line(key, &ListOptions::default()) {
                keys.insert(
                    (
                        pair.source.repository.clone(),
                        pair.source.reference.to_string(),
                    ),
                    key.clone(),
                );
            }
        }
        let name = meta_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(BundleReader {
            directory,
            bundle_directory,
            name,
            meta,
            index,
            keys,
            base_locations: HashMap::new(),
            _unpacked: unpacked,
            rewritten,
        })
    }

    /// Images whose manifest digests differ from the meta's, with the old and new digests:
    /// only a squashfs bundle has them (see [`squashfs::RewriteReason`]).
    pub fn rewritten_images(&self) -> &[RewrittenImage] {
        &self.rewritten
    }

    /// The base bundles (meta file names, as this bundle's meta records them) that carried
    /// any of `blobs`, each with its path when it sits beside this bundle.
    pub fn bases_of(&self, blobs: &[Digest]) -> Vec<(String, Option<PathBuf>)> {
        let mut names: Vec<String> = self
            .meta
            .blobs_assumed()
            .into_iter()
            .filter(|assumed| blobs.contains(&assumed.digest))
            .flat_map(|assumed| assumed.bases)
            .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let path = self.bundle_directory.join(&name);
                let found = path.is_file().then_some(path);
                (name, found)
            })
            .collect()
    }

    pub fn meta(&self) -> &BundleMeta {
        &self.meta
    }

    /// The image keys, in the meta's order: the default upload list.
    pub fn image_keys(&self) -> Vec<String> {
        self.meta.manifests.keys().cloned().collect()
    }

    /// Whether this bundle's data files hold the blob.
    pub fn carries(&self, digest: &Digest) -> bool {
        self.index.get(digest.hex()).is_some()
    }

    /// Tells the reader where base blobs live on the target, so the engine can mount them
    /// into new repositories instead of failing (the original's "Blob not found in datafiles").
    pub fn set_base_locations(&mut self, locations: HashMap<Digest, Vec<String>>) {
        self.base_locations = locations;
    }

    /// Blobs this bundle leaves to its bases, with the source repositories the bases put
    /// them under. The original's metas do not say; their base metas, found next to this one,
    /// do.
    pub fn base_repositories(&self) -> HashMap<Digest, Vec<String>> {
        let mut bases: HashMap<String, Option<BaseBundle>> = HashMap::new();
        let mut result = HashMap::new();
        for assumed in self.meta.blobs_assumed() {
            let mut repositories = assumed.repositories.clone();
            if repositories.is_empty() {
                for name in &assumed.bases {
                    let base = bases.entry(name.clone()).or_insert_with(|| {
                        BaseBundle::from_meta(&self.bundle_directory.join(name)).ok()
                    });
                    if let Some(blob) = base.as_ref().and_then(|b| b.blobs.get(&assumed.digest)) {
                        repositories.extend(blob.repositories.iter().cloned());
                    }
                }
            }
            result.insert(assumed.digest, repositories);
        }
        result
    }

    fn locate(&self, hex: &str) -> Option<&EntryLocation> {
        self.index.get(hex)
    }

    async fn read_entry(&self, location: &EntryLocation) -> Result<Bytes> {
        let mut stream = self.open_entry(location).await?;
        let mut bytes = Vec::with_capacity(location.size as usize);
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok(bytes.into())
    }

    async fn open_entry(&self, location: &EntryLocation) -> Result<ByteStream> {
        let path = self.directory.join(&location.file);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Error::io(&path, e))?;
        file.seek(SeekFrom::Start(location.offset))
            .await
            .map_err(|e| Error::io(&path, e))?;
        let part = location.file.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(location.size), CHUNK)
            .map_err(move |e| registry::Error::Transfer {
                host: part.clone(),
                detail: e.to_string(),
            });
        Ok(stream.boxed())
    }

    fn not_found(&self, reference: String) -> Error {
        Error::Registry(registry::Error::ManifestNotFound {
            host: self.name.clone(),
            reference,
        })
    }
}

/// What `image-transmit serve` needs beyond [`ImageSource`]: a blob's size before its bytes
/// (for `HEAD` and `Content-Length`) and a slice of it (for HTTP `Range` requests, which
/// clients use to resume a broken pull).
impl BundleReader {
    /// The size of a blob this bundle's data files hold, or `None` if they do not hold it.
    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        self.locate(digest.hex()).map(|location| location.size)
    }

    /// Streams `length` bytes of a blob starting `start` bytes into it, straight from its
    /// part: a seek and a bounded read, never the whole blob in memory. A slice that does not
    /// lie inside the blob is refused rather than read from a neighbouring entry.
    pub async fn blob_range(&self, digest: &Digest, start: u64, length: u64) -> Result<ByteStream> {
        let location = self.locate(digest.hex()).ok_or_else(|| {
            Error::Registry(registry::Error::BlobNotFound {
                host: self.name.clone(),
                repository: String::new(),
                digest: digest.clone(),
            })
        })?;
        let path = self.directory.join(&location.file);
        let inside = start
            .checked_add(length)
            .is_some_and(|end| end <= location.size);
        if !inside {
            return Err(Error::io(
                &path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "bytes {start}..{start}+{length} are not inside blob {digest} of {} bytes",
                        location.size
                    ),
                ),
            ));
        }
        self.open_entry(&EntryLocation {
            file: location.file.clone(),
            offset: location.offset + start,
            size: length,
        })
        .await
    }
}

#[async_trait]
impl ImageSource for BundleReader {
    fn carries(&self, digest: &Digest) -> bool {
        BundleReader::carries(self, digest)
    }

    fn may_lack_blobs(&self) -> bool {
        self.meta
            .referenced_blobs()
            .into_keys()
            .any(|hex| self.locate(&hex).is_none())
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        let (text, media_type) = if let Some(key) = self
            .keys
            .get(&(repository.to_string(), reference.to_string()))
        {
            (
                self.meta.manifests[key].clone().into_bytes(),
                self.meta.media_types.get(key).cloned(),
            )
        } else if let Some(text) = self.meta.child_manifests.get(reference) {
            (
                text.clone().into_bytes(),
                self.meta.media_types.get(reference).cloned(),
            )
        } else if let Ok(digest) = reference.parse::<Digest>()
            && let Some(location) = self.index.manifest(digest.hex())
        {
            (self.read_entry(location).await?.to_vec(), None)
        } else {
            return Err(self.not_found(format!("{repository}:{reference}")));
        };
        let digest = Digest::of(&text);
        if let Ok(expected) = reference.parse::<Digest>()
            && expected != digest
        {
            return Err(Error::Registry(registry::Error::DigestMismatch {
                expected,
                actual: digest,
                bytes: text.len() as u64,
            }));
        }
        let label = format!("{}/{repository}:{reference}", self.name);
        let media_type = match media_type {
            Some(media_type) => media_type,
            None => detect_media_type(None, &text, &label)?,
        };
        Ok(Manifest {
            bytes: text.into(),
            media_type,
            digest,
        })
    }

    async fn blob(&self, repository: &str, descriptor: &Descriptor) -> Result<ByteStream> {
        let location = self.locate(descriptor.digest.hex()).ok_or_else(|| {
            Error::Registry(registry::Error::BlobNotFound {
                host: self.name.clone(),
                repository: repository.to_string(),
                digest: descriptor.digest.clone(),
            })
        })?;
        self.open_entry(location).await
    }

    fn blob_origin(&self, digest: &Digest) -> Option<String> {
        self.locate(digest.hex())
            .map(|location| location.file.clone())
    }

    fn mount_hints(&self, digest: &Digest) -> Vec<String> {
        self.base_locations.get(digest).cloned().unwrap_or_default()
    }
}
