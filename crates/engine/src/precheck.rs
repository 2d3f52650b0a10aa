//! The one check before a job that its images can be whole at the destination: blobs the
//! source does not carry (an incremental bundle leaves its bases' blobs out) must already be
//! there. A registry that holds the base's images has them, in the image's repository or where
//! the base put them; a bundle, a layout, an archive or a container engine does not. Found
//! before anything moves, so a job is refused in one message instead of failing image by
//! image, half-pushed.

use std::collections::BTreeSet;

use registry::Digest;
use registry::manifest::{self, Descriptor, ParsedManifest};

use crate::copy::{CopyOptions, Sink, select_children};
use crate::error::Result;
use crate::plan::ImagePair;
use crate::transport::ImageSource;

/// A blob an image needs that neither its source gives nor its destination holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LackingBlob {
    /// The list line of the image that needs it.
    pub line: String,
    pub digest: Digest,
}

/// Every blob `pairs` need (of the platforms `options` keep) that `source` does not carry and
/// the destination does not hold; `None` for a destination that holds nothing yet. An image
/// whose manifests cannot be read is left to the job, which reports it.
pub async fn lacking_blobs(
    source: &dyn ImageSource,
    sink: Option<&Sink>,
    options: &CopyOptions,
    pairs: &[ImagePair],
) -> Result<Vec<LackingBlob>> {
    let mut lacking = BTreeSet::new();
    if !source.may_lack_blobs() {
        return Ok(Vec::new());
    }
    for pair in pairs {
        for blob in blobs_of(source, options, pair).await {
            if source.carries(&blob.digest) || held(source, sink, pair, &blob).await? {
                continue;
            }
            lacking.insert(LackingBlob {
                line: pair.line.clone(),
                digest: blob.digest,
            });
        }
    }
    Ok(lacking.into_iter().collect())
}

/// Whether the destination has the blob: in the image's repository, or in one where the
/// source says it was put.
async fn held(
    source: &dyn ImageSource,
    sink: Option<&Sink>,
    pair: &ImagePair,
    blob: &Descriptor,
) -> Result<bool> {
    let Some(Sink::Pieces(destination)) = sink else {
        // An engine keeps no blobs between images; nothing is there yet.
        return Ok(false);
    };
    let mut places = vec![pair.target.repository.clone()];
    places.extend(source.mount_hints(&blob.digest));
    for repository in &places {
        if destination.has_blob(repository, blob).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The config and layers of an image, of every child an index keeps.
async fn blobs_of(
    source: &dyn ImageSource,
    options: &CopyOptions,
    pair: &ImagePair,
) -> Vec<Descriptor> {
    let repository = &pair.source.repository;
    let Ok(top) = source
        .manifest(repository, &pair.source.reference.to_string())
        .await
    else {
        return Vec::new();
    };
    match manifest::parse(&top.media_type, &top.bytes, &pair.line) {
        Ok(ParsedManifest::Image(image)) => image.blobs().cloned().collect(),
        Ok(ParsedManifest::Index(index)) => {
            let Ok(children) = select_children(&options.platforms, &index.manifests, &pair.line)
            else {
                return Vec::new();
            };
            let mut blobs = Vec::new();
            for child in children {
                if let Ok(child) = source.manifest(repository, child.digest.as_str()).await
                    && let Ok(ParsedManifest::Image(image)) =
                        manifest::parse(&child.media_type, &child.bytes, &pair.line)
                {
                    blobs.extend(image.blobs().cloned());
                }
            }
            blobs
        }
        Err(_) => Vec::new(),
    }
}
