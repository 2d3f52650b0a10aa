//! The two seams of the engine: where images come from and where they go. Every mode
//! (copy, save, upload, load, serve) is the same copy between one source and one destination.

pub mod containerd;
pub mod docker_daemon;
pub mod oci_layout;
pub mod registry;

mod location;
pub use location::{Location, LocationError, TRANSPORTS};

use ::registry::manifest::Descriptor;
use ::registry::{BodyFrom, Digest};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::error::Result;

pub use ::registry::Manifest;

/// A stream of blob bytes. Errors are registry errors since every transport maps to them.
pub type ByteStream = BoxStream<'static, Result<Bytes, ::registry::Error>>;

/// Where images are read from.
#[async_trait]
pub trait ImageSource: Send + Sync {
    /// A short description for messages (`registry 10.0.0.1:5000`).
    fn describe(&self) -> String;

    /// The manifest at `reference` (a tag or a digest) of `repository`.
    async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest>;

    /// Opens a blob for streaming. The engine verifies size and digest as it flows.
    async fn blob(&self, repository: &str, descriptor: &Descriptor) -> Result<ByteStream>;

    /// The blob's bytes from `offset` on, for a destination that continues a broken upload.
    /// By default the blob is read from its start and the first `offset` bytes are dropped; a
    /// source that can start midway (a registry, with `Range`) does.
    async fn blob_from(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        offset: u64,
    ) -> Result<ByteStream> {
        let content = self.blob(repository, descriptor).await?;
        Ok(skip_bytes(content, offset))
    }

    /// Where a blob comes from, for a source that can say more than its own name (a bundle
    /// names the data file), so a damaged copy can be found.
    fn blob_origin(&self, _digest: &Digest) -> Option<String> {
        None
    }

    /// Destination repositories where a blob this source does not carry is known to be
    /// already (an incremental bundle's base blobs), to mount from.
    fn mount_hints(&self, _digest: &Digest) -> Vec<String> {
        Vec::new()
    }

    /// Whether this source can give the blob. An incremental bundle cannot give the blobs it
    /// leaves to its bases: those must already be at the destination
    /// ([`crate::precheck::lacking_blobs`] says so before anything moves).
    fn carries(&self, _digest: &Digest) -> bool {
        true
    }

    /// Whether some image here may need a blob this source does not carry: only then is the
    /// check before a job worth its manifest reads (a registry carries all it names).
    fn may_lack_blobs(&self) -> bool {
        false
    }
}

/// Where images are written to.
#[async_trait]
pub trait ImageDestination: Send + Sync {
    fn describe(&self) -> String;

    /// Whether `repository` already holds the blob.
    async fn has_blob(&self, repository: &str, descriptor: &Descriptor) -> Result<bool>;

    /// Links a blob that `from` already holds into `repository` without transfer. Returns
    /// false when the destination cannot (the caller then uploads). A destination with one
    /// store for every repository (a bundle, a layout, an archive) never needs to: `has_blob`
    /// already found any copy.
    async fn mount_blob(
        &self,
        _repository: &str,
        _descriptor: &Descriptor,
        _from: &str,
    ) -> Result<bool> {
        Ok(false)
    }

    /// Gets ready to receive a blob, before its transfer takes one of the job's `maxconn`
    /// places: a registry opens the upload now, so the place is held only while bytes move.
    async fn prepare_blob(&self, _repository: &str, _descriptor: &Descriptor) -> Result<()> {
        Ok(())
    }

    /// Stores a blob from a stream. The stream fails at its end if the content does not match
    /// the descriptor, and the destination must then commit nothing.
    async fn put_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        content: ByteStream,
    ) -> Result<()>;

    /// [`put_blob`](Self::put_blob) for a destination that can continue a broken upload: it
    /// asks `again` for the bytes from where it stands. Others ignore `again`.
    async fn put_blob_resuming(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        content: ByteStream,
        _again: &dyn BodyFrom,
    ) -> Result<()> {
        self.put_blob(repository, descriptor, content).await
    }

    /// The digest of the manifest `reference` names, if the destination has one.
    async fn manifest_digest(&self, repository: &str, reference: &str) -> Result<Option<Digest>>;

    /// Stores manifest bytes, unchanged, under `reference` (tag or digest). `role` tells an
    /// index's child from the manifest the image is known by, which bundles record apart.
    async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
        role: ManifestRole,
    ) -> Result<()>;

    /// Ends the job's writing: what only the whole job knows (a bundle's meta, an archive's or
    /// a layout's index) is written now, after every image. Images that did not complete are
    /// left out of it. Returns the file that names the result, when there is one to show.
    async fn finish(&self) -> Result<Option<std::path::PathBuf>> {
        Ok(None)
    }
}

/// Where whole images go in one piece: a container engine that loads `docker save` archives
/// (the Docker Engine API, containerd). It cannot take blobs one by one, so the engine builds
/// one archive per image and streams it in.
#[async_trait]
pub trait ImageLoader: Send + Sync {
    fn describe(&self) -> String;

    /// Whether `name` already names the image whose config (the image ID) is `config`.
    async fn has_image(&self, name: &str, config: &Digest) -> Result<bool>;

    /// Loads one image from a `docker save` archive streamed as `archive`, tagged `name`.
    /// Fails when the stream breaks or the engine rejects the archive; a failed load must
    /// leave no tag behind.
    async fn load(&self, name: &str, archive: ByteStream) -> Result<()>;
}

/// `content` without its first `count` bytes.
fn skip_bytes(content: ByteStream, count: u64) -> ByteStream {
    use futures_util::StreamExt;
    let mut left = count;
    content
        .filter_map(move |chunk| {
            let kept = match chunk {
                Ok(mut bytes) if left > 0 => {
                    let dropped = left.min(bytes.len() as u64);
                    left -= dropped;
                    let rest = bytes.split_off(dropped as usize);
                    (!rest.is_empty()).then_some(Ok(rest))
                }
                other => Some(other),
            };
            std::future::ready(kept)
        })
        .boxed()
}

/// The name a file destination (a bundle, an archive, a layout) gives an image:
/// `[prefix/]repository:tag`, or `@digest` for an image pinned by digest.
pub(crate) fn image_key(prefix: &str, repository: &str, reference: &str) -> String {
    let separator = if reference.starts_with("sha256:") {
        '@'
    } else {
        ':'
    };
    match prefix.trim_end_matches('/') {
        "" => format!("{repository}{separator}{reference}"),
        prefix => format!("{prefix}/{repository}{separator}{reference}"),
    }
}

/// Which manifest of an image is being stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestRole {
    /// A platform manifest of an index, stored by digest before the index.
    Child,
    /// The manifest the image's reference names, stored last.
    Top,
}
