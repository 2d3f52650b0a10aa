//! A registry as a source and as a destination.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use registry::manifest::Descriptor;
use registry::{BlobBody, BodyFrom, Digest, MountOutcome, Registry, UploadSession};

use super::{ByteStream, ImageDestination, ImageSource, Manifest, ManifestRole};
use crate::error::Result;

pub struct RegistrySource {
    registry: Registry,
}

impl RegistrySource {
    pub fn new(registry: Registry) -> RegistrySource {
        RegistrySource { registry }
    }
}

#[async_trait]
impl ImageSource for RegistrySource {
    fn describe(&self) -> String {
        self.registry.host().to_string()
    }

    async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest> {
        Ok(self.registry.get_manifest(repository, reference).await?)
    }

    async fn blob(&self, repository: &str, descriptor: &Descriptor) -> Result<ByteStream> {
        let blob = self
            .registry
            .get_blob(repository, &descriptor.digest)
            .await?;
        Ok(blob.stream.boxed())
    }

    async fn blob_from(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        offset: u64,
    ) -> Result<ByteStream> {
        let blob = self
            .registry
            .get_blob_from(repository, &descriptor.digest, offset)
            .await?;
        Ok(blob.stream)
    }
}

/// The size of the pieces an upload's body is cut into (see `in_small_pieces`).
const UPLOAD_PIECE: usize = 16 << 10;

pub struct RegistryDestination {
    registry: Registry,
    /// Uploads opened before their transfer, by a refused mount (202) or by `prepare_blob`,
    /// used by the upload that follows instead of opening another.
    opened: Mutex<HashMap<(String, Digest), UploadSession>>,
}

impl RegistryDestination {
    pub fn new(registry: Registry) -> RegistryDestination {
        RegistryDestination {
            registry,
            opened: Mutex::new(HashMap::new()),
        }
    }
}

impl RegistryDestination {
    fn keep_open(&self, repository: &str, descriptor: &Descriptor, session: UploadSession) {
        self.opened
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((repository.to_string(), descriptor.digest.clone()), session);
    }

    async fn upload(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        content: ByteStream,
        again: Option<&dyn BodyFrom>,
    ) -> Result<()> {
        let opened = self
            .opened
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&(repository.to_string(), descriptor.digest.clone()));
        let session = match opened {
            Some(session) => session,
            None => self.registry.start_upload(repository).await?,
        };
        self.registry
            .upload_blob(
                session,
                &descriptor.digest,
                descriptor.size,
                in_small_pieces(content),
                again,
            )
            .await?;
        Ok(())
    }
}

/// Chunks from a registry download are slices of that connection's read buffer (which grows to
/// ~400 KiB). An upload queues up to 16 chunks before the socket takes them; queued slices would
/// keep the download's buffers alive and make it allocate new ones. Small copies bound the
/// queue and free the download's buffer at once.
fn in_small_pieces(content: ByteStream) -> ByteStream {
    content
        .flat_map(|chunk| {
            let pieces: Vec<Result<Bytes, registry::Error>> = match chunk {
                Ok(bytes) => bytes
                    .chunks(UPLOAD_PIECE)
                    .map(|piece| Ok(Bytes::copy_from_slice(piece)))
                    .collect(),
                Err(error) => vec![Err(error)],
            };
            futures_util::stream::iter(pieces)
        })
        .boxed()
}

/// The bytes of an upload read again, cut as the first reading was.
struct SmallPieces<'a>(&'a dyn BodyFrom);

impl BodyFrom for SmallPieces<'_> {
    fn body_from(&self, offset: u64) -> BoxFuture<'_, registry::Result<BlobBody>> {
        Box::pin(async move { Ok(in_small_pieces(self.0.body_from(offset).await?)) })
    }
}

#[async_trait]
impl ImageDestination for RegistryDestination {
    fn describe(&self) -> String {
        self.registry.host().to_string()
    }

    async fn has_blob(&self, repository: &str, descriptor: &Descriptor) -> Result<bool> {
        let size = self
            .registry
            .blob_size(repository, &descriptor.digest, true)
            .await?;
        Ok(size.is_some())
    }

    async fn mount_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        from: &str,
    ) -> Result<bool> {
        match self
            .registry
            .mount_blob(repository, &descriptor.digest, from)
            .await
        {
            Ok(MountOutcome::Mounted) => Ok(true),
            Ok(MountOutcome::Upload(session)) => {
                self.keep_open(repository, descriptor, session);
                Ok(false)
            }
            // A registry that rejects mounts outright still takes uploads.
            Err(error) => {
                tracing::debug!(%error, "mount refused");
                Ok(false)
            }
        }
    }

    async fn prepare_blob(&self, repository: &str, descriptor: &Descriptor) -> Result<()> {
        let key = (repository.to_string(), descriptor.digest.clone());
        let opened = self
            .opened
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains_key(&key);
        if !opened {
            let session = self.registry.start_upload(repository).await?;
            self.keep_open(repository, descriptor, session);
        }
        Ok(())
    }

    async fn put_blob(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        content: ByteStream,
    ) -> Result<()> {
        self.upload(repository, descriptor, content, None).await
    }

    async fn put_blob_resuming(
        &self,
        repository: &str,
        descriptor: &Descriptor,
        content: ByteStream,
        again: &dyn BodyFrom,
    ) -> Result<()> {
        let again = SmallPieces(again);
        self.upload(repository, descriptor, content, Some(&again))
            .await
    }

    async fn manifest_digest(&self, repository: &str, reference: &str) -> Result<Option<Digest>> {
        Ok(self
            .registry
            .head_manifest(repository, reference, true)
            .await?)
    }

    async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
        _role: ManifestRole,
    ) -> Result<()> {
        self.registry
            .put_manifest(repository, reference, &manifest.bytes, &manifest.media_type)
            .await?;
        Ok(())
    }
}
