//! Blob downloads that survive broken connections.
//!
//! A long download over a VPN or through a proxy that cuts connections after some time or size
//! must not start again from its first byte: a layer larger than the cut would never arrive.
//! So when the body breaks off (or stops moving), the download asks again with
//! `Range: bytes=N-` for the rest and carries on in the same stream. The caller hashes the
//! stream as it flows and sees one unbroken run of bytes, so its digest still covers the whole
//! blob. A registry that ignores `Range` answers 200 with the whole blob again: the bytes the
//! caller already has are then read and dropped, which costs the transfer but never repeats
//! or skips a byte.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{Method, Response, StatusCode};

use crate::Digest;
use crate::auth::Scope;
use crate::client::Registry;
use crate::error::{Error, Result};

/// A blob being downloaded: its announced size and its bytes as they arrive.
pub struct BlobStream {
    pub size: Option<u64>,
    pub stream: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("size", &self.size)
            .finish()
    }
}

impl Registry {
    /// Starts downloading a blob. The bytes are not verified here: the caller hashes them as
    /// they flow (the engine does), so nothing is read twice. A connection that breaks or
    /// stalls midway is resumed (see the module's comment).
    pub async fn get_blob(&self, repository: &str, digest: &Digest) -> Result<BlobStream> {
        self.get_blob_from(repository, digest, 0).await
    }

    /// The blob's bytes from `offset` on, as [`Registry::get_blob`] gives them all; `size` is
    /// then what is left.
    pub async fn get_blob_from(
        &self,
        repository: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream> {
        let path = format!("{repository}/blobs/{digest}");
        let mut download = Download {
            registry: self.clone(),
            repository: repository.to_string(),
            path,
            body: futures_util::stream::empty().boxed(),
            size: None,
            received: offset,
            to_drop: 0,
            failed_resumes: 0,
            ended: false,
        };
        let response = download.request().await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(Error::BlobNotFound {
                host: self.host().to_string(),
                repository: repository.to_string(),
                digest: digest.clone(),
            });
        }
        download.take(response).await?;
        let size = download.size.map(|size| size - offset);
        let stream = futures_util::stream::unfold(download, |mut download| async move {
            let item = download.next().await?;
            Some((item, download))
        })
        .boxed();
        Ok(BlobStream { size, stream })
    }
}

/// The state of one download across the connections it takes.
struct Download {
    registry: Registry,
    repository: String,
    path: String,
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    /// The blob's length, when the registry announced it. Without it an early end cannot be
    /// told from the real one, so such a download is never resumed.
    size: Option<u64>,
    /// Bytes handed to the caller so far.
    received: u64,
    /// Bytes at the start of the current body that the caller already has (a registry that
    /// ignored `Range` sent the whole blob again).
    to_drop: u64,
    /// Resumes in a row that brought no new byte; reset by every byte that arrives.
    failed_resumes: u32,
    ended: bool,
}

