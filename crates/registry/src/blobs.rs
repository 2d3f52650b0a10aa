//! Blob operations on a [`Registry`]: existence, cross-repository mount and opening uploads.
//! Downloads are in `download.rs`, the uploads themselves in `upload.rs`.

use reqwest::header::{CONTENT_LENGTH, LOCATION};
use reqwest::{Method, Response, StatusCode};

use crate::Digest;
use crate::auth::Scope;
use crate::client::Registry;
use crate::error::{Error, Result};

/// An open upload on the target, from `POST …/blobs/uploads/`.
#[derive(Debug, Clone)]
pub struct UploadSession {
    pub(crate) repository: String,
    /// Where the next request of this upload goes; each answer may move it.
    pub(crate) location: String,
    /// The smallest chunk the registry takes but for the last (`OCI-Chunk-Min-Length`).
    pub(crate) min_chunk: u64,
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

    pub(crate) async fn session(
        &self,
        repository: &str,
        response: &Response,
    ) -> Result<UploadSession> {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Protocol {
                host: self.host().to_string(),
                detail: "upload started without a Location".into(),
            })?;
        let min_chunk = response
            .headers()
            .get("oci-chunk-min-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok(UploadSession {
            repository: repository.to_string(),
            location: self.url(location).await?,
            min_chunk,
        })
    }
}

pub(crate) fn with_query(url: &str, key: &str, value: &str) -> String {
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
