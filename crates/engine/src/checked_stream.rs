//! Verification while streaming: every blob is hashed as it flows from source to destination,
//! and a stream whose size or digest is wrong ends in an error instead of its last chunk, so a
//! destination never sees a complete body for corrupted content.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use registry::manifest::Descriptor;
use registry::{Digest, DigestHasher};

use crate::stall::Liveness;
use crate::transport::ByteStream;

/// Called with the length of each chunk that passes.
pub(crate) type ProgressFn = Box<dyn Fn(u64) + Send + Sync>;

/// Where a verified stream leaves the real reason it failed. The destination only sees that
/// its body broke (an HTTP client wraps that beyond recognition); the engine reports this.
#[derive(Clone, Default)]
pub(crate) struct StreamFailure(Arc<Mutex<Option<registry::Error>>>);

impl StreamFailure {
    pub(crate) fn take(&self) -> Option<registry::Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Keeps `error` and returns a stand-in for the destination.
    fn record(&self, error: registry::Error) -> registry::Error {
        let stand_in = registry::Error::Transfer {
            host: "source".to_string(),
            detail: error.to_string(),
        };
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
        stand_in
    }
}

/// What every pass over one blob shares: the hash so far and how far it reaches. A destination
/// that continues a broken upload reads the blob again from where it stands; bytes already
/// hashed are then passed on without hashing them twice (the registry checks the whole digest
/// on commit), and the digest is checked once, when the hash reaches the end.
struct Check {
    hasher: Option<DigestHasher>,
    /// Bytes hashed from the start of the blob.
    hashed: u64,
    digest: Digest,
    size: u64,
    progress: ProgressFn,
}

/// Makes verified streams of one blob: the first from its start, others from where a broken
/// upload goes on.
#[derive(Clone)]
pub(crate) struct Verifier {
    check: Arc<Mutex<Check>>,
    failure: StreamFailure,
    liveness: Option<Arc<Liveness>>,
}

impl Verifier {
    pub(crate) fn new(
        descriptor: &Descriptor,
        progress: ProgressFn,
        failure: StreamFailure,
    ) -> Verifier {
        Verifier {
            check: Arc::new(Mutex::new(Check {
                hasher: Some(DigestHasher::new()),
                hashed: 0,
                digest: descriptor.digest.clone(),
                size: descriptor.size,
                progress,
            })),
            failure,
            liveness: None,
        }
    }

    /// Tells `liveness` whenever bytes arrive and whether the source is the one being waited
    /// for, so a stalled transfer can be told apart from a stalled destination.
    pub(crate) fn watched_by(mut self, liveness: Arc<Liveness>) -> Verifier {
        self.liveness = Some(liveness);
        self
    }

    /// `inner`, the blob's bytes from `offset` on, checked as they pass.
    pub(crate) fn stream(&self, offset: u64, inner: ByteStream) -> Verified {
        Verified {
            inner,
            verifier: self.clone(),
            position: offset,
            finished: false,
        }
    }
}

pub(crate) struct Verified {
    inner: ByteStream,
    verifier: Verifier,
    /// Where the next chunk starts in the blob.
    position: u64,
    finished: bool,
}

impl Verified {
    /// A stream over the whole blob, for a caller that needs no second pass.
    pub(crate) fn new(
        inner: ByteStream,
        descriptor: &Descriptor,
        progress: ProgressFn,
        failure: StreamFailure,
    ) -> Verified {
        Verifier::new(descriptor, progress, failure).stream(0, inner)
    }

    fn note(&self, waiting_for_source: bool) {
        if let Some(liveness) = &self.verifier.liveness {
            liveness.waiting_for_source(waiting_for_source);
            if !waiting_for_source {
                liveness.progressed();
            }
        }
    }

    /// Ends the stream with `error`, kept for the engine to report.
    fn fail(&mut self, error: registry::Error) -> Poll<Option<Result<Bytes, registry::Error>>> {
        self.finished = true;
        Poll::Ready(Some(Err(self.verifier.failure.record(error))))
    }

    /// Takes in the chunk at `start`; the error that must replace it, if any.
    fn absorb(&self, start: u64, chunk: &[u8]) -> Option<registry::Error> {
        let mut check = self
            .verifier
            .check
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let end = start + chunk.len() as u64;
        if end > check.size {
            return Some(size_error(&check, end));
        }
        if start > check.hashed {
            // A pass that skips bytes never hashed cannot be verified.
            return Some(size_error(&check, start));
        }
        if end > check.hashed {
            let new = &chunk[(check.hashed - start) as usize..];
            if let Some(hasher) = check.hasher.as_mut() {
                hasher.update(new);
            }
            check.hashed = end;
            (check.progress)(new.len() as u64);
        }
        // The last chunk is held back until the whole content is known to be right.
        if end == check.size {
            return check_digest(&mut check);
        }
        None
    }
}

fn check_digest(check: &mut Check) -> Option<registry::Error> {
    let actual = check.hasher.take()?.finish();
    (actual != check.digest).then(|| registry::Error::DigestMismatch {
        expected: check.digest.clone(),
        actual,
        bytes: check.hashed,
    })
}