impl Download {
    /// The next piece of the blob, resuming as often as the registry keeps making progress.
    async fn next(&mut self) -> Option<Result<Bytes>> {
        if self.ended {
            return None;
        }
        loop {
            let read = match self.registry.stalled_read() {
                Some(limit) => match tokio::time::timeout(limit, self.body.next()).await {
                    Ok(read) => read.map(|read| read.map_err(Broken::Read)),
                    Err(_) => Some(Err(Broken::Stalled(limit))),
                },
                None => self
                    .body
                    .next()
                    .await
                    .map(|read| read.map_err(Broken::Read)),
            };
            let broken = match read {
                Some(Ok(mut chunk)) => {
                    if self.to_drop > 0 {
                        let dropped = self.to_drop.min(chunk.len() as u64);
                        self.to_drop -= dropped;
                        chunk = chunk.slice(dropped as usize..);
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    self.received += chunk.len() as u64;
                    self.failed_resumes = 0;
                    return Some(Ok(chunk));
                }
                Some(Err(broken)) => broken,
                None if self.size.is_some_and(|size| self.received < size) => Broken::EndedEarly,
                None => {
                    self.ended = true;
                    return None;
                }
            };
            let error = broken.into_error(&self.registry);
            if let Err(error) = self.resume(error).await {
                self.ended = true;
                return Some(Err(error));
            }
        }
    }

    /// Asks for the rest of the blob after a break; `Err` when it cannot or should not go on.
    async fn resume(&mut self, error: Error) -> Result<()> {
        let Some(size) = self.size else {
            return Err(error);
        };
        let policy = self.registry.retry_policy();
        self.failed_resumes += 1;
        if self.failed_resumes > policy.retries.max(1) {
            return Err(error);
        }
        tracing::debug!(
            host = self.registry.host(),
            %error,
            received = self.received,
            size,
            "resuming download"
        );
        // A connection that broke after bringing bytes is asked again at once; waits grow only
        // while resumes bring nothing.
        if self.failed_resumes > 1 {
            tokio::time::sleep(policy.delay(self.failed_resumes - 1)).await;
        }
        let response = self.request().await?;
        self.take(response).await
    }

    /// Asks for the blob from the first byte the caller does not have.
    fn request(&self) -> impl std::future::Future<Output = Result<Response>> + Send + use<> {
        // Owned parts only: the body stream is not `Sync`, so `&self` cannot be held across
        // the wait.
        let (registry, path, from) = (self.registry.clone(), self.path.clone(), self.received);
        let scopes = [Scope::pull(&self.repository)];
        async move {
            registry
                .send(Method::GET, &path, &scopes, &|r| {
                    if from > 0 {
                        r.header(RANGE, format!("bytes={from}-"))
                    } else {
                        r
                    }
                })
                .await
        }
    }

    /// Goes on with the answer to [`Download::request`].
    async fn take(&mut self, response: Response) -> Result<()> {
        let from = self.received;
        let status = response.status();
        self.to_drop = match status {
            StatusCode::PARTIAL_CONTENT if from > 0 => {
                let (starts_at, total) = content_range(&response);
                if starts_at != Some(from) {
                    return Err(Error::Protocol {
                        host: self.registry.host().to_string(),
                        detail: format!(
                            "asked for the blob from byte {from}, got a range starting at {}",
                            starts_at.map_or_else(|| "an unknown byte".into(), |s| s.to_string())
                        ),
                    });
                }
                let rest = response.content_length().map(|length| from + length);
                self.size = self.size.or(total).or(rest);
                0
            }
            // From the start: the first request, or `Range` ignored (the whole blob again, and
            // what the caller has is dropped).
            StatusCode::OK => {
                self.size = self.size.or(response.content_length());
                from
            }
            _ => {
                let what = || {
                    if from == 0 {
                        format!("blob in {}", self.repository)
                    } else {
                        format!("the rest of a blob in {} from byte {from}", self.repository)
                    }
                };
                return Err(self
                    .registry
                    .unexpected(response, "GET", &self.repository, what)
                    .await);
            }
        };
        self.body = response.bytes_stream().boxed();
        Ok(())
    }
}

/// Why a body stopped before its end.
enum Broken {
    Read(reqwest::Error),
    Stalled(Duration),
    EndedEarly,
}

impl Broken {
    fn into_error(self, registry: &Registry) -> Error {
        let detail = match self {
            Broken::Read(error) => return registry.transfer(&error),
            Broken::Stalled(limit) => format!("no data for {} s", limit.as_secs().max(1)),
            Broken::EndedEarly => "the blob ended before its announced length".into(),
        };
        Error::Transfer {
            host: registry.host().to_string(),
            detail,
        }
    }
}

/// The first byte and the total of a 206 answer's `Content-Range: bytes FIRST-LAST/TOTAL`.
fn content_range(response: &Response) -> (Option<u64>, Option<u64>) {
    let Some(value) = response
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return (None, None);
    };
    let range = value.trim().trim_start_matches("bytes").trim_start();
    let (span, total) = range.split_once('/').unwrap_or((range, ""));
    let first = span.split('-').next().and_then(|f| f.trim().parse().ok());
    (first, total.trim().parse().ok())
}
