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

pub(crate) struct Verified {
    inner: ByteStream,
    failure: StreamFailure,
    hasher: Option<DigestHasher>,
    digest: Digest,
    size: u64,
    seen: u64,
    progress: ProgressFn,
    finished: bool,
    liveness: Option<Arc<Liveness>>,
}

impl Verified {
    pub(crate) fn new(
        inner: ByteStream,
        descriptor: &Descriptor,
        progress: ProgressFn,
        failure: StreamFailure,
    ) -> Verified {
        Verified {
            inner,
            failure,
            hasher: Some(DigestHasher::new()),
            digest: descriptor.digest.clone(),
            size: descriptor.size,
            seen: 0,
            progress,
            finished: false,
            liveness: None,
        }
    }

    /// Tells `liveness` whenever bytes arrive and whether the source is the one being waited
    /// for, so a stalled transfer can be told apart from a stalled destination.
    pub(crate) fn watched_by(mut self, liveness: Arc<Liveness>) -> Verified {
        self.liveness = Some(liveness);
        self
    }

    fn note(&self, waiting_for_source: bool) {
        if let Some(liveness) = &self.liveness {
            liveness.waiting_for_source(waiting_for_source);
            if !waiting_for_source {
                liveness.progressed();
            }
        }
    }

    fn check_digest(&mut self) -> Option<registry::Error> {
        let actual = self.hasher.take()?.finish();
        (actual != self.digest).then(|| registry::Error::DigestMismatch {
            expected: self.digest.clone(),
            actual,
            bytes: self.seen,
        })
    }

    fn size_error(&self, actual: u64) -> registry::Error {
        registry::Error::SizeMismatch {
            digest: self.digest.clone(),
            expected: self.size,
            actual,
        }
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
                self.seen += chunk.len() as u64;
                if self.seen > self.size {
                    self.finished = true;
                    let seen = self.seen;
                    let error = self.size_error(seen);
                    return Poll::Ready(Some(Err(self.failure.record(error))));
                }
                if let Some(hasher) = self.hasher.as_mut() {
                    hasher.update(&chunk);
                }
                (self.progress)(chunk.len() as u64);
                // The last chunk is held back until the whole content is known to be right.
                if self.seen == self.size
                    && let Some(error) = self.check_digest()
                {
                    self.finished = true;
                    return Poll::Ready(Some(Err(self.failure.record(error))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                self.finished = true;
                Poll::Ready(Some(Err(self.failure.record(error))))
            }
            Poll::Ready(None) => {
                self.finished = true;
                if self.seen < self.size {
                    let error = self.size_error(self.seen);
                    return Poll::Ready(Some(Err(self.failure.record(error))));
                }
                let error = self.check_digest();
                Poll::Ready(error.map(|error| Err(self.failure.record(error))))
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

    #[tokio::test]
    async fn empty_blob_is_verified_at_the_end() {
        assert!(run(vec![], &descriptor(b"")).await.is_empty());
        let mut wrong = descriptor(b"");
        wrong.digest = Digest::of(b"x");
        assert_eq!(run(vec![], &wrong).await.len(), 1);
    }
}