fn size_error(check: &Check, actual: u64) -> registry::Error {
    registry::Error::SizeMismatch {
        digest: check.digest.clone(),
        expected: check.size,
        actual,
    }
}

impl Stream for Verified {
    type Item = Result<Bytes, registry::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let polled = self.inner.as_mut().poll_next(cx);
        self.note(polled.is_pending());
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let start = self.position;
                self.position += chunk.len() as u64;
                match self.absorb(start, &chunk) {
                    Some(error) => self.fail(error),
                    None => Poll::Ready(Some(Ok(chunk))),
                }
            }
            Poll::Ready(Some(Err(error))) => self.fail(error),
            Poll::Ready(None) => {
                self.finished = true;
                let mut check = self
                    .verifier
                    .check
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let error = if self.position < check.size {
                    Some(size_error(&check, self.position))
                } else {
                    // An empty blob: no chunk came to check it.
                    check_digest(&mut check)
                };
                drop(check);
                match error {
                    Some(error) => self.fail(error),
                    None => Poll::Ready(None),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use futures_util::{StreamExt, stream};

    use super::*;

    fn descriptor(content: &[u8]) -> Descriptor {
        Descriptor {
            media_type: String::new(),
            digest: Digest::of(content),
            size: content.len() as u64,
            platform: None,
        }
    }

    async fn run(
        chunks: Vec<&'static [u8]>,
        descriptor: &Descriptor,
    ) -> Vec<Result<Bytes, String>> {
        let inner = stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))).boxed();
        let failure = StreamFailure::default();
        let items: Vec<_> = Verified::new(inner, descriptor, Box::new(|_| {}), failure.clone())
            .map(|item| item.map_err(|_| failure.take().unwrap().to_string()))
            .collect()
            .await;
        items
    }

    #[tokio::test]
    async fn good_content_passes_whole_and_reports_progress() {
        let seen = Arc::new(AtomicU64::new(0));
        let counter = seen.clone();
        let inner = stream::iter([
            Ok(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ])
        .boxed();
        let items: Vec<_> = Verified::new(
            inner,
            &descriptor(b"hello world"),
            Box::new(move |n| {
                counter.fetch_add(n, Ordering::Relaxed);
            }),
            StreamFailure::default(),
        )
        .collect()
        .await;
        assert!(items.iter().all(Result::is_ok));
        assert_eq!(items.len(), 2);
        assert_eq!(seen.load(Ordering::Relaxed), 11);
    }

    #[tokio::test]
    async fn corrupted_last_chunk_is_replaced_by_an_error() {
        let items = run(vec![b"hello ", b"w0rld"], &descriptor(b"hello world")).await;
        assert!(items[0].is_ok());
        assert!(
            items[1]
                .as_ref()
                .unwrap_err()
                .contains("does not match its digest")
        );
        assert_eq!(items.len(), 2);
    }

    #[tokio::test]
    async fn short_and_long_content_fail_on_size() {
        let short = run(vec![b"hello"], &descriptor(b"hello world")).await;
        assert!(
            short
                .last()
                .unwrap()
                .as_ref()
                .unwrap_err()
                .contains("expected 11")
        );
        let long = run(vec![b"hello world!"], &descriptor(b"hello world")).await;
        assert!(long[0].as_ref().unwrap_err().contains("expected 11"));
    }

    /// A broken upload that goes on from byte 6 reads "world" again: the bytes hashed before
    /// are not hashed (or counted) twice, and the digest is checked when the hash reaches the
    /// end, whichever pass gets it there.
    #[tokio::test]
    async fn a_second_pass_from_midway_continues_the_same_hash() {
        let counted = Arc::new(AtomicU64::new(0));
        let counter = counted.clone();
        let verifier = Verifier::new(
            &descriptor(b"hello world"),
            Box::new(move |n| {
                counter.fetch_add(n, Ordering::Relaxed);
            }),
            StreamFailure::default(),
        );
        let first = stream::iter([Ok(Bytes::from_static(b"hello wo"))]).boxed();
        let first: Vec<_> = verifier.stream(0, first).take(1).collect().await;
        assert!(first[0].is_ok());
        let again = stream::iter([Ok(Bytes::from_static(b"world"))]).boxed();
        let again: Vec<_> = verifier.stream(6, again).collect().await;
        assert!(again.iter().all(Result::is_ok), "{again:?}");
        assert_eq!(counted.load(Ordering::Relaxed), 11);

        let wrong = stream::iter([Ok(Bytes::from_static(b"w0rld"))]).boxed();
        let verifier = Verifier::new(
            &descriptor(b"hello world"),
            Box::new(|_| {}),
            StreamFailure::default(),
        );
        let first = stream::iter([Ok(Bytes::from_static(b"hello "))]).boxed();
        let _: Vec<_> = verifier.stream(0, first).take(1).collect().await;
        let again: Vec<_> = verifier.stream(6, wrong).collect().await;
        assert!(again[0].is_err(), "{again:?}");
    }

    #[tokio::test]
    async fn empty_blob_is_verified_at_the_end() {
        assert!(run(vec![], &descriptor(b"")).await.is_empty());
        let mut wrong = descriptor(b"");
        wrong.digest = Digest::of(b"x");
        assert_eq!(run(vec![], &wrong).await.len(), 1);
    }
}
