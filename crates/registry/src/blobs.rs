//! Blob operations on a [`Registry`]: existence, cross-repository mount and streaming upload
//! (single request, or in chunks for registries that need it). Downloads are in `download.rs`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures_util::Stream;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};

use crate::Digest;
use crate::auth::Scope;
use crate::client::Registry;
use crate::error::{Error, Result};

/// An open upload on the target, from `POST …/blobs/uploads/`.
#[derive(Debug, Clone)]
pub struct UploadSession {
    repository: String,
    location: String,
}

/// What a mount request achieved.
#[derive(Debug)]
pub enum MountOutcome {
    Mounted,
    /// The registry could not mount and opened an upload instead.
    Upload(UploadSession),
}

impl Registry {
    /// The size of a blob if the repository has it. `for_push` asks with push scope, so the
    /// same token serves this HEAD and the upload that may follow it.
    pub async fn blob_size(
        &self,
        repository: &str,
        digest: &Digest,
        for_push: bool,
    ) -> Result<Option<u64>> {
        let path = format!("{repository}/blobs/{digest}");
        let scope = if for_push {
            Scope::push(repository)
        } else {
            Scope::pull(repository)
        };
        let response = self.send(Method::HEAD, &path, &[scope], &|r| r).await?;
        match response.status() {
            StatusCode::OK => Ok(Some(
                response
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self
                .unexpected(response, "HEAD", repository, || path.clone())
                .await),
        }
    }

    /// Asks the registry to link a blob that `from` already holds into `repository`, which
    /// costs no transfer. Registries that cannot answer 202 with an upload to use instead.
    pub async fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<MountOutcome> {
        let path = format!("{repository}/blobs/uploads/?mount={digest}&from={from}");
        let response = self
            .send(
                Method::POST,
                &path,
                &[Scope::push(repository), Scope::pull(from)],
                &|r| r.header(CONTENT_LENGTH, 0),
            )
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Upload(
                self.session(repository, &response).await?,
            )),
            _ => Err(self
                .unexpected(response, "POST", repository, || path.clone())
                .await),
        }
    }

    /// Opens an upload.
    pub async fn start_upload(&self, repository: &str) -> Result<UploadSession> {
        let path = format!("{repository}/blobs/uploads/");
        let response = self
            .send(Method::POST, &path, &[Scope::push(repository)], &|r| {
                r.header(CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self
                .unexpected(response, "POST", repository, || path.clone())
                .await);
        }
        self.session(repository, &response).await
    }

    async fn session(&self, repository: &str, response: &Response) -> Result<UploadSession> {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Protocol {
                host: self.host().to_string(),
                detail: "upload started without a Location".into(),
            })?;
        Ok(UploadSession {
            repository: repository.to_string(),
            location: self.url(location).await?,
        })
    }

    /// Streams a blob into an open upload and commits it under `digest`. The registry checks
    /// the digest too, so corrupted content can never be stored under the expected name; a
    /// stream that ends in an error aborts the request and nothing is committed.
    pub async fn upload_blob<S>(
        &self,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        body: S,
    ) -> Result<()>
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        if self.inner_chunked().load(Ordering::Relaxed) {
            return self.upload_in_chunk(session, digest, size, body).await;
        }
        let url = with_query(&session.location, "digest", digest.as_str());
        let scopes = [Scope::push(&session.repository)];
        let response = self
            .send_stream(Method::PUT, &url, &scopes, |r| {
                r.header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(reqwest::Body::wrap_stream(body))
            })
            .await?;
        match response.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::RANGE_NOT_SATISFIABLE
            | StatusCode::NOT_IMPLEMENTED => {
                self.inner_chunked().store(true, Ordering::Relaxed);
                Err(Error::MonolithicUploadRefused {
                    host: self.host().to_string(),
                })
            }
            _ => Err(self
                .unexpected(response, "PUT", &session.repository, || {
                    format!("blob {} in {}", digest.short(), session.repository)
                })
                .await),
        }
    }

    /// The two-step upload some registries require: PATCH the content, then PUT the digest.
    async fn upload_in_chunk<S>(
        &self,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        body: S,
    ) -> Result<()>
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        let scopes = [Scope::push(&session.repository)];
        let response = self
            .send_stream(Method::PATCH, &session.location, &scopes, |r| {
                let request = r
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size);
                let request = if size > 0 {
                    request.header(CONTENT_RANGE, format!("0-{}", size - 1))
                } else {
                    request
                };
                request.body(reqwest::Body::wrap_stream(body))
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED && response.status() != StatusCode::NO_CONTENT
        {
            return Err(self
                .unexpected(response, "PATCH", &session.repository, || {
                    format!("blob {} in {}", digest.short(), session.repository)
                })
                .await);
        }
        let next = self.session(&session.repository, &response).await?;
        let url = with_query(&next.location, "digest", digest.as_str());
        let response = self
            .send(Method::PUT, &url, &scopes, &|r| r.header(CONTENT_LENGTH, 0))
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(self
                .unexpected(response, "PUT", &session.repository, || {
                    format!("blob {} in {}", digest.short(), session.repository)
                })
                .await)
        }
    }
}

fn with_query(url: &str, key: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    format!("{url}{separator}{key}={value}")
}

#[cfg(test)]
mod tests {
    use super::with_query;

    #[test]
    fn digest_query_joins_existing_upload_state() {
        assert_eq!(
            with_query(
                "http://h/v2/a/blobs/uploads/u?_state=x",
                "digest",
                "sha256:ab"
            ),
            "http://h/v2/a/blobs/uploads/u?_state=x&digest=sha256%3Aab"
        );
        assert_eq!(with_query("/u", "digest", "d"), "/u?digest=d");
    }
}
