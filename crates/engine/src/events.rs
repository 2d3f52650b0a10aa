//! What the engine tells its front ends while it works. The engine never prints: the CLI's
//! status line, the JSON report, notifiers and the web UI are all [`Observer`]s of these events.

use std::sync::Arc;
use std::time::Duration;

use registry::Digest;

use crate::error::Error;

/// Identifies an image within one job (its position in the plan).
pub type ImageId = usize;

/// How a blob came to be on the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Streamed from the source.
    Transferred,
    /// The destination already had it.
    Existed,
    /// Linked from another repository of the destination, without transfer.
    Mounted,
}

#[derive(Debug, Clone)]
pub enum Event {
    /// The plan is known: how many images will be attempted, how many lines were invalid.
    JobStarted {
        images: usize,
    },
    /// A list line or image that cannot be copied at all (bad line, missing on the source).
    ImageInvalid {
        line: String,
        error: Arc<Error>,
    },
    ImageStarted {
        image: ImageId,
        /// The list line that named it.
        line: String,
        source: String,
        target: String,
    },
    /// The image's manifests are read: this many bytes of blobs must be on the destination
    /// (sent again when an attempt is retried).
    ImageSized {
        image: ImageId,
        bytes: u64,
    },
    /// A blob is about to move.
    BlobStarted {
        image: ImageId,
        digest: Digest,
        size: u64,
    },
    /// Bytes of a blob passed through (downloaded and handed to the destination).
    BlobProgress {
        image: ImageId,
        bytes: u64,
    },
    BlobDone {
        image: ImageId,
        digest: Digest,
        size: u64,
        outcome: BlobOutcome,
    },
    /// An index was rewritten to the selected platforms, so its digest changes.
    IndexFiltered {
        image: ImageId,
        original: Digest,
        filtered: Digest,
        platforms: Vec<String>,
    },
    /// An attempt failed and the image will be tried again after `delay`.
    ImageRetrying {
        image: ImageId,
        attempt: u32,
        delay: Duration,
        error: Arc<Error>,
    },
    ImageDone {
        image: ImageId,
        digest: Digest,
        /// The destination had this image already; nothing was sent.
        unchanged: bool,
    },
    ImageFailed {
        image: ImageId,
        error: Arc<Error>,
    },
    JobDone,
}

/// A subscriber to engine events. Called on the engine's tasks: keep it quick.
pub trait Observer: Send + Sync {
    fn event(&self, event: &Event);
}

/// Sends each event to several observers.
#[derive(Default, Clone)]
pub struct Observers(Vec<Arc<dyn Observer>>);

impl Observers {
    pub fn new() -> Observers {
        Observers::default()
    }

    pub fn with(mut self, observer: Arc<dyn Observer>) -> Observers {
        self.0.push(observer);
        self
    }

    pub fn push(&mut self, observer: Arc<dyn Observer>) {
        self.0.push(observer);
    }
}

impl Observer for Observers {
    fn event(&self, event: &Event) {
        for observer in &self.0 {
            observer.event(event);
        }
    }
}
