//! Loading into a container engine: each image goes in whole, as one `docker save` archive
//! built on the fly from the source's blobs (config, layers, then `manifest.json`), so nothing
//! is staged on disk and every blob is verified against its digest as it streams. Docker and
//! containerd both read the archive to its end before they tag anything, so a stream that
//! breaks on a bad blob leaves no image behind.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use registry::manifest::{self, Descriptor, ImageManifest, ParsedManifest};

use super::{Copied, CopyJob, Resolved};
use crate::bundle::archive::{blob_path, docker_save_entry};
use crate::checked_stream::{StreamFailure, Verified};
use crate::error::{Error, Result};
use crate::events::{BlobOutcome, Event, ImageId};
use crate::transport::{ByteStream, ImageLoader};

/// A tar block; headers and padding come in these.
const BLOCK: usize = 512;

/// The first error that broke an archive stream: the loader only sees its body end early.
#[derive(Clone, Default)]
struct OpenFailure(Arc<Mutex<Option<Error>>>);

impl OpenFailure {
    fn record(&self, error: Error) -> registry::Error {
        let stand_in = registry::Error::Transfer {
            host: "source".to_string(),
            detail: error.to_string(),
        };
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(error);
        stand_in
    }

    fn take(&self) -> Option<Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl CopyJob {
    /// One attempt at loading one image: the platform chosen, then one archive streamed in.
    pub(super) async fn load_once(
        &self,
        loader: &dyn ImageLoader,
        image: &Resolved,
    ) -> Result<Copied> {
        let source = &image.pair.source;
        let label = format!("{}/{}", self.source.describe(), source);
        let top = self.top_manifest(image).await?;
        let (chosen, parsed) = match manifest::parse(&top.media_type, &top.bytes, &label)? {
            ParsedManifest::Image(parsed) => (top, parsed),
            // A container engine holds one platform of an image: the first one selected.
            ParsedManifest::Index(index) => {
                let children = self.select_children(&index.manifests, &label)?;
                self.fetch_child(source, children[0], &label).await?
            }
        };
        let name = self.loaded_name(image);
        if loader.has_image(&name, &parsed.config.digest).await? {
            return Ok(Copied::unchanged(&chosen.digest));
        }
        let _permit = self
            .transfers
            .acquire()
            .await
            .map_err(|_| Error::Cancelled)?;
        // A layer repeated within the image travels once in the archive: count it once.
        let mut seen = std::collections::HashSet::new();
        let blobs: Vec<Descriptor> = std::iter::once(&parsed.config)
            .chain(&parsed.layers)
            .filter(|blob| seen.insert(blob.digest.clone()))
            .cloned()
            .collect();
        self.emit(Event::ImageSized {
            image: image.id,
            bytes: blobs
                .iter()
                .fold(0u64, |total, b| total.saturating_add(b.size)),
        });

        let content_failure = StreamFailure::default();
        let open_failure = OpenFailure::default();
        let counted = Arc::new(AtomicU64::new(0));
        let archive = self.docker_archive(
            image.id,
            &source.repository,
            &name,
            &parsed,
            &content_failure,
            &open_failure,
            &counted,
        );
        let outcome = loader.load(&name, archive).await;
        self.counters
            .bytes
            .fetch_add(counted.load(Relaxed), Relaxed);
        if let Err(error) = outcome {
            // Say what broke the stream rather than what the engine made of a short archive.
            if let Some(content) = content_failure.take() {
                return Err(Error::from(content));
            }
            return Err(open_failure.take().unwrap_or(error));
        }
        for blob in &blobs {
            self.counters.transferred.fetch_add(1, Relaxed);
            self.emit(Event::BlobDone {
                image: image.id,
                digest: blob.digest.clone(),
                size: blob.size,
                outcome: BlobOutcome::Transferred,
            });
        }
        Ok(Copied::pushed(&chosen.digest))
    }

    /// The name an image is tagged with in the engine: the planned target name, after the
    /// host the user asked for (the original tool used the source registry's).
    pub(super) fn loaded_name(&self, image: &Resolved) -> String {
        match self.options.loaded_name_host.as_deref() {
            Some(host) if !host.is_empty() => format!("{host}/{}", image.pair.target),
            _ => image.pair.target.to_string(),
        }
    }

    /// The archive of one image, in `docker save` layout with blobs named as in an OCI layout
    /// (`blobs/sha256/<hex>`, as Docker 25 writes them): blobs open one after another, as the
    /// stream reaches them, each verified while it flows.
    #[allow(clippy::too_many_arguments)]
    fn docker_archive(
        &self,
        image: ImageId,
        repository: &str,
        name: &str,
        parsed: &ImageManifest,
        content_failure: &StreamFailure,
        open_failure: &OpenFailure,
        counted: &Arc<AtomicU64>,
    ) -> ByteStream {
        let index = serde_json::Value::Array(vec![docker_save_entry(name, parsed)]);
        let index = serde_json::to_vec(&index).unwrap_or_default();

        // Layers shared within the image (the same empty layer twice) are stored once.
        let mut seen = std::collections::HashSet::new();
        let blobs: Vec<Descriptor> = std::iter::once(&parsed.config)
            .chain(&parsed.layers)
            .filter(|blob| seen.insert(blob.digest.clone()))
            .cloned()
            .collect();

        let source = self.source.clone();
        let observer = self.observer.clone();
        let repository = repository.to_string();
        let content_failure = content_failure.clone();
        let open_failure = open_failure.clone();
        let counted = counted.clone();
        let rate_limit = self.options.rate_limit.clone();
        let entries = stream::iter(blobs).then(move |blob| {
            let source = source.clone();
            let observer = observer.clone();
            let repository = repository.clone();
            let content_failure = content_failure.clone();
            let open_failure = open_failure.clone();
            let counted = counted.clone();
            let rate_limit = rate_limit.clone();
            async move {
                let content = match source.blob(&repository, &blob).await {
                    Ok(content) => match &rate_limit {
                        Some(limit) => limit.limit(content),
                        None => content,
                    },
                    Err(error) => {
                        return stream::once(async move { Err(open_failure.record(error)) })
                            .boxed();
                    }
                };
                observer.event(&Event::BlobStarted {
                    image,
                    digest: blob.digest.clone(),
                    size: blob.size,
                });
                let verified = Verified::new(
                    content,
                    &blob,
                    Box::new(move |bytes| {
                        counted.fetch_add(bytes, Relaxed);
                        observer.event(&Event::BlobProgress { image, bytes });
                    }),
                    content_failure,
                );
                let header = tar_header(&blob_path(blob.digest.hex()), blob.size);
                stream::once(async move { Ok(header) })
                    .chain(verified.boxed())
                    .chain(stream::once(async move { Ok(padding(blob.size)) }))
                    .boxed()
            }
        });
        let index_entry = [
            Ok(tar_header("manifest.json", index.len() as u64)),
            Ok(Bytes::from(padded(index))),
            // The end of a tar: two empty blocks.
            Ok(Bytes::from(vec![0u8; 2 * BLOCK])),
        ];
        entries
            .flatten()
            .chain(stream::iter(index_entry))
            .filter(|chunk| std::future::ready(!matches!(chunk, Ok(bytes) if bytes.is_empty())))
            .boxed()
    }
}

fn tar_header(name: &str, size: u64) -> Bytes {
    let mut header = tar::Header::new_ustar();
    // Names here are at most `blobs/sha256/` and 64 hex digits: they always fit.
    let _ = header.set_path(name);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Bytes::copy_from_slice(header.as_bytes())
}

fn padding(size: u64) -> Bytes {
    let rest = (size % BLOCK as u64) as usize;
    if rest == 0 {
        Bytes::new()
    } else {
        Bytes::from(vec![0u8; BLOCK - rest])
    }
}

fn padded(mut bytes: Vec<u8>) -> Vec<u8> {
    let size = bytes.len();
    bytes.resize(size.div_ceil(BLOCK) * BLOCK, 0);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tagged_names_become_repo_tags() {
        use crate::bundle::archive::repo_tag;
        assert_eq!(
            repo_tag("10.0.0.1:5000/team/app:1"),
            Some(("10.0.0.1:5000/team/app", "1"))
        );
        assert_eq!(repo_tag("10.0.0.1:5000/team/app"), None);
        assert_eq!(repo_tag("team/app@sha256:00"), None);
    }

    #[test]
    fn entries_fill_whole_blocks() {
        assert_eq!(padding(0).len(), 0);
        assert_eq!(padding(1).len(), 511);
        assert_eq!(padding(512).len(), 0);
        assert_eq!(padded(vec![1; 513]).len(), 1024);
        assert_eq!(tar_header("manifest.json", 3).len(), BLOCK);
    }
}
