//! Blob uploads that survive broken connections.
//!
//! A blob goes up in one streaming `PUT` while nothing goes wrong: no extra round trip on a
//! good network. When the request breaks, the registry is asked where the upload stands
//! (`GET` on its location answers with a `Range`) and the rest follows in chunked `PATCH`es
//! from there, the bytes read again from the caller's source ([`BodyFrom`]), so nothing is
//! held in memory for a retry. A registry that forgot the session (the CNCF registry drops an
//! upload whose request broke midway) gets a new one from the first byte.
//!
//! Connections that are cut after a fixed amount of data (proxies and firewalls that end long
//! connections) teach the client a chunk size: after a break, chunks are half of what the
//! broken request had sent, each on a fresh connection, so later requests and later blobs of
//! the job stay under the cut. A registry's `OCI-Chunk-Min-Length` is respected, and a body
//! refused as too large (413, a proxy's cap) halves the chunk the same way.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use reqwest::header::{CONNECTION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, StatusCode};

use crate::Digest;
use crate::auth::Scope;
use crate::blobs::{UploadSession, with_query};
use crate::client::Registry;
use crate::error::{Error, Result};

/// The bytes of a blob on their way up.
pub type BlobBody = BoxStream<'static, Result<Bytes>>;

/// The bytes of a blob again, from a given byte on: how an upload continues after a break.
pub trait BodyFrom: Send + Sync {
    fn body_from(&self, offset: u64) -> BoxFuture<'_, Result<BlobBody>>;
}

/// No chunk is made smaller than this for a cut connection or a capped body: below it round
/// trips would cost more than the breaks.
const SMALLEST_CHUNK: u64 = 1 << 20;

/// A request that broke after sending fewer bytes than this says nothing about a size limit
/// (a connection refused, a reset at once) and teaches no chunk size.
const CUT_WORTH_LEARNING: u64 = 2 * SMALLEST_CHUNK;

/// How one request of an upload failed.
struct Failed {
    error: Error,
    /// Body bytes handed to the request before it failed.
    sent: u64,
    /// The caller's stream failed (bad content, a broken source): nothing to continue.
    body_failed: bool,
    /// The registry (or a proxy) refused the body as too large.
    too_large: bool,
}

impl Failed {
    fn of(error: Error) -> Failed {
        Failed {
            error,
            sent: 0,
            body_failed: false,
            too_large: false,
        }
    }
}

impl Registry {
    /// Streams a blob into an open upload and commits it under `digest`. The registry checks
    /// the digest too, so corrupted content can never be stored under the expected name; a
    /// body that ends in an error aborts the request and nothing is committed. With `again`,
    /// a broken upload continues where the registry stands (see the module's comment).
    pub async fn upload_blob(
        &self,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        body: BlobBody,
        again: Option<&dyn BodyFrom>,
    ) -> Result<()> {
        let policy = self.retry_policy();
        let mut session = session;
        let mut body = body;
        let mut offset = 0;
        let mut fruitless = 0;
        loop {
            let failed = match self
                .send_upload(&mut session, digest, size, offset, body)
                .await
            {
                Ok(()) => return Ok(()),
                Err(failed) => failed,
            };
            let refused_whole = matches!(failed.error, Error::MonolithicUploadRefused { .. });
            let Some(again) = again else {
                return Err(failed.error);
            };
            if failed.body_failed
                || !(failed.error.is_retryable() || failed.too_large || refused_whole)
            {
                return Err(failed.error);
            }
            if failed.too_large || failed.sent >= CUT_WORTH_LEARNING {
                self.learn_chunk(failed.sent);
            }
            let before = offset;
            match self.upload_status(&session).await? {
                Some((holds, moved)) if holds <= size => {
                    offset = holds;
                    session = moved;
                }
                _ => {
                    tracing::debug!(host = self.host(), "upload forgotten, starting again");
                    session = self.start_upload(&session.repository).await?;
                    offset = 0;
                }
            }
            fruitless = if offset > before { 0 } else { fruitless + 1 };
            if fruitless > policy.retries.max(1) {
                return Err(failed.error);
            }
            tracing::debug!(
                host = self.host(),
                error = %failed.error,
                offset,
                size,
                "continuing upload"
            );
            // Straight on after progress; waits grow only while nothing more arrives.
            if !refused_whole && fruitless > 0 {
                tokio::time::sleep(policy.delay(fruitless)).await;
            }
            body = again.body_from(offset).await?;
        }
    }

    /// Sends what the registry lacks, from `offset`, and commits: one `PUT` with the whole
    /// blob when nothing calls for chunks, else `PATCH`es and a closing `PUT`.
    async fn send_upload(
        &self,
        session: &mut UploadSession,
        digest: &Digest,
        size: u64,
        offset: u64,
        body: BlobBody,
    ) -> Result<(), Failed> {
        let learned = self.chunk_limit();
        let chunked = self.inner_chunked().load(Ordering::Relaxed);
        let feed = Feed::new(body);
        if offset == 0 && learned.is_none() && !chunked {
            return self.put_whole(session, digest, size, &feed).await;
        }
        let chunk = learned.map_or(u64::MAX, |limit| limit.max(session.min_chunk));
        let mut offset = offset;
        while offset < size {
            let end = offset.saturating_add(chunk).min(size);
            offset = self
                .patch(session, offset, end, &feed, learned.is_some())
                .await?;
        }
        let url = with_query(&session.location, "digest", digest.as_str());
        let scopes = [Scope::push(&session.repository)];
        let response = self
            .send(Method::PUT, &url, &scopes, &|r| r.header(CONTENT_LENGTH, 0))
            .await
            .map_err(Failed::of)?;
        if response.status().is_success() {
            return Ok(());
        }
        let what = || format!("blob {} in {}", digest.short(), session.repository);
        Err(Failed::of(
            self.unexpected(response, "PUT", &session.repository, what)
                .await,
        ))
    }

    /// The whole blob in one request.
    async fn put_whole(
        &self,
        session: &UploadSession,
        digest: &Digest,
        size: u64,
        feed: &Feed,
    ) -> Result<(), Failed> {
        let url = with_query(&session.location, "digest", digest.as_str());
        let scopes = [Scope::push(&session.repository)];
        let piece = feed.piece(size);
        let response = self
            .send_stream(Method::PUT, &url, &scopes, |r| {
                r.header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(reqwest::Body::wrap_stream(piece))
            })
            .await
            .map_err(|error| feed.failed(error))?;
        match response.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::RANGE_NOT_SATISFIABLE
            | StatusCode::NOT_IMPLEMENTED => {
                self.inner_chunked().store(true, Ordering::Relaxed);
                Err(Failed::of(Error::MonolithicUploadRefused {
                    host: self.host().to_string(),
                }))
            }
            status => {
                let mut failed = feed.failed(
                    self.unexpected(response, "PUT", &session.repository, || {
                        format!("blob {} in {}", digest.short(), session.repository)
                    })
                    .await,
                );
                failed.too_large = status == StatusCode::PAYLOAD_TOO_LARGE;
                Err(failed)
            }
        }
    }

    /// Bytes `offset..end` in one `PATCH`; where the upload stands after it.
    async fn patch(
        &self,
        session: &mut UploadSession,
        offset: u64,
        end: u64,
        feed: &Feed,
        fresh_connection: bool,
    ) -> Result<u64, Failed> {
        let scopes = [Scope::push(&session.repository)];
        let piece = feed.piece(end - offset);
        let response = self
            .send_stream(Method::PATCH, &session.location, &scopes, |r| {
                let request = r
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, end - offset);
                let request = if end > offset {
                    request.header(CONTENT_RANGE, format!("{offset}-{}", end - 1))
                } else {
                    request
                };
                // After a cut, each chunk takes a connection of its own: a cut that counts the
                // bytes of a connection then never sees more than one chunk.
                let request = if fresh_connection {
                    request.header(CONNECTION, "close")
                } else {
                    request
                };
                request.body(reqwest::Body::wrap_stream(piece))
            })
            .await
            .map_err(|error| feed.failed(error))?;
        let status = response.status();
        if status != StatusCode::ACCEPTED && status != StatusCode::NO_CONTENT {
            let mut failed = feed.failed(
                self.unexpected(response, "PATCH", &session.repository, || {
                    format!("a chunk of an upload to {}", session.repository)
                })
                .await,
            );
            failed.too_large = status == StatusCode::PAYLOAD_TOO_LARGE;
            return Err(failed);
        }
        let holds = held(response.headers()).unwrap_or(end);
        *session = self
            .session(&session.repository, &response)
            .await
            .map_err(Failed::of)?;
        Ok(holds)
    }

    /// How many bytes the registry holds of an upload, with the session to go on with; `None`
    /// when it no longer knows the upload.
    async fn upload_status(&self, session: &UploadSession) -> Result<Option<(u64, UploadSession)>> {
        let scopes = [Scope::push(&session.repository)];
        let response = self
            .send(Method::GET, &session.location, &scopes, &|r| r)
            .await?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::ACCEPTED | StatusCode::OK => {
                let holds = held(response.headers()).unwrap_or(0);
                let moved = if response.headers().contains_key(LOCATION) {
                    self.session(&session.repository, &response).await?
                } else {
                    session.clone()
                };
                Ok(Some((holds, moved)))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self
                .unexpected(response, "GET", &session.repository, || {
                    format!("the state of an upload to {}", session.repository)
                })
                .await),
        }
    }

    /// Lowers the chunk size after a request broke (or was refused) having sent `sent` bytes.
    fn learn_chunk(&self, sent: u64) {
        let chunk = (sent / 2).max(SMALLEST_CHUNK);
        let limit = self.chunk_limit_cell();
        let previous = limit
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
                (current == 0 || chunk < current).then_some(chunk)
            })
            .ok();
        if previous.is_some() {
            self.chunk_was_learned();
            tracing::debug!(host = self.host(), chunk, "uploads go on in chunks");
        }
    }

    fn chunk_limit(&self) -> Option<u64> {
        match self.chunk_limit_cell().load(Ordering::Relaxed) {
            0 => None,
            limit => Some(limit),
        }
    }
}

/// The byte count a `Range: 0-LAST` answer says the registry holds. The CNCF registry says
/// `0-0` for an empty upload (and for one of a single byte, which then goes again).
fn held(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let value = headers.get(RANGE)?.to_str().ok()?;
    let last: u64 = value.trim().split_once('-')?.1.trim().parse().ok()?;
    Some(if last == 0 { 0 } else { last + 1 })
}

/// The caller's body, handed out in pieces, one per request, and watched for what the failure
/// of a request needs to know: how much the request took, and whether the body itself failed.
struct Feed {
    shared: Arc<Mutex<FeedState>>,
    sent: Arc<AtomicU64>,
    body_failed: Arc<AtomicBool>,
}

struct FeedState {
    body: BlobBody,
    /// What the last piece took of a chunk beyond its own end.
    leftover: Option<Bytes>,
}

impl Feed {
    fn new(body: BlobBody) -> Feed {
        Feed {
            shared: Arc::new(Mutex::new(FeedState {
                body,
                leftover: None,
            })),
            sent: Arc::new(AtomicU64::new(0)),
            body_failed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The next `length` bytes, for one request.
    fn piece(&self, length: u64) -> Piece {
        self.sent.store(0, Ordering::Relaxed);
        Piece {
            shared: self.shared.clone(),
            remaining: length,
            sent: self.sent.clone(),
            body_failed: self.body_failed.clone(),
        }
    }

    fn failed(&self, error: Error) -> Failed {
        Failed {
            error,
            sent: self.sent.load(Ordering::Relaxed),
            body_failed: self.body_failed.load(Ordering::Relaxed),
            too_large: false,
        }
    }
}

struct Piece {
    shared: Arc<Mutex<FeedState>>,
    remaining: u64,
    sent: Arc<AtomicU64>,
    body_failed: Arc<AtomicBool>,
}

impl Stream for Piece {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let mut state = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let mut chunk = match state.leftover.take() {
            Some(chunk) => chunk,
            None => match state.body.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => chunk,
                Poll::Ready(Some(Err(error))) => {
                    self.body_failed.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) => {
                    // The length was announced: hyper fails the request for the missing bytes.
                    self.body_failed.store(true, Ordering::Relaxed);
                    return Poll::Ready(None);
                }
            },
        };
        if chunk.len() as u64 > self.remaining {
            state.leftover = Some(chunk.split_off(self.remaining as usize));
        }
        drop(state);
        self.remaining -= chunk.len() as u64;
        self.sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        Poll::Ready(Some(Ok(chunk)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_split_the_body_where_asked_and_carry_the_rest_over() {
        let body = futures_util::stream::iter([
            Ok(Bytes::from_static(b"abcdef")),
            Ok(Bytes::from_static(b"ghij")),
        ])
        .boxed();
        let feed = Feed::new(body);
        let first: Vec<Bytes> = feed.piece(4).map(|r| r.unwrap()).collect::<Vec<_>>().await;
        assert_eq!(first.concat(), b"abcd");
        assert_eq!(feed.sent.load(Ordering::Relaxed), 4);
        let second: Vec<Bytes> = feed.piece(6).map(|r| r.unwrap()).collect().await;
        assert_eq!(second.concat(), b"efghij");
        assert!(!feed.body_failed.load(Ordering::Relaxed));
    }

    #[test]
    fn ranges_say_how_much_is_held() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(held(&headers), None);
        headers.insert(RANGE, "0-0".parse().unwrap());
        assert_eq!(held(&headers), Some(0));
        headers.insert(RANGE, "0-1048575".parse().unwrap());
        assert_eq!(held(&headers), Some(1 << 20));
        headers.insert(RANGE, "bytes=0-9".parse().unwrap());
        assert_eq!(held(&headers), Some(10));
    }
}
